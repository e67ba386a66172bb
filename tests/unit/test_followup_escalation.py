"""The escalation ladder's steps: who each due timer tells, in which role and at which level;
and a case's ladder as its page shows it (which step it is on, what comes next)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from nps_events import Segment, StaffReason
from nps_followup.domain.cases import Case, CaseStatus, TimelineEntry, TimerKind
from nps_followup.domain.escalation import LadderStep, RungState, ladder_of, ladder_step
from nps_followup.domain.policy import Team

WITH_SECOND = Team(lead="lead@x.io", second_level="head@x.io", members=("ana@x.io", "bo@x.io"))
NO_SECOND = Team(lead="lead@x.io", members=("ana@x.io",))
R, E = StaffReason.REMINDER, StaffReason.ESCALATION


@pytest.mark.parametrize(
    ("kind", "owner", "team", "step"),
    [
        # the reminder goes to the owner, or to the lead when nobody a notice reaches owns it
        (TimerKind.REMINDER, "ana@x.io", WITH_SECOND, LadderStep("ana@x.io", "owner", 0, R)),
        (TimerKind.REMINDER, "webhook:crm", WITH_SECOND, LadderStep("webhook:crm", "owner", 0, R)),
        (TimerKind.REMINDER, None, WITH_SECOND, LadderStep("lead@x.io", "owner", 0, R)),
        (TimerKind.REMINDER, "not an address", NO_SECOND, LadderStep("lead@x.io", "owner", 0, R)),
        (TimerKind.REMINDER, None, None, LadderStep(None, "owner", 0, R)),
        # the deadline tells the lead, whoever owns the case
        (TimerKind.ESCALATION, "ana@x.io", WITH_SECOND, LadderStep("lead@x.io", "lead", 1, E)),
        (TimerKind.ESCALATION, "ana@x.io", None, LadderStep(None, "lead", 1, E)),
        # the second level, or the lead when the team has none
        (
            TimerKind.SECOND_LEVEL,
            "ana@x.io",
            WITH_SECOND,
            LadderStep("head@x.io", "second_level", 2, E),
        ),
        (TimerKind.SECOND_LEVEL, None, NO_SECOND, LadderStep("lead@x.io", "second_level", 2, E)),
        (TimerKind.SECOND_LEVEL, None, None, LadderStep(None, "second_level", 2, E)),
    ],
)
def test_each_ladder_timer_tells_the_person_its_rung_names(
    kind: TimerKind, owner: str | None, team: Team | None, step: LadderStep
) -> None:
    assert ladder_step(kind, owner=owner, team=team) == step


@pytest.mark.parametrize(
    ("kind", "escalates"),
    [(TimerKind.REMINDER, False), (TimerKind.ESCALATION, True), (TimerKind.SECOND_LEVEL, True)],
)
def test_only_the_deadline_and_second_level_escalate(kind: TimerKind, escalates: bool) -> None:
    assert ladder_step(kind, owner=None, team=NO_SECOND).escalates is escalates


def test_an_action_timer_is_no_step_of_the_ladder() -> None:
    with pytest.raises(ValueError, match="not a step of the escalation ladder"):
        ladder_step(TimerKind.ACTION, owner=None, team=NO_SECOND)


T = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _case(status: CaseStatus, taken: tuple[str, ...], *, second: bool = True) -> Case:
    return Case(
        case_id=uuid.uuid4(),
        response_id=uuid.uuid4(),
        source="web",
        survey_id="s",
        customer_id="c",
        customer_email=None,
        customer_name=None,
        segment=Segment.DETRACTOR,
        score=2,
        comment=None,
        status=status,
        opened_at=T,
        due_at=T + 16 * HOUR,
        remind_at=T + 12 * HOUR,
        second_level_at=T + 24 * HOUR if second else None,
        owner="ana@x.io",
        timeline=tuple(TimelineEntry(uuid.uuid4(), kind, T, None) for kind in taken),
    )


D, N, L, S = RungState.DONE, RungState.NEXT, RungState.LATER, RungState.STOPPED


@pytest.mark.parametrize(
    ("status", "taken", "second", "states"),
    [
        # nobody reached yet: the first step not taken is next, the rest later
        (CaseStatus.OPEN, ("opened",), True, [N, L, L]),
        (CaseStatus.OPEN, ("opened", "reminded"), True, [D, N, L]),
        (CaseStatus.OPEN, ("reminded", "escalated_1"), True, [D, D, N]),
        (CaseStatus.OPEN, ("reminded", "escalated_1", "escalated_2"), True, [D, D, D]),
        # no second level in the rule: two steps
        (CaseStatus.OPEN, (), False, [N, L]),
        # someone reached the customer: what was not taken never will be
        (CaseStatus.CONTACTED, ("reminded",), True, [D, S, S]),
        (CaseStatus.RESOLVED, (), True, [S, S, S]),
    ],
)
def test_the_ladder_says_which_step_the_case_is_on_and_what_comes_next(
    status: CaseStatus, taken: tuple[str, ...], second: bool, states: list[RungState]
) -> None:
    ladder = ladder_of(_case(status, taken, second=second), team=WITH_SECOND)
    assert [r.state for r in ladder] == states
    assert [r.step for r in ladder] == [
        TimerKind.REMINDER,
        TimerKind.ESCALATION,
        TimerKind.SECOND_LEVEL,
    ][: len(states)]
    assert [r.at for r in ladder] == sorted(r.at for r in ladder)
    assert [r.recipient for r in ladder][:2] == ["ana@x.io", "lead@x.io"]
