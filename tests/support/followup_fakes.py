"""In-memory fakes of followup's repository ports (`nps_followup.handlers.ports`), for unit
tests of its use cases without PostgreSQL. Each keeps what the SQL keeps, as the port's
docstrings describe it; the PostgreSQL tests (tests/integration) cover the SQL itself."""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from nps_events import Event, Segment
from nps_followup.adapters.case_store import LIFECYCLE_FIELDS
from nps_followup.adapters.repository import ActionRow, DueTimer
from nps_followup.domain.cases import (
    Action,
    ActionState,
    Case,
    CaseStatus,
    PlannedTimer,
    SetAside,
    TimelineEntry,
    TimerKind,
)
from nps_followup.domain.contact_rules import ContactHistory, DoNotContactEntry
from nps_followup.domain.resurvey import ResurveyAnswer, ResurveyRequest
from nps_followup.domain.simulation import StoredResponse


def _with_lifecycle(stored: Case, case: Case) -> Case:
    """`stored` with `case`'s lifecycle fields, as `save_cases` writes them."""
    return replace(stored, **{name: getattr(case, name) for name in LIFECYCLE_FIELDS})


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

    async def save_cases(self, cases: Sequence[Case]) -> None:
        for case in cases:
            self.cases[case.case_id] = _with_lifecycle(self.cases[case.case_id], case)

    async def add_timelines(self, entries: Sequence[tuple[uuid.UUID, TimelineEntry]]) -> None:
        for case_id, entry in entries:
            recorded = self.timeline.setdefault(case_id, [])
            if all(e.entry_id != entry.entry_id for e in recorded):
                recorded.append(entry)

    async def add_actions_of(
        self,
        actions: Sequence[tuple[uuid.UUID, Action]],
        *,
        exempt: set[uuid.UUID],
        priority: dict[uuid.UUID, str] | None = None,
        recipient: dict[uuid.UUID, str] | None = None,
    ) -> None:
        for case_id, action in actions:
            self.actions.setdefault(case_id, []).append(action)
        self.recipients.update(recipient or {})

    async def reserve_turns(self, team: str, count: int) -> int:
        first = self.turns.get(team, -1) + 1
        self.turns[team] = first + count - 1
        return first

    async def add_timers(self, case_id: uuid.UUID, timers: Sequence[PlannedTimer]) -> None:
        self.timers.setdefault(case_id, []).extend(FakeTimer(t) for t in timers)

    async def cancel_ladder(self, case_id: uuid.UUID, now: datetime) -> None:
        for timer in self.timers.get(case_id, []):
            if timer.state == "pending" and timer.timer.kind is not TimerKind.ACTION:
                timer.state = "cancelled"

    async def cancel_resurvey(self, case_id: uuid.UUID, now: datetime) -> datetime | None:
        for timer in self.timers.get(case_id, []):
            if timer.state == "pending" and timer.timer.kind is TimerKind.RESURVEY:
                timer.state = "cancelled"
                return timer.timer.fire_at
        return None

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        self.published += events


#: The states in which a case's ticket exists or is on its way (`tickets_of`).
_TICKET_ASKED = (ActionState.PLANNED, ActionState.SENT, ActionState.UNKNOWN)


@dataclass
class InMemoryTimers:
    """The `TimerSweep` port over dicts: cases, their actions (as the sweeper reads them, with
    `reasons` for skipped ones), timers with their state, the do-not-contact list and the
    customers' last-message times; `published` is the outbox; `requested` the actions added
    (staff notices, ticket raises) with `recipients` and `priorities` by action id."""

    cases: dict[uuid.UUID, Case] = field(default_factory=dict)
    actions: dict[uuid.UUID, ActionRow] = field(default_factory=dict)
    reasons: dict[uuid.UUID, str | None] = field(default_factory=dict)
    timers: dict[uuid.UUID, tuple[DueTimer, str]] = field(default_factory=dict)
    do_not_contact: dict[str, set[str]] = field(default_factory=dict)
    last_message: dict[str, datetime] = field(default_factory=dict)
    timeline: list[tuple[uuid.UUID, TimelineEntry]] = field(default_factory=list)
    requested: list[tuple[uuid.UUID, Action]] = field(default_factory=list)
    recipients: dict[uuid.UUID, str] = field(default_factory=dict)
    priorities: dict[uuid.UUID, str] = field(default_factory=dict)
    published: list[Event] = field(default_factory=list)
    #: When each customer last answered live (the record of scored responses).
    answered: dict[str, datetime] = field(default_factory=dict)
    #: Each case's latest re-survey requested, and its answer once given.
    resurveys: dict[uuid.UUID, ResurveyRequest] = field(default_factory=dict)
    resurvey_answers: dict[uuid.UUID, ResurveyAnswer] = field(default_factory=dict)
    #: Referral codes sent: code → (customer, case).
    referral_codes: dict[str, tuple[str, uuid.UUID]] = field(default_factory=dict)

    def add(
        self, case: Case, timers: Sequence[DueTimer], actions: Sequence[ActionRow] = ()
    ) -> None:
        self.cases[case.case_id] = replace(case, actions=(), timeline=())
        self.timers.update({t.timer_id: (t, "pending") for t in timers})
        self.actions.update({a.action_id: a for a in actions})

    def state_of(self, timer_id: uuid.UUID) -> str:
        return self.timers[timer_id][1]

    async def claim_due_timers(self, now: datetime, limit: int) -> list[DueTimer]:
        due = [t for t, state in self.timers.values() if state == "pending" and t.fire_at <= now]
        claimed = sorted(due, key=lambda t: t.fire_at)[:limit]
        for timer in claimed:
            self.timers[timer.timer_id] = (timer, "fired")
        return claimed

    async def cases_by_id(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Case]:
        return {i: self.cases[i] for i in sorted(set(case_ids)) if i in self.cases}

    async def actions_by_id(self, action_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ActionRow]:
        return {i: self.actions[i] for i in set(action_ids) if i in self.actions}

    async def contact_history(self, customer_ids: Iterable[str]) -> ContactHistory:
        ids = set(customer_ids)
        return ContactHistory(
            {c: set(self.do_not_contact[c]) for c in ids if c in self.do_not_contact},
            {c: self.last_message[c] for c in ids if c in self.last_message},
        )

    async def tickets_of(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        wanted = set(case_ids)
        return {
            a.case_id: a.action_id
            for a in self.actions.values()
            if a.case_id in wanted
            and a.channel == "ticket"
            and a.template is None
            and a.state in _TICKET_ASKED
        }

    async def set_action_states(
        self, states: Sequence[tuple[uuid.UUID, ActionState, str | None]], *, at: datetime
    ) -> None:
        for action_id, state, reason in states:
            self.actions[action_id] = replace(self.actions[action_id], state=state)
            self.reasons[action_id] = reason

    async def add_actions_of(
        self,
        actions: Sequence[tuple[uuid.UUID, Action]],
        *,
        exempt: set[uuid.UUID],
        priority: dict[uuid.UUID, str] | None = None,
        recipient: dict[uuid.UUID, str] | None = None,
    ) -> None:
        self.requested += actions
        self.priorities.update(priority or {})
        self.recipients.update(recipient or {})

    async def set_escalation_levels(self, levels: Mapping[uuid.UUID, int]) -> None:
        for case_id, level in levels.items():
            self.cases[case_id] = replace(self.cases[case_id], escalation_level=level)

    async def record_latest_scores(self, cases: Sequence[Case]) -> None:
        for case in cases:
            self.cases[case.case_id] = replace(
                self.cases[case.case_id], latest_score=case.latest_score, recovered=case.recovered
            )

    async def add_timelines(self, entries: Sequence[tuple[uuid.UUID, TimelineEntry]]) -> None:
        known = {e.entry_id for _, e in self.timeline}
        self.timeline += [(c, e) for c, e in entries if e.entry_id not in known]

    async def set_last_messages(self, customer_ids: Iterable[str], at: datetime) -> None:
        self.last_message.update(dict.fromkeys(customer_ids, at))

    async def add_records(
        self,
        *,
        actions: Sequence[tuple[uuid.UUID, Action]],
        priority: dict[uuid.UUID, str],
        recipient: dict[uuid.UUID, str],
        timeline: Sequence[tuple[uuid.UUID, TimelineEntry]],
        messaged: Iterable[str],
        at: datetime,
        scored: Sequence[StoredResponse] = (),
    ) -> None:
        await self.add_actions_of(actions, exempt=set(), priority=priority, recipient=recipient)
        await self.add_timelines(timeline)
        await self.set_last_messages(messaged, at)
        assert not scored, "a sweep records no scored responses"

    async def latest_answers(self, customer_ids: Iterable[str]) -> dict[str, datetime]:
        return {c: self.answered[c] for c in customer_ids if c in self.answered}

    async def record_resurveys(self, requested: Sequence[ResurveyRequest]) -> None:
        for r in requested:
            self.resurveys[r.case_id] = r
            self.resurvey_answers.pop(r.case_id, None)

    async def awaiting_resurvey_answer(
        self, case_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, datetime]:
        return {
            i: self.resurveys[i].requested_at
            for i in set(case_ids)
            if i in self.resurveys and i not in self.resurvey_answers
        }

    async def record_resurvey_answers(self, answers: Sequence[ResurveyAnswer]) -> None:
        for a in answers:
            self.resurvey_answers.setdefault(a.case_id, a)

    async def issue_referral_codes(
        self, codes: Sequence[tuple[str, str, uuid.UUID]], *, at: datetime
    ) -> None:
        self.referral_codes.update({code: (customer, case) for code, customer, case in codes})

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        self.published += events


@dataclass
class InMemoryOpening(InMemoryTimers):
    """The `CaseOpening` port over dicts: the sweeper's fake (opening fires the timers due at
    once through the same effects) with the inbox (`processed`), the responses set aside,
    the teams' round-robin `turns` (the last turn reserved) and each case's actions as rows."""

    processed: set[str] = field(default_factory=set)
    not_acted_on: list[SetAside] = field(default_factory=list)
    turns: dict[str, int] = field(default_factory=dict)
    #: The compact record of each scored response, for `policy simulate`.
    scored: dict[uuid.UUID, StoredResponse] = field(default_factory=dict)

    async def add_records(
        self,
        *,
        actions: Sequence[tuple[uuid.UUID, Action]],
        priority: dict[uuid.UUID, str],
        recipient: dict[uuid.UUID, str],
        timeline: Sequence[tuple[uuid.UUID, TimelineEntry]],
        messaged: Iterable[str],
        at: datetime,
        scored: Sequence[StoredResponse] = (),
    ) -> None:
        await super().add_records(
            actions=actions,
            priority=priority,
            recipient=recipient,
            timeline=timeline,
            messaged=messaged,
            at=at,
        )
        await self.record_scored(scored)

    async def record_scored(self, responses: Sequence[StoredResponse]) -> None:
        for r in responses:
            kept = self.scored.get(r.response_id)
            if kept is None:
                self.scored[r.response_id] = r
            elif r.revision >= kept.revision:  # never an earlier revision; first arrival kept
                self.scored[r.response_id] = replace(r, received_at=kept.received_at)

    async def claim(self, consumer: str, event_ids: Iterable[str]) -> set[str]:
        fresh = set(event_ids) - self.processed
        self.processed |= fresh
        return fresh

    async def cases_for_responses(
        self, response_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, uuid.UUID]:
        wanted = set(response_ids)
        return {c.response_id: c.case_id for c in self.cases.values() if c.response_id in wanted}

    async def update_case_response(
        self,
        case_id: uuid.UUID,
        *,
        score: int,
        segment: Segment,
        comment: str | None,
        themes: tuple[str, ...] = (),
    ) -> None:
        self.cases[case_id] = replace(
            self.cases[case_id], score=score, segment=segment, comment=comment, themes=themes
        )

    async def set_aside(self, responses: Sequence[SetAside]) -> None:
        self.not_acted_on += responses

    async def cases_of_batch(
        self, response_ids: Iterable[uuid.UUID], customer_ids: Iterable[str]
    ) -> tuple[dict[uuid.UUID, uuid.UUID], dict[str, Case]]:
        wanted = set(customer_ids)
        by_opening = sorted(self.cases.values(), key=lambda c: c.opened_at)
        active = {
            c.customer_id: c for c in by_opening if c.customer_id in wanted and c.status.is_active
        }
        return await self.cases_for_responses(response_ids), active

    async def latest_worked_cases_of(self, customer_ids: Iterable[str]) -> dict[str, Case]:
        wanted = set(customer_ids)
        by_opening = sorted(self.cases.values(), key=lambda c: c.opened_at)
        return {
            c.customer_id: c
            for c in by_opening
            if c.customer_id in wanted and c.status is not CaseStatus.AUTOMATED
        }

    async def reserve_turns(self, team: str, count: int) -> int:
        first = self.turns.get(team, -1) + 1
        self.turns[team] = first + count - 1
        return first

    async def add_cases(
        self,
        cases: Sequence[Case],
        timers: Sequence[tuple[uuid.UUID, PlannedTimer]],
        *,
        exempt: set[uuid.UUID],
        priority: dict[uuid.UUID, str],
        requested: Sequence[tuple[uuid.UUID, Action]] = (),
        recipient: dict[uuid.UUID, str] | None = None,
    ) -> set[uuid.UUID]:
        inserted = {c.case_id for c in cases if c.case_id not in self.cases}
        asked = [(case_id, a) for case_id, a in requested if case_id in inserted]
        self.requested += asked
        self.priorities.update(
            {a.action_id: priority[a.action_id] for _, a in asked if a.action_id in priority}
        )
        self.recipients.update(
            {
                a.action_id: (recipient or {})[a.action_id]
                for _, a in asked
                if a.action_id in (recipient or {})
            }
        )
        self.reasons.update(
            {a.action_id: a.reason for c in cases if c.case_id in inserted for a in c.actions}
        )
        for case in cases:
            if case.case_id not in inserted:
                continue
            self.cases[case.case_id] = replace(case, actions=(), timeline=())
            self.actions.update(
                {
                    a.action_id: ActionRow(
                        action_id=a.action_id,
                        case_id=case.case_id,
                        channel=a.channel,
                        template=a.template,
                        priority=priority.get(a.action_id),
                        state=a.state,
                        exempt_from_cap=a.action_id in exempt,
                    )
                    for a in case.actions
                }
            )
        for case_id, t in timers:
            if case_id in inserted:
                due = DueTimer(t.timer_id, case_id, t.kind, t.action_id, t.fire_at)
                self.timers[t.timer_id] = (due, "pending")
        return inserted


@dataclass
class InMemoryDoNotContact:
    """The `DoNotContactList` and `OptOuts` ports over dicts: each customer's entries by scope
    (an entry already there is kept, as the SQL's ON CONFLICT DO NOTHING keeps it) and the
    inbox (`processed`)."""

    entries: dict[str, dict[str, DoNotContactEntry]] = field(default_factory=dict)
    processed: set[str] = field(default_factory=set)

    async def claim(self, consumer: str, event_ids: Iterable[str]) -> set[str]:
        fresh = set(event_ids) - self.processed
        self.processed |= fresh
        return fresh

    async def opt_outs_of(self, customer_id: str) -> list[DoNotContactEntry]:
        return sorted(self.entries.get(customer_id, {}).values())

    async def add_opt_out(
        self, customer_id: str, scope: str, *, source: str, reason: str | None, at: datetime
    ) -> None:
        scopes = self.entries.setdefault(customer_id, {})
        scopes.setdefault(scope, DoNotContactEntry(scope, source, reason, at))

    async def remove_opt_out(self, customer_id: str, scope: str) -> bool:
        return self.entries.get(customer_id, {}).pop(scope, None) is not None
