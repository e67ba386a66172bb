"""Calling a provider's HTTP API: timeouts, quick retries honouring `Retry-After`, a rate
limit, and the one question that decides "never twice": did the request reach the provider?"""

import asyncio
import email.utils
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import cast

import httpx
from aiolimiter import AsyncLimiter

from nps_notify.adapters.http_transport import AiohttpTransport
from nps_notify.domain.dispatch import DispatchState, Outcome

Classify = Callable[[httpx.Response], Outcome]

#: Failures before the request reached the provider: always safe to try again.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

#: Connections kept open to one provider. More requests at once wait for a free one; a request
#: waiting longer than the timeout fails with `ConnectTimeout` before it is sent: deferred,
#: never `unknown`. With httpx's own transport a larger pool cost CPU per request (httpcore
#: checks every pooled connection at each request: 1.43-1.61 ms per ticket with its default
#: pool, 1.01-1.07 ms with 8; docs/performance.md, Notify, issue #20, fifth session); under
#: aiohttp's pool (`http_transport`) 8 stays the bound. Providers' rate limits (Zendesk 3/s,
#: Twilio 1/s by default) keep far fewer requests in flight than this.
MAX_CONNECTIONS = 8


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def deferred(reason: str, response: httpx.Response | None = None) -> Outcome:
    return Outcome(
        DispatchState.DEFERRED,
        reason=reason,
        retry_after=retry_after(response) if response is not None else None,
    )


class ProviderClient:
    """One provider's HTTP client. `call` sends one request, retries in place while the
    provider refuses it for a short while (429, 503 with a short `Retry-After`, a refused
    connection), and answers an `Outcome`:

    - what `classify` makes of the provider's answer (sent, failed, deferred);
    - `deferred` when the provider is away or asks for a longer wait: the action is parked;
    - `unknown` when the request may have reached the provider but no answer came back (a
      read timeout), unless `idempotent` (the provider recognises a repeat: Zendesk's
      `Idempotency-Key`): then it is tried again like any other transient failure.
    """

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        auth: httpx.Auth | tuple[str, str] | None,
        timeout: float,
        attempts: int,
        rate_per_second: float,
        max_inline_wait: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        keep_alive: bool = True,
    ) -> None:
        self.name = name
        self._client = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            timeout=timeout,
            transport=transport
            or AiohttpTransport(max_connections=MAX_CONNECTIONS, keep_alive=keep_alive),
        )
        self._attempts = attempts
        self._max_inline_wait = max_inline_wait
        self._limiter = AsyncLimiter(max_rate=rate_per_second, time_period=1)
        self._sleep = sleep

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        url: str,
        *,
        classify: Classify,
        idempotent: bool,
        per_attempt: Callable[[], dict[str, str]] | None = None,
        **kwargs: object,
    ) -> Outcome:
        """`per_attempt` gives headers made afresh for each attempt (a signature over the
        attempt's own timestamp), added to `headers`."""
        outcome = deferred(f"{self.name}: no attempt made")
        for attempt in range(1, self._attempts + 1):
            if per_attempt is not None:
                fixed = cast("dict[str, str]", kwargs.get("headers") or {})
                kwargs = {**kwargs, "headers": {**fixed, **per_attempt()}}
            async with self._limiter:
                try:
                    response = await self._client.request(method, url, **kwargs)  # type: ignore[arg-type]
                except NOT_SENT as exc:
                    outcome = deferred(f"{self.name} unreachable: {type(exc).__name__}")
                except httpx.TransportError as exc:
                    if not idempotent:
                        return Outcome(
                            DispatchState.UNKNOWN,
                            reason=f"{self.name} did not answer ({type(exc).__name__}) after "
                            "the request was sent; it is not sent again (never twice): check "
                            "whether it arrived",
                        )
                    outcome = deferred(f"{self.name} did not answer: {type(exc).__name__}")
                else:
                    outcome = classify(response)
            if outcome.state is not DispatchState.DEFERRED or attempt == self._attempts:
                return outcome
            backoff = min(self._max_inline_wait, 0.2 * 2 ** (attempt - 1)) * random.uniform(0.5, 1)  # noqa: S311 - jitter, not a secret
            wait = max(backoff, outcome.retry_after or 0.0)
            if wait > self._max_inline_wait:
                return outcome  # a long wait: park it rather than hold the batch
            await self._sleep(wait)
        return outcome
