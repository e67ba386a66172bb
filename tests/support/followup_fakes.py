"""In-memory fakes of followup's repository ports (`nps_followup.handlers.ports`), for unit
tests of its use cases without PostgreSQL. Each keeps what the SQL keeps, as the port's
docstrings describe it; the PostgreSQL tests (tests/integration) cover the SQL itself."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from nps_events import Event
from nps_followup.domain.cases import Action, Case, PlannedTimer, TimelineEntry, TimerKind

#: The lifecycle fields `save_case` writes; a case's response fields never change there.
_LIFECYCLE_FIELDS = (
    "status",
    "owner",
    "escalation_level",
    "first_contact_at",
    "resolved_at",
    "closed_at",
    "root_cause",
    "due_at",
    "remind_at",
    "second_level_at",
)


@dataclass
class FakeTimer:
    timer: PlannedTimer
    state: str = "pending"


@dataclass
class InMemoryCaseLifecycle:
    """The `CaseLifecycle` port over dicts. `published` is the outbox; `recipients` the staff
    notices' recipients by action id; `timers` each case's timers with their state."""

    cases: dict[uuid.UUID, Case] = field(default_factory=dict)
    timeline: dict[uuid.UUID, list[TimelineEntry]] = field(default_factory=dict)
    actions: dict[uuid.UUID, list[Action]] = field(default_factory=dict)
    recipients: dict[uuid.UUID, str] = field(default_factory=dict)
    timers: dict[uuid.UUID, list[FakeTimer]] = field(default_factory=dict)
    turns: dict[str, int] = field(default_factory=dict)
    published: list[Event] = field(default_factory=list)

    def add(self, case: Case, *, ladder: Sequence[PlannedTimer] = ()) -> Case:
        """A case as opening it would have stored it, with its pending ladder timers."""
        self.cases[case.case_id] = replace(case, actions=(), timeline=())
        self.timeline.setdefault(case.case_id, [])
        self.actions.setdefault(case.case_id, list(case.actions))
        self.timers[case.case_id] = [FakeTimer(t) for t in ladder]
        return case

    def pending(self, case_id: uuid.UUID) -> list[PlannedTimer]:
        return [t.timer for t in self.timers.get(case_id, []) if t.state == "pending"]

    async def get_case(self, case_id: uuid.UUID, *, for_update: bool = False) -> Case | None:
        case = self.cases.get(case_id)
        if case is None:
            return None
        return replace(
            case,
            actions=tuple(self.actions.get(case_id, ())),
            timeline=tuple(self.timeline.get(case_id, ())),
        )

    async def active_case_of(self, customer_id: str) -> Case | None:
        active = [
            c for c in self.cases.values() if c.customer_id == customer_id and c.status.is_active
        ]
        return max(active, key=lambda c: c.opened_at) if active else None

    async def save_case(self, case: Case) -> None:
        stored = self.cases[case.case_id]
        self.cases[case.case_id] = replace(
            stored, **{name: getattr(case, name) for name in _LIFECYCLE_FIELDS}
        )

    async def add_timeline(self, case_id: uuid.UUID, entries: Sequence[TimelineEntry]) -> None:
        recorded = self.timeline.setdefault(case_id, [])
        known = {e.entry_id for e in recorded}
        recorded += [e for e in entries if e.entry_id not in known]

    async def add_actions(
        self,
        case_id: uuid.UUID,
        actions: Sequence[Action],
        *,
        exempt: set[uuid.UUID],
        priority: dict[uuid.UUID, str] | None = None,
        recipient: dict[uuid.UUID, str] | None = None,
    ) -> None:
        self.actions.setdefault(case_id, []).extend(actions)
        self.recipients.update(recipient or {})

    async def next_turn(self, team: str) -> int:
        turn = self.turns.get(team, -1) + 1
        self.turns[team] = turn
        return turn

    async def add_timers(self, case_id: uuid.UUID, timers: Sequence[PlannedTimer]) -> None:
        self.timers.setdefault(case_id, []).extend(FakeTimer(t) for t in timers)

    async def cancel_ladder(self, case_id: uuid.UUID, now: datetime) -> None:
        for timer in self.timers.get(case_id, []):
            if timer.state == "pending" and timer.timer.kind is not TimerKind.ACTION:
                timer.state = "cancelled"

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        self.published += events
