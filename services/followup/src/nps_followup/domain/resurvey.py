"""Re-surveys: asking a customer again some time after their case closed, so that what the
follow-up did is measured by the customer's next answer, not assumed.

npsloop sends no survey itself. When a case of a rule with `resurvey_after` closes, a durable
timer is set for that long after; when it fires, followup publishes `ResurveyRequested` for the
survey tool to send, unless a contact rule suppresses it. The customer's next answer is linked
to the case (`handlers.opening`), and the recovery rate counts only customers who answered
again."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from nps_events import Customer
from nps_followup.domain.cases import Case, CaseStatus, PlannedTimer, TimerKind, timer_id_for
from nps_followup.domain.policy import Duration


def resurvey_timer(
    case_id: uuid.UUID, closed_at: datetime, after: Duration, *, round_: str
) -> PlannedTimer:
    """The timer that asks again `after` the case closed. `round_` (what closed it) tells a
    case closed, reopened and closed again apart: each closing sets its own timer."""
    return PlannedTimer(
        timer_id_for(case_id, TimerKind.RESURVEY, round_),
        TimerKind.RESURVEY,
        closed_at + after.calendar(),
    )


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A re-survey a contact rule holds back: the rule, and why in words (what the timeline
    says, like a skipped action)."""

    contact_rule: str
    reason: str


def resurvey_decision(
    case: Case, customer: Customer, *, opted_out: set[str], answered_again_at: datetime | None
) -> Customer | Suppressed | None:
    """Whom to ask (the customer as the event carries them), why not (`Suppressed`), or None
    when the re-survey no longer applies at all: the case is not closed any more (reopened;
    its timer is cancelled then, this covers a reopening racing the sweeper).

        the customer is on the do-not-contact list for every channel (`all`) → do_not_contact
        the customer has answered again since the case closed             → answered_again
        opted out of email (or SMS): that address is left out of the event; if that leaves
        none of the addresses they had                                     → do_not_contact
        otherwise                                                          → ask

    A customer the source knows by id alone (an in-app survey) is asked by id."""
    if case.status is not CaseStatus.CLOSED or case.closed_at is None:
        return None
    if "all" in opted_out:
        return Suppressed("do_not_contact", "the customer is on the do-not-contact list (all)")
    if answered_again_at is not None and answered_again_at > case.closed_at:
        return Suppressed(
            "answered_again",
            f"the customer answered again at {answered_again_at.isoformat()}, after the case "
            "closed: that answer is already on the case",
        )
    kept = customer.model_copy(
        update={
            "email": None if "email" in opted_out else customer.email,
            "phone": None if "sms" in opted_out else customer.phone,
        }
    )
    had = customer.email is not None or customer.phone is not None
    if had and kept.email is None and kept.phone is None:
        scopes = ", ".join(sorted(opted_out))
        return Suppressed(
            "do_not_contact",
            f"the customer is on the do-not-contact list for every channel they have ({scopes})",
        )
    return kept


@dataclass(frozen=True, slots=True)
class ResurveyRequest:
    """A re-survey followup asked for: what links the customer's next answer to the case."""

    case_id: uuid.UUID
    customer_id: str
    timer_id: uuid.UUID
    closed_at: datetime
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class ResurveyAnswer:
    """The customer's first answer after a re-survey was requested for their case."""

    case_id: uuid.UUID
    response_id: uuid.UUID
    score: int
    answered_at: datetime


def answers_resurvey(requested_at: datetime | None, responded_at: datetime) -> bool:
    """Whether an answer is the reply to a re-survey requested at `requested_at` (None: none
    is awaiting an answer): one given after it was requested. An answer given before (a late
    delivery of an earlier one) is a later answer like any other."""
    return requested_at is not None and responded_at >= requested_at
