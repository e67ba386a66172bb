"""A helpdesk's change of a ticket, as every helpdesk's webhook is read into it."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TicketChange:
    """The helpdesk's ticket `ticket_id` went from `previous_status` to `status` at `at`;
    `event_id` is the helpdesk's id of that event (a redelivery has the same)."""

    event_id: str
    ticket_id: str
    status: str
    previous_status: str | None
    at: datetime
