"""The case lifecycle a person drives: assign, record a contact, resolve with a root cause,
close, reopen. Each transition is checked here and returns the case as it becomes; the
handler records it on the timeline and publishes it."""

from dataclasses import replace
from datetime import datetime

from nps_events import ContactOutcome
from nps_followup.domain.cases import Case, CaseStatus


class LifecycleError(Exception):
    """A transition the case's state does not allow (HTTP 409)."""


class UnknownRootCause(ValueError):  # noqa: N818 - named for what it is
    """A root cause outside the policy's taxonomy (HTTP 422)."""


def _require(case: Case, allowed: tuple[CaseStatus, ...], doing: str) -> None:
    if case.status not in allowed:
        raise LifecycleError(
            f"cannot {doing} a case that is {case.status.value} "
            f"(only {', '.join(s.value for s in allowed)})"
        )


WORKED = (CaseStatus.OPEN, CaseStatus.CONTACTED, CaseStatus.RESOLVED)
IN_PROGRESS = (CaseStatus.OPEN, CaseStatus.CONTACTED)
FINISHED = (CaseStatus.RESOLVED, CaseStatus.CLOSED)

#: Each transition a person drives and the states it starts from: what the functions below
#: check, and what the API offers a client (the console) so that it never shows a step the
#: case cannot take.
TRANSITIONS: dict[str, tuple[CaseStatus, ...]] = {
    "assign": WORKED,
    "contact": IN_PROGRESS,
    "resolve": IN_PROGRESS,
    "close": (CaseStatus.RESOLVED,),
    "reopen": FINISHED,
}


def transitions_from(status: CaseStatus) -> list[str]:
    """The transitions a case in `status` allows, in the order people take them."""
    return [name for name, allowed in TRANSITIONS.items() if status in allowed]


def assign(case: Case, owner: str) -> Case:
    _require(case, TRANSITIONS["assign"], "assign")
    return replace(case, owner=owner)


def record_contact(case: Case, outcome: ContactOutcome, now: datetime) -> tuple[Case, bool | None]:
    """The case after a contact attempt, and whether it met the deadline (for the first
    contact that reached the customer; None otherwise)."""
    _require(case, TRANSITIONS["contact"], "record a contact on")
    if outcome is not ContactOutcome.REACHED or case.first_contact_at is not None:
        return case, None
    within = case.due_at is None or now <= case.due_at
    return replace(case, status=CaseStatus.CONTACTED, first_contact_at=now), within


def resolve(case: Case, root_cause: str, taxonomy: tuple[str, ...], now: datetime) -> Case:
    _require(case, TRANSITIONS["resolve"], "resolve")
    if root_cause not in taxonomy:
        raise UnknownRootCause(
            f"root cause {root_cause!r} is not in the policy's taxonomy: {', '.join(taxonomy)}"
        )
    return replace(case, status=CaseStatus.RESOLVED, root_cause=root_cause, resolved_at=now)


def close(case: Case, now: datetime) -> Case:
    _require(case, TRANSITIONS["close"], "close")
    return replace(case, status=CaseStatus.CLOSED, closed_at=now)


def reopen(case: Case) -> Case:
    """Back to work: contacted again if a person had reached the customer, else open (and
    then the caller gives it a new contact deadline and escalation ladder from now: the old
    ones were cancelled when it was resolved)."""
    _require(case, TRANSITIONS["reopen"], "reopen")
    status = CaseStatus.CONTACTED if case.first_contact_at is not None else CaseStatus.OPEN
    return replace(case, status=status, resolved_at=None, closed_at=None, root_cause=None)
