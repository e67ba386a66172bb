"""How a case's contact deadline reads in the queue. Pure: `now` is passed in, and the
business time left comes from followup (its teams' calendars are its own)."""

import math
from dataclasses import dataclass
from datetime import datetime

#: Statuses in which nobody has reached the customer yet: the deadline still runs.
RUNNING = frozenset({"open"})


@dataclass(frozen=True, slots=True)
class DueLabel:
    """A catalog key, its values, and whether the case is past its deadline."""

    key: str
    values: dict[str, int]
    overdue: bool = False


def due_label(
    *, status: str, due_at: datetime | None, business_hours_left: float | None, now: datetime
) -> DueLabel:
    """ "Overdue", "Due in 5 business hours", … for an open case; "Contacted" once someone
    reached the customer; "No deadline" without one. Hours round up: 4.2 hours left is
    "due in 5", so that nobody reads more time than there is."""
    if status not in RUNNING:
        return DueLabel("due.met", {})
    if due_at is None:
        return DueLabel("due.none", {})
    if due_at <= now:
        return DueLabel("due.overdue", {}, overdue=True)
    if business_hours_left is None:
        hours = (due_at - now).total_seconds() / 3600
    else:
        hours = business_hours_left
    if hours < 1:
        return DueLabel("due.within_hour", {})
    whole = math.ceil(hours)
    if whole == 1:
        return DueLabel("due.in_hour", {})
    return DueLabel("due.in_hours", {"n": whole})
