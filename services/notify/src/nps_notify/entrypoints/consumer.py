"""Notify's Kafka consumer: translate the batch, call one handler."""

from nps_events import (
    CreateTicket,
    NotifyStaff,
    RaiseTicketPriority,
    RequestResurvey,
    SendEmail,
    SendSms,
)
from nps_kit.messaging import BatchHandler, Inbound, Rejection, accept
from nps_kit.outbox import OutboxRelay
from nps_notify.handlers import Dispatcher

ACTIONS = (SendEmail, NotifyStaff, SendSms, CreateTicket, RaiseTicketPriority, RequestResurvey)


def actions_handler(*, dispatcher: Dispatcher, relay: OutboxRelay) -> BatchHandler:
    async def handle(batch: list[Inbound]) -> list[Rejection]:
        # Every action command is ours; anything else on the topic goes to the DLQ, and so
        # does a command notify can never deliver as configured (the dispatcher says why).
        _, rejections = accept(batch, SendEmail, ignore=ACTIONS)
        actions = []
        for inbound in batch:
            if isinstance(inbound.event.data, ACTIONS):
                refused = dispatcher.undeliverable(inbound.event.data)
                if refused is None:
                    actions.append(inbound.event.data)
                else:
                    rejections.append(Rejection(inbound.record, refused))
        if actions:
            await dispatcher.dispatch(actions)
            relay.wake()
        return rejections

    return handle
