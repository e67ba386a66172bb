"""Clients of the providers' APIs, for thin webhooks that carry ids only.

Every call has a timeout and bounded retries with backoff (tenacity); when the provider still
cannot answer, `VendorUnavailableError` makes ingest answer 503 with Retry-After, so the
provider redelivers the webhook later: a vendor outage delays a response, never loses it.
"""

from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from nps_ingest.adapters.providers import hubspot
from nps_ingest.domain.sources import Source
from nps_ingest.domain.webhooks import Fetch, VendorUnavailableError


class _RetryableError(Exception):
    pass


class _JsonApi:
    """GET one JSON document with a timeout and bounded retries; 429, 5xx and transport
    errors are retried, anything else is `VendorUnavailableError` at once."""

    vendor = "the provider"

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._attempts = attempts

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get_once(
        self, url: str, params: dict[str, str], headers: dict[str, str], *, missing_ok: bool
    ) -> Any:
        try:
            answer = await self._client.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise _RetryableError(f"{type(exc).__name__}") from exc
        if answer.status_code == 429 or answer.status_code >= 500:
            raise _RetryableError(f"{self.vendor} answered {answer.status_code}")
        if answer.status_code == 404 and missing_ok:
            return None
        if answer.status_code != 200:
            raise VendorUnavailableError(f"{self.vendor} answered {answer.status_code}")
        try:
            return answer.json()
        except ValueError as exc:
            raise VendorUnavailableError(f"{self.vendor} answered with invalid JSON") from exc

    async def get(
        self,
        url: str,
        params: dict[str, str],
        headers: dict[str, str],
        *,
        missing_ok: bool = False,
    ) -> Any:
        """The document, or None for a 404 when `missing_ok`."""
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=0.2, max=2),
                retry=retry_if_exception_type(_RetryableError),
                reraise=True,
            ):
                with attempt:
                    return await self._get_once(url, params, headers, missing_ok=missing_ok)
        except _RetryableError as exc:
            raise VendorUnavailableError(f"{exc} after {self._attempts} attempts") from exc
        raise VendorUnavailableError("no attempt was made")  # pragma: no cover


class HubSpotClient(_JsonApi):
    """`GET /crm/v3/objects/feedback_submissions/{id}?properties=…&associations=contacts` with
    the app's access token as `Authorization: Bearer` (option `api_url`, default
    https://api.hubapi.com), then the associated contact's properties for the customer's
    attributes: `GET /crm/v3/objects/contacts/{id}?properties=…`, kept in the record as
    `hubspot.CONTACT`. A contact HubSpot no longer has (404) gives no attributes; it never
    holds the response back."""

    vendor = "HubSpot"
    DEFAULT_BASE = "https://api.hubapi.com"

    async def fetch(self, source: Source, fetch: Fetch) -> Any:
        base = source.options.get("api_url", self.DEFAULT_BASE).rstrip("/")
        headers = {
            "Authorization": f"Bearer {source.api_token or ''}",
            "Accept": "application/json",
        }
        record = await self.get(
            f"{base}/crm/v3/objects/feedback_submissions/{fetch.response_id}",
            {"properties": ",".join(hubspot.properties_for(source)), "associations": "contacts"},
            headers,
        )
        contact_id = hubspot.contact_id(record)
        if contact_id is None:
            return record
        contact = await self.get(
            f"{base}/crm/v3/objects/contacts/{contact_id}",
            {"properties": ",".join(hubspot.contact_properties_for(source))},
            headers,
            missing_ok=True,
        )
        return {**record, hubspot.CONTACT: contact} if isinstance(record, dict) else record


class SurveyMonkeyClient(_JsonApi):
    """`GET /v3/surveys/{survey_id}/responses/{id}/details?simple=true` with the source's
    access token as `Authorization: Bearer`. The base URL is the source's option `api_url`
    (default https://api.surveymonkey.com; EU accounts use https://api.eu.surveymonkey.com)."""

    vendor = "SurveyMonkey"
    DEFAULT_BASE = "https://api.surveymonkey.com"

    async def fetch(self, source: Source, fetch: Fetch) -> Any:
        base = source.options.get("api_url", self.DEFAULT_BASE).rstrip("/")
        return await self.get(
            f"{base}/v3/surveys/{fetch.survey_id}/responses/{fetch.response_id}/details",
            {"simple": "true"},
            {"Authorization": f"Bearer {source.api_token or ''}", "Accept": "application/json"},
        )


class QualtricsClient(_JsonApi):
    """`GET /API/v3/surveys/{survey}/responses/{id}` with `X-API-TOKEN` (the source's
    `api_token`), at `https://{datacenter}.qualtrics.com` (option `datacenter`, e.g. `fra1`)
    or option `api_url`."""

    vendor = "Qualtrics"

    async def fetch(self, source: Source, fetch: Fetch) -> Any:
        base = source.options.get("api_url") or (
            f"https://{source.options.get('datacenter', 'yul1')}.qualtrics.com"
        )
        return await self.get(
            f"{base.rstrip('/')}/API/v3/surveys/{fetch.survey_id}/responses/{fetch.response_id}",
            {},
            {"X-API-TOKEN": source.api_token or "", "Accept": "application/json"},
        )
