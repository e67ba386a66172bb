"""The escalation ladder of a case nobody has contacted yet: at its reminder time the owner is
reminded, at its deadline the team's lead is told, and later its second level. Each step is
decided here; the sweeper records it and sends the notice."""

from dataclasses import dataclass

from nps_events import StaffReason
from nps_events.text import is_staff_recipient
from nps_followup.domain.cases import TimerKind
from nps_followup.domain.policy import Team

#: The timers that are steps of the ladder (the others dispatch scheduled actions).
LADDER = frozenset({TimerKind.REMINDER, TimerKind.ESCALATION, TimerKind.SECOND_LEVEL})


@dataclass(frozen=True, slots=True)
class LadderStep:
    """Who one step tells (None: nobody the policy names, so only the timeline records it), in
    which role (`NotifyStaff.role`), at which escalation level (0 is a reminder), and why."""

    recipient: str | None
    role: str
    level: int
    reason: StaffReason

    @property
    def escalates(self) -> bool:
        """An escalation (not a reminder): it raises the case's level and its ticket's priority."""
        return self.level > 0


def ladder_step(kind: TimerKind, *, owner: str | None, team: Team | None) -> LadderStep:
    """The step a due ladder timer of `kind` takes for a case of `team` owned by `owner`. With
    nobody to remind or no second level, the team's lead is told instead."""
    lead = team.lead if team is not None else None
    if kind is TimerKind.REMINDER:
        # An owner stored before owners were checked may be no one a notice can reach.
        reachable = owner if owner and is_staff_recipient(owner) else None
        return LadderStep(reachable or lead, "owner", 0, StaffReason.REMINDER)
    if kind is TimerKind.ESCALATION:
        return LadderStep(lead, "lead", 1, StaffReason.ESCALATION)
    if kind is TimerKind.SECOND_LEVEL:
        second = team.second_level if team is not None else None
        return LadderStep(second or lead, "second_level", 2, StaffReason.ESCALATION)
    raise ValueError(f"a {kind.value} timer is not a step of the escalation ladder")
