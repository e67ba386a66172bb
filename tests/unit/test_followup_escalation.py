"""The escalation ladder's steps: who each due timer tells, in which role and at which level."""

import pytest

from nps_events import StaffReason
from nps_followup.domain.cases import TimerKind
from nps_followup.domain.escalation import LadderStep, ladder_step
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
