"""Followup's and scoring's HTTP APIs, called with the signed-in person's own access token,
so that the APIs' role and team checks apply to what the console shows and does. The
console reads no other service's tables."""

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx


class TokenRefused(Exception):  # noqa: N818 - named for what it is
    """The API answered 401: the person must sign in again."""


class ApiRefused(Exception):  # noqa: N818 - named for what it is
    """A problem+json answer the person must see (403, 404, 409, 422…)."""

    def __init__(self, status: int, title: str, detail: str, errors: Sequence[Any] = ()) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = [e for e in errors if isinstance(e, dict)]


class ApiUnavailable(Exception):  # noqa: N818 - named for what it is
    """The API did not answer, or answered 5xx."""


Params = Mapping[str, str | int | Sequence[str]]


class Apis:
    def __init__(self, *, followup_url: str, scoring_url: str, timeout: float) -> None:
        self._followup = followup_url
        self._scoring = scoring_url
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(timeout))

    async def close(self) -> None:
        await self.http.aclose()

    async def cases(self, token: str, params: Params) -> dict[str, Any]:
        return await self._call("GET", f"{self._followup}/v1/cases", token, params=params)

    async def case(self, token: str, case_id: str) -> dict[str, Any]:
        return await self._call("GET", f"{self._followup}/v1/cases/{case_id}", token)

    async def act(
        self, token: str, case_id: str, step: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """POST /v1/cases/{id}/{step}: assign, contacts, resolve, close or reopen."""
        return await self._call(
            "POST", f"{self._followup}/v1/cases/{case_id}/{step}", token, json=dict(body)
        )

    async def policy(self, token: str) -> dict[str, Any]:
        return await self._call("GET", f"{self._followup}/v1/policy", token)

    async def figures(
        self, token: str, *, group_by: Sequence[str], only: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Closed-loop figures per group of each grouping (one pass over the cases for all of
        them; each row names its `grouping`); `only`: start, end (ISO times), team, source,
        segment."""
        return await self._call(
            "GET",
            f"{self._followup}/v1/figures",
            token,
            params={"group_by": list(group_by), **(only or {})},
        )

    async def impact(self, token: str, params: Mapping[str, str]) -> dict[str, Any]:
        """NPS change between customers' consecutive answers, by what was done in between."""
        return await self._call("GET", f"{self._followup}/v1/impact", token, params=params)

    async def nps(
        self, token: str, *, grain: str, only: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        return await self._call(
            "GET", f"{self._scoring}/v1/nps", token, params={"grain": grain, **(only or {})}
        )

    async def compare(self, token: str, params: Mapping[str, str]) -> dict[str, Any]:
        """NPS of period a against period b, with the significance of the change."""
        return await self._call("GET", f"{self._scoring}/v1/nps/compare", token, params=params)

    async def themes(self, token: str, params: Mapping[str, str]) -> dict[str, Any]:
        return await self._call("GET", f"{self._scoring}/v1/themes", token, params=params)

    async def customer_responses(
        self, token: str, customer_id: str, *, limit: int
    ) -> dict[str, Any]:
        """Every score the customer gave, newest first (scoring's history)."""
        return await self._call(
            "GET",
            f"{self._scoring}/v1/customers/{quote(customer_id, safe='')}/responses",
            token,
            params={"limit": limit},
        )

    async def _call(
        self,
        method: str,
        url: str,
        token: str,
        *,
        params: Params | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        try:
            response = await self.http.request(
                method,
                url,
                params=params,
                json=json,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ApiUnavailable(type(exc).__name__) from exc
        if response.status_code == 401:
            raise TokenRefused
        if response.status_code >= 500:
            raise ApiUnavailable(f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise ApiUnavailable(f"HTTP {response.status_code}, not JSON") from exc
        if response.status_code >= 400:
            problem = body if isinstance(body, dict) else {}
            raise ApiRefused(
                response.status_code,
                str(problem.get("title", "Refused")),
                str(problem.get("detail", "")),
                problem.get("errors") or (),
            )
        if not isinstance(body, dict):
            raise ApiUnavailable("an answer that is not a JSON object")
        return body
