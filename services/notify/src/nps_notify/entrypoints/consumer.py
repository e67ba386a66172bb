"""Notify's Kafka consumer: translate the batch, call one handler."""

from nps_events import SendEmail
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory
from nps_kit.messaging import BatchHandler, Inbound, Rejection, accept
from nps_kit.outbox import OutboxRelay
from nps_notify.handlers import UNSUPPORTED, EmailChannel, dispatch_emails, report_unsupported


def actions_handler(
    *,
    sessions: SessionFactory,
    relay: OutboxRelay,
    channel: EmailChannel,
    clock: Clock,
    concurrency: int,
) -> BatchHandler:
    async def handle(batch: list[Inbound]) -> list[Rejection]:
        actions, rejections = accept(batch, SendEmail, ignore=tuple(UNSUPPORTED))
        if actions:
            await dispatch_emails(
                actions, sessions=sessions, channel=channel, clock=clock, concurrency=concurrency
            )
            relay.wake()
        unsupported = [i.event.data for i in batch if type(i.event.data) in UNSUPPORTED]
        if unsupported:
            await report_unsupported(unsupported, sessions=sessions, clock=clock)
            relay.wake()
        return rejections

    return handle
