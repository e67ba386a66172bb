"""Followup's Kafka consumer: scored responses open cases; action results update them."""

from nps_events import ActionResultReported, ResponseScored, Topic
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.cases import FollowupPolicy
from nps_followup.handlers import open_cases, record_action_results
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.messaging import BatchHandler, Inbound, Rejection, accept
from nps_kit.outbox import OutboxRelay

TOPICS = (Topic.SCORED.value, Topic.ACTION_RESULTS.value)


def followup_handler(
    *, sessions: SessionFactory, relay: OutboxRelay, clock: Clock, policy: FollowupPolicy
) -> BatchHandler:
    async def handle(batch: list[Inbound]) -> list[Rejection]:
        if batch[0].record.topic == Topic.SCORED.value:
            scored, rejections = accept(batch, ResponseScored)
            if scored:
                async with unit_of_work(sessions) as session:
                    await open_cases(
                        FollowupRepository(session), scored, now=clock.now(), policy=policy
                    )
                relay.wake()
            return rejections
        results, rejections = accept(batch, ActionResultReported)
        if results:
            async with unit_of_work(sessions) as session:
                unknown = await record_action_results(
                    FollowupRepository(session), results, now=clock.now()
                )
            missing = {str(event_id) for event_id in unknown}
            rejections += [
                Rejection(
                    inbound.record, f"no action {inbound.event.data.subject()} is known to followup"
                )
                for inbound in batch
                if inbound.event.id in missing
            ]
        return rejections

    return handle
