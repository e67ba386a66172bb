"""Notify's Kafka consumer: translate the batch, call one handler."""

from nps_events import NotifyStaff, SendEmail
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory
from nps_kit.messaging import BatchHandler, Inbound, Rejection, accept
from nps_kit.outbox import OutboxRelay
from nps_notify.handlers import (
    UNSUPPORTED,
    EmailChannel,
    dispatch_emails,
    email_job,
    report_unsupported,
)


def actions_handler(
    *,
    sessions: SessionFactory,
    relay: OutboxRelay,
    channel: EmailChannel,
    clock: Clock,
    concurrency: int,
    case_url: str,
) -> BatchHandler:
    async def handle(batch: list[Inbound]) -> list[Rejection]:
        emails, rejections = accept(batch, SendEmail, ignore=(NotifyStaff, *UNSUPPORTED))
        staff, _ = accept(batch, NotifyStaff, ignore=(SendEmail, *UNSUPPORTED))
        actions: list[SendEmail | NotifyStaff] = [*emails, *staff]
        jobs = [email_job(a, case_url=case_url) for a in actions]
        if jobs:
            await dispatch_emails(
                jobs, sessions=sessions, channel=channel, clock=clock, concurrency=concurrency
            )
            relay.wake()
        unsupported = [i.event.data for i in batch if type(i.event.data) in UNSUPPORTED]
        if unsupported:
            await report_unsupported(unsupported, sessions=sessions, clock=clock)
            relay.wake()
        return rejections

    return handle
