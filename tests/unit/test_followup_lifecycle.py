"""Which lifecycle transitions each case status allows, table-driven."""

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from nps_events import ContactOutcome, Segment
from nps_followup.domain import lifecycle
from nps_followup.domain.cases import Case, CaseStatus

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TAXONOMY = ("pricing_billing", "other")
CASE = Case(
    case_id=uuid.uuid4(),
    response_id=uuid.uuid4(),
    source="web",
    survey_id="q4",
    customer_id="c-1",
    customer_email=None,
    customer_name=None,
    segment=Segment.DETRACTOR,
    score=2,
    comment=None,
    status=CaseStatus.OPEN,
    opened_at=NOW,
    due_at=NOW + timedelta(days=2),
)

Step = Callable[[Case], Case]
STEPS: dict[str, Step] = {
    "assign": lambda c: lifecycle.assign(c, "kim"),
    "contact": lambda c: lifecycle.record_contact(c, ContactOutcome.REACHED, NOW)[0],
    "resolve": lambda c: lifecycle.resolve(c, "other", TAXONOMY, NOW),
    "close": lambda c: lifecycle.close(c, NOW),
    "reopen": lifecycle.reopen,
}

ALLOWED = {
    CaseStatus.OPEN: {"assign": "open", "contact": "contacted", "resolve": "resolved"},
    CaseStatus.CONTACTED: {"assign": "contacted", "contact": "contacted", "resolve": "resolved"},
    CaseStatus.RESOLVED: {"assign": "resolved", "close": "closed", "reopen": "contacted"},
    CaseStatus.CLOSED: {"reopen": "contacted"},
    CaseStatus.AUTOMATED: {},
}


@pytest.mark.parametrize(
    ("status", "step"), [(status, step) for status in CaseStatus for step in STEPS]
)
def test_each_status_allows_only_its_transitions(status: CaseStatus, step: str) -> None:
    case = replace(
        CASE, status=status, first_contact_at=NOW if status is not CaseStatus.OPEN else None
    )
    expected = ALLOWED[status].get(step)
    if expected is None:
        with pytest.raises(lifecycle.LifecycleError, match=f"is {status.value}"):
            STEPS[step](case)
    else:
        assert STEPS[step](case).status.value == expected


@pytest.mark.parametrize(
    ("outcome", "at", "status", "within"),
    [
        (ContactOutcome.REACHED, NOW + timedelta(days=1), "contacted", True),
        (ContactOutcome.REACHED, NOW + timedelta(days=3), "contacted", False),
        (ContactOutcome.NO_ANSWER, NOW + timedelta(days=1), "open", None),
        (ContactOutcome.LEFT_MESSAGE, NOW + timedelta(days=1), "open", None),
    ],
)
def test_only_reaching_the_customer_counts_for_the_deadline(
    outcome: ContactOutcome, at: datetime, status: str, within: bool | None
) -> None:
    case, on_time = lifecycle.record_contact(CASE, outcome, at)
    assert (case.status.value, on_time) == (status, within)


def test_a_root_cause_must_come_from_the_taxonomy() -> None:
    with pytest.raises(lifecycle.UnknownRootCause, match="pricing_billing, other"):
        lifecycle.resolve(CASE, "gremlins", TAXONOMY, NOW)


def test_a_case_reopened_before_anyone_reached_the_customer_is_open_again() -> None:
    resolved = lifecycle.resolve(CASE, "other", TAXONOMY, NOW)
    assert lifecycle.reopen(resolved).status is CaseStatus.OPEN


@pytest.mark.parametrize("status", list(CaseStatus))
def test_the_transitions_offered_are_exactly_those_the_status_allows(status: CaseStatus) -> None:
    """What the API tells the console to offer is what the steps accept."""
    assert lifecycle.transitions_from(status) == list(ALLOWED[status])
