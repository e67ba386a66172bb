"""Followup's Kafka consumer: scored responses open cases; action results update them;
opt-outs fill the do-not-contact list."""

from nps_events import (
    ActionResultReported,
    ContactOptOut,
    ResponseReceived,
    ResponseScored,
    TicketStatusChanged,
    Topic,
)
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.cases import NotActedOn
from nps_followup.handlers import (
    PolicyInForce,
    apply_policy,
    record_action_results,
    record_opt_outs,
    record_ticket_changes,
)
from nps_followup.metrics import RESPONSES_HELD_OUT, RESPONSES_NOT_ACTED_ON
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.messaging import BatchHandler, Inbound, Rejection, accept
from nps_kit.outbox import OutboxRelay

TOPICS = (Topic.SCORED.value, Topic.ACTION_RESULTS.value, Topic.RESPONSES.value)
#: On `nps.responses.v1` beside the opt-outs, scoring's business: the runner skips them
#: undecoded (`ConsumerRunner`'s `ignores`).
IGNORED = (ResponseReceived,)


def followup_handler(
    *, sessions: SessionFactory, relay: OutboxRelay, clock: Clock, policy: PolicyInForce
) -> BatchHandler:
    async def handle(batch: list[Inbound]) -> list[Rejection]:
        topic = batch[0].record.topic
        if topic == Topic.SCORED.value:
            scored, rejections = accept(batch, ResponseScored)
            if scored:
                async with unit_of_work(sessions) as session:
                    applied = await apply_policy(
                        FollowupRepository(session), scored, now=clock.now(), policy=policy
                    )
                for held in applied.not_acted_on:  # counted once committed
                    RESPONSES_NOT_ACTED_ON.labels(reason=held.reason.value).inc()
                    if held.reason is NotActedOn.HOLDOUT:
                        RESPONSES_HELD_OUT.labels(rule=held.rule or "").inc()
                relay.wake()
            return rejections
        if topic == Topic.RESPONSES.value:
            opt_outs, rejections = accept(batch, ContactOptOut, ignore=IGNORED)
            if opt_outs:
                async with unit_of_work(sessions) as session:
                    await record_opt_outs(FollowupRepository(session), opt_outs, now=clock.now())
            return rejections
        results, rejections = accept(batch, ActionResultReported, ignore=(TicketStatusChanged,))
        changes, _ = accept(batch, TicketStatusChanged, ignore=(ActionResultReported,))
        if changes:
            async with unit_of_work(sessions) as session:
                gone = await record_ticket_changes(
                    FollowupRepository(session), changes, now=clock.now()
                )
            rejections += [
                Rejection(inbound.record, "no such case is known to followup")
                for inbound in batch
                if inbound.event.id in {str(g) for g in gone}
            ]
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
