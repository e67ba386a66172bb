"""Ingest's use cases."""

import asyncio
from datetime import datetime
from typing import Protocol

from nps_events import Event, ResponseReceived
from nps_ingest.domain.responses import CanonicalResponse, normalise
from nps_kit.clock import Clock
from nps_kit.messaging import PublishError


class EventPublisher(Protocol):
    async def publish(self, event: Event, *, source: str, now: datetime) -> None:
        """Return once the broker has acknowledged `event`."""
        ...


class BrokerUnavailableError(Exception):
    """The broker did not acknowledge in time; the sender should retry later."""


async def receive_response(
    response: CanonicalResponse,
    *,
    source: str,
    publisher: EventPublisher,
    clock: Clock,
    ack_timeout: float,
) -> ResponseReceived:
    """Publish the response; return its event once the broker has acknowledged it."""
    now = clock.now()
    event = normalise(response, source=source, now=now)
    try:
        await asyncio.wait_for(
            publisher.publish(event, source=f"/ingest/sources/{source}", now=now), ack_timeout
        )
    except (TimeoutError, PublishError) as exc:
        raise BrokerUnavailableError(str(exc) or "timed out waiting for the broker") from exc
    return event
