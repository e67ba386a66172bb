"""Outbound webhooks, signed by the Standard Webhooks scheme
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md),
for teams that plug npsloop into their own tools: a staff notice addressed to
`webhook:<endpoint name>` is POSTed there as JSON instead of emailed.

No SSRF: the endpoint's host is resolved before each call, and an address that is private,
loopback, link-local, multicast, reserved or unspecified is refused unless the endpoint is
configured with `allow_private` (an internal tool); plain `http://` likewise. The call then
goes to the address that was checked, not to the name again: a DNS answer that changes between
the check and the connection (DNS rebinding) cannot point it inside. TLS still verifies the
certificate against the name (SNI), and the Host header carries it. Redirects are not
followed (a redirect could point inside)."""

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from nps_notify.adapters.provider_http import ProviderClient, deferred
from nps_notify.config import WebhookEndpoint
from nps_notify.domain.dispatch import DispatchState, Outcome, WebhookJob
from nps_notify.domain.webhook_secrets import standard_webhooks_key


class Refused(Exception):  # noqa: N818 - an outcome, named for what it is
    pass


def sign(*, msg_id: str, timestamp: int, body: bytes, secrets: list[str]) -> str:
    """`webhook-signature`: `v1,<base64 HMAC-SHA256>` of `id.timestamp.body` with each secret
    (the base64 after `whsec_`), space-separated, so that a receiver rotating its secret
    accepts either."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1,"
        + base64.b64encode(
            hmac.new(standard_webhooks_key(s), signed, hashlib.sha256).digest()
        ).decode()
        for s in secrets
    )


async def check_destination(url: str, *, allow_private: bool) -> str | None:
    """Raise `Refused` unless `url` may be called: https, and every address its host resolves
    to public, unless `allow_private`. Return the checked address to connect to (None for an
    internal endpoint, called by name)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Refused(f"not an http(s) URL: {url!r}")
    if allow_private:
        return None
    if parts.scheme != "https":
        raise Refused("plain http is refused (set allow_private for an internal endpoint)")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or 443, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise Refused(f"cannot resolve {parts.hostname}: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if not address.is_global or address.is_multicast:
            raise Refused(
                f"{parts.hostname} resolves to {address}, a private or reserved address "
                "(set allow_private for an internal endpoint)"
            )
    if not addresses:
        raise Refused(f"{parts.hostname} resolves to no address")
    return str(addresses[0])


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, object]]:
    """`url` with its host replaced by the checked `address`; the Host header and the TLS
    server name that keep the request addressed to, and verified for, the original name."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return (
        parts._replace(netloc=netloc).geturl(),
        {"host": parts.netloc.rpartition("@")[2]},
        {"sni_hostname": parts.hostname},
    )


def classify(response: httpx.Response) -> Outcome:
    if 200 <= response.status_code < 300:
        return Outcome(
            DispatchState.SENT, provider_message_id=response.request.headers["webhook-id"]
        )
    said = f"the endpoint answered {response.status_code}"
    if response.status_code in (408, 409, 425, 429) or response.status_code >= 500:
        return deferred(said, response)
    return Outcome(DispatchState.FAILED, reason=said)


class WebhookChannel:
    """Receivers of Standard Webhooks deduplicate on `webhook-id` (the spec asks them to), and
    the id is the action's: an attempt cut off before its answer may be sent again."""

    name = "webhook"
    dedupes_repeats = True

    def __init__(
        self,
        endpoints: dict[str, WebhookEndpoint],
        *,
        attempts: int,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoints = endpoints
        self._clock = clock
        self._client = ProviderClient(
            name="the webhook endpoint",
            base_url="",
            auth=None,
            timeout=timeout,
            attempts=attempts,
            rate_per_second=50,
            transport=transport,
            # Calls go to the checked address (see `pinned`), so pooled connections would be
            # keyed by address: a connection verified for one endpoint's name could carry
            # another's request. Staff notices are few; each call opens its own.
            keep_alive=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, job: WebhookJob) -> Outcome:
        endpoint = self._endpoints.get(job.endpoint)
        if endpoint is None:
            return Outcome(DispatchState.FAILED, reason=f"no webhook endpoint {job.endpoint!r}")
        try:
            address = await check_destination(endpoint.url, allow_private=endpoint.allow_private)
        except Refused as exc:
            return Outcome(DispatchState.FAILED, reason=f"refused: {exc}")
        url, host, extensions = (
            pinned(endpoint.url, address) if address is not None else (endpoint.url, {}, {})
        )
        body = json.dumps(
            {"type": job.event_type, "timestamp": job.at.isoformat(), "data": dict(job.data)},
            separators=(",", ":"),
        ).encode()
        msg_id = f"msg_{job.action_id}"
        secrets = [s.get_secret_value() for s in endpoint.secrets]

        def signed() -> dict[str, str]:
            """Each attempt is signed at its own time (the id stays: receivers dedupe on it);
            a retry with the first attempt's timestamp would be stale to a strict receiver."""
            now = int(self._clock())
            return {
                "webhook-timestamp": str(now),
                "webhook-signature": sign(msg_id=msg_id, timestamp=now, body=body, secrets=secrets),
            }

        headers = {**host, "content-type": "application/json", "webhook-id": msg_id}
        return await self._client.call(
            "POST",
            url,
            content=body,
            headers=headers,
            per_attempt=signed,
            extensions=extensions,
            follow_redirects=False,
            classify=classify,
            idempotent=True,
        )
