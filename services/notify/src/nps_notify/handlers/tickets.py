"""The helpdesk's changes of the tickets npsloop opened."""

from nps_events import TicketStatusChanged
from nps_kit.clock import Clock
from nps_kit.logging import get_logger
from nps_notify.domain.tickets import TicketChange
from nps_notify.handlers.ports import TicketLedger, Transactions

log = get_logger(__name__)


async def record_ticket_change(
    change: TicketChange, *, helpdesk: str, ledger: Transactions[TicketLedger], clock: Clock
) -> str | None:
    """Publish the helpdesk's change of a ticket npsloop opened, for followup to put on the
    case; return why it was ignored (a ticket npsloop did not open), or None."""
    async with ledger() as repo:
        found = await repo.ticket_action(change.ticket_id)
        if found is None:
            return f"ticket {change.ticket_id} was not opened by npsloop"
        action_id, case_id, customer_id = found
        event = TicketStatusChanged(
            helpdesk=helpdesk,
            helpdesk_event_id=change.event_id,
            action_id=action_id,
            case_id=case_id,
            customer_id=customer_id,
            ticket_id=change.ticket_id,
            status=change.status,
            previous_status=change.previous_status,
            occurred_at=change.at,
        )
        await repo.publish_later([event], now=clock.now())
    log.info(
        "helpdesk.ticket_changed", helpdesk=helpdesk, case_id=str(case_id), status=change.status
    )
    return None
