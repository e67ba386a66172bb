"""Notify's Kafka consumer: translate the batch, call one handler."""

from nps_events import CreateTicket, NotifyStaff, RaiseTicketPriority, SendEmail, SendSms
from nps_kit.messaging import BatchHandler, Inbound, Rejection, accept
from nps_kit.outbox import OutboxRelay
from nps_notify.handlers import Dispatcher

ACTIONS = (SendEmail, NotifyStaff, SendSms, CreateTicket, RaiseTicketPriority)


def actions_handler(*, dispatcher: Dispatcher, relay: OutboxRelay) -> BatchHandler:
    async def handle(batch: list[Inbound]) -> list[Rejection]:
        # Every action command is ours; anything else on the topic goes to the DLQ.
        _, rejections = accept(batch, SendEmail, ignore=ACTIONS)
        actions = [i.event.data for i in batch if isinstance(i.event.data, ACTIONS)]
        if actions:
            await dispatcher.dispatch(actions)
            relay.wake()
        return rejections

    return handle
