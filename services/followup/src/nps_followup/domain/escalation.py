"""The escalation ladder of a case nobody has contacted yet: at its reminder time the owner is
reminded, at its deadline the team's lead is told, and later its second level. Each step is
decided here; the sweeper records it and sends the notice."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from nps_events import StaffReason
from nps_events.text import is_staff_recipient
from nps_followup.domain.cases import Case, CaseStatus, TimerKind
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


class RungState(StrEnum):
    #: The step was taken (the timeline records it).
    DONE = "done"
    #: The step the case is waiting for: what happens next, and when.
    NEXT = "next"
    #: A later step, if the case stays uncontacted.
    LATER = "later"
    #: Not taken and never will be: someone reached the customer (or the case ended) first.
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Rung:
    """One step of a case's escalation ladder: its kind (reminder, escalation, second_level),
    when it fires, who it tells and in which role, and where the case stands on it."""

    step: TimerKind
    at: datetime
    recipient: str | None
    role: str
    level: int
    state: RungState


#: The timeline entry each step leaves when it is taken.
_TAKEN = {
    TimerKind.REMINDER: "reminded",
    TimerKind.ESCALATION: "escalated_1",
    TimerKind.SECOND_LEVEL: "escalated_2",
}


def ladder_of(case: Case, *, team: Team | None) -> list[Rung]:
    """The case's escalation ladder in order of time: each step its deadlines give it, taken
    or not. The ladder climbs only while nobody has reached the customer (status open); the
    first step not yet taken is the next one."""
    taken = {e.kind for e in case.timeline}
    times = (
        (TimerKind.REMINDER, case.remind_at),
        (TimerKind.ESCALATION, case.due_at),
        (TimerKind.SECOND_LEVEL, case.second_level_at),
    )
    running = case.status is CaseStatus.OPEN
    rungs: list[Rung] = []
    waiting = False
    timed = sorted(((k, t) for k, t in times if t is not None), key=lambda kt: kt[1])
    for kind, at in timed:
        step = ladder_step(kind, owner=case.owner, team=team)
        if _TAKEN[kind] in taken:
            state = RungState.DONE
        elif not running:
            state = RungState.STOPPED
        elif not waiting:
            state, waiting = RungState.NEXT, True
        else:
            state = RungState.LATER
        rungs.append(Rung(kind, at, step.recipient, step.role, step.level, state))
    return rungs
