"""Ingest's use cases: a canonical response, a batch of them, a provider's webhook."""

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from nps_events import ContactOptOut, Event, ResponseReceived
from nps_ingest.domain.responses import CanonicalResponse, fit_comment, normalise, opt_out_event
from nps_ingest.domain.sources import Source
from nps_ingest.domain.webhooks import (
    Fetch,
    InvalidResponseError,
    MalformedPayloadError,
    OptOut,
    Parsed,
    ProviderAdapter,
    VendorUnavailableError,
    WebhookRequest,
)
from nps_ingest.timeouts import shared_timeout
from nps_kit.clock import Clock
from nps_kit.http import field_message
from nps_kit.logging import get_logger
from nps_kit.messaging import PublishError

log = get_logger(__name__)


class EventPublisher(Protocol):
    async def publish(self, event: Event, *, source: str, now: datetime) -> None:
        """Return once the broker has acknowledged `event`."""
        ...


class ResponseFetcher(Protocol):
    async def fetch(self, source: Source, fetch: Fetch) -> Any:
        """The provider's record of the response `fetch` names, decoded from JSON.
        Raises `VendorUnavailableError` when the provider cannot answer now."""
        ...


class BrokerUnavailableError(Exception):
    """The broker did not acknowledge in time; the sender should retry later."""


@dataclass(frozen=True, slots=True)
class Received:
    """What was published for one response or opt-out."""

    event: ResponseReceived | ContactOptOut
    comment_truncated: bool = False
    #: The customer's vendor fields that could not become attributes, and why (names only).
    attributes_set_aside: tuple[str, ...] = ()


def _opt_out_event(opt_out: OptOut, *, source: str) -> Received:
    try:
        event = opt_out_event(
            source=source,
            customer_id=opt_out.customer_id,
            provider_event_id=opt_out.provider_event_id,
            occurred_at=opt_out.occurred_at,
            scope=opt_out.scope,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidResponseError(
            ".".join(str(p) for p in first["loc"]), field_message(first)
        ) from None
    return Received(event=event)


def _response_event(
    response: CanonicalResponse,
    *,
    source: str,
    now: datetime,
    comment_limit: int,
    backfill: bool = False,
) -> Received:
    try:
        event = normalise(
            response, source=source, now=now, comment_limit=comment_limit, backfill=backfill
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidResponseError(
            ".".join(str(p) for p in first["loc"]), field_message(first)
        ) from None
    _, truncated = fit_comment(response.comment, comment_limit)
    return Received(
        event=event,
        comment_truncated=truncated,
        attributes_set_aside=response.attributes_set_aside,
    )


async def _publish_all(
    events: Sequence[Event],
    *,
    source: str,
    publisher: EventPublisher,
    now: datetime,
    ack_timeout: float,
) -> None:
    ce_source = f"/ingest/sources/{source}"
    try:
        async with shared_timeout(ack_timeout):
            if len(events) == 1:
                # The common case, without gather's task per event (measured: ~15% of the
                # handler's time).
                await publisher.publish(events[0], source=ce_source, now=now)
            else:
                await asyncio.gather(
                    *(publisher.publish(e, source=ce_source, now=now) for e in events)
                )
    except (TimeoutError, PublishError) as exc:
        raise BrokerUnavailableError(str(exc) or "timed out waiting for the broker") from exc


async def receive_opt_out(
    opt_out: OptOut,
    *,
    source: str,
    publisher: EventPublisher,
    clock: Clock,
    ack_timeout: float,
) -> Received:
    """Publish a customer's request not to be contacted; followup adds them to its list."""
    now = clock.now()
    received = _opt_out_event(opt_out, source=source)
    await _publish_all(
        [received.event], source=source, publisher=publisher, now=now, ack_timeout=ack_timeout
    )
    return received


async def receive_response(
    response: CanonicalResponse,
    *,
    source: str,
    publisher: EventPublisher,
    clock: Clock,
    ack_timeout: float,
    comment_limit: int = 10_000,
) -> Received:
    """Publish the response; return its event once the broker has acknowledged it."""
    now = clock.now()
    received = _response_event(response, source=source, now=now, comment_limit=comment_limit)
    await _publish_all(
        [received.event], source=source, publisher=publisher, now=now, ack_timeout=ack_timeout
    )
    return received


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One item's outcome: accepted, duplicate (an earlier item of the batch is the same
    event) or error (with the reason)."""

    status: str
    received: Received | None = None
    error: str | None = None


async def receive_batch(
    responses: Sequence[CanonicalResponse | None],
    *,
    source: str,
    publisher: EventPublisher,
    clock: Clock,
    ack_timeout: float,
    comment_limit: int = 10_000,
    backfill: bool = False,
) -> list[BatchItem | None]:
    """Publish every response (None marks an item the edge already refused); one outcome
    each, so one bad item never sinks the rest. `backfill`: the batch is history, marked so on
    each event: scored and counted, never followed up."""
    now = clock.now()
    outcomes: list[BatchItem | None] = [None] * len(responses)
    seen: set[str] = set()
    to_publish: list[tuple[int, Received]] = []
    for index, response in enumerate(responses):
        if response is None:
            continue
        try:
            received = _response_event(
                response,
                source=source,
                now=now,
                comment_limit=comment_limit,
                backfill=backfill,
            )
        except InvalidResponseError as exc:
            outcomes[index] = BatchItem(status="error", error=str(exc))
            continue
        event_id = str(received.event.event_id())
        if event_id in seen:
            outcomes[index] = BatchItem(status="duplicate", received=received)
            continue
        seen.add(event_id)
        to_publish.append((index, received))

    async def one(index: int, received: Received) -> None:
        try:
            await _publish_all(
                [received.event],
                source=source,
                publisher=publisher,
                now=now,
                ack_timeout=ack_timeout,
            )
        except BrokerUnavailableError as exc:
            outcomes[index] = BatchItem(status="error", error=f"broker unavailable, retry: {exc}")
        else:
            outcomes[index] = BatchItem(status="accepted", received=received)

    await asyncio.gather(*(one(i, r) for i, r in to_publish))
    return outcomes


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    received: tuple[Received, ...]
    ignored: str | None
    #: An undeclared event type: the `warning` of the answer.
    undeclared: str | None = None


def _parse(
    adapter: ProviderAdapter, request: WebhookRequest, source: Source, now: datetime
) -> Parsed:
    try:
        return adapter.parse(request, source, now)
    except (InvalidResponseError, MalformedPayloadError):
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        # A payload of a shape the adapter did not expect: the sender's problem, not a 500.
        log.warning("webhook.unexpected_shape", source=source.name, error=type(exc).__name__)
        raise MalformedPayloadError(f"unexpected payload shape ({type(exc).__name__})") from None


async def receive_webhook(
    request: WebhookRequest,
    *,
    source: Source,
    adapter: ProviderAdapter,
    fetcher: ResponseFetcher | None,
    publisher: EventPublisher,
    clock: Clock,
    ack_timeout: float,
    comment_limit: int = 10_000,
) -> WebhookOutcome:
    """Verify the delivery's signature, read it with the provider's adapter, fetch what a thin
    payload only names, publish everything, and return once the broker acknowledged it all.

    Raises SignatureError (401), MalformedPayloadError (400), InvalidResponseError (422),
    VendorUnavailableError or BrokerUnavailableError (503: the sender retries later)."""
    now = clock.now()
    adapter.verify(request, source, now)
    parsed = _parse(adapter, request, source, now)
    responses = list(parsed.responses)
    if parsed.fetches:
        if fetcher is None or adapter.from_fetched is None:
            raise VendorUnavailableError(f"no API client for {source.provider}")
        # Concurrently: a HubSpot delivery may name many submissions, and the sender waits.
        records = await asyncio.gather(*(fetcher.fetch(source, f) for f in parsed.fetches))
        for fetch, raw in zip(parsed.fetches, records, strict=True):
            try:
                responses.append(adapter.from_fetched(raw, fetch, source))
            except (InvalidResponseError, MalformedPayloadError):
                raise
            except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
                raise MalformedPayloadError(
                    f"the provider's record has an unexpected shape ({type(exc).__name__})"
                ) from None
    received = [
        _response_event(r, source=source.name, now=now, comment_limit=comment_limit)
        for r in responses
    ]
    received += [_opt_out_event(o, source=source.name) for o in parsed.opt_outs]
    await _publish_all(
        [r.event for r in received],
        source=source.name,
        publisher=publisher,
        now=now,
        ack_timeout=ack_timeout,
    )
    return WebhookOutcome(
        received=tuple(received), ignored=parsed.ignored, undeclared=parsed.undeclared
    )


def sources_by_token(sources: Mapping[str, Source]) -> dict[str, tuple[str, ...]]:
    return {name: source.tokens for name, source in sources.items() if source.tokens}
