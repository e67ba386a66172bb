"""Scoring's Kafka consumer: translate the batch, call one handler in one unit of work."""

from zoneinfo import ZoneInfo

from nps_events import ContactOptOut, ResponseReceived
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.messaging import BatchHandler, Inbound, Rejection, accept
from nps_kit.outbox import OutboxRelay
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.domain.themes import ThemeClassifier
from nps_scoring.handlers import score_responses

#: On `nps.responses.v1` beside the responses, followup's business: the runner skips them
#: undecoded (`ConsumerRunner`'s `ignores`).
IGNORED = (ContactOptOut,)


def responses_handler(
    *,
    sessions: SessionFactory,
    relay: OutboxRelay,
    clock: Clock,
    classifier: ThemeClassifier,
    timezone: ZoneInfo,
) -> BatchHandler:
    async def handle(batch: list[Inbound]) -> list[Rejection]:
        responses, rejections = accept(batch, ResponseReceived, ignore=IGNORED)
        if responses:
            async with unit_of_work(sessions) as session:
                await score_responses(
                    ScoringRepository(session),
                    responses,
                    now=clock.now(),
                    classifier=classifier,
                    timezone=timezone,
                )
            relay.wake()
        return rejections

    return handle
