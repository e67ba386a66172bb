"""One accumulator for a batch's writes (`handlers.writes.BatchWrites`): opening cases and
sweeping timers gather what they change there and write it in one statement per kind,
whatever the batch's size, with the events queued in the order they happened."""

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from nps_events import (
    CaseAssigned,
    CaseEscalated,
    CaseOpened,
    Customer,
    Event,
    NotifyStaff,
    ResponseScored,
    Segment,
    SendEmail,
)
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import DueTimer
from nps_followup.domain.cases import (
    Action,
    ActionState,
    Case,
    CaseStatus,
    TimelineEntry,
    TimerKind,
)
from nps_followup.domain.resurvey import ResurveyAnswer, ResurveyRequest
from nps_followup.domain.simulation import StoredResponse
from nps_followup.handlers import PolicyInForce, open_cases, sweep_due_timers
from nps_followup.handlers.common import requested_action, timeline_entry
from nps_followup.handlers.writes import TAKEN, BatchWrites
from tests.support.followup_fakes import InMemoryOpening, InMemoryTimers

_POLICY = parse_policy(default_policy_text())
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))
#: Tuesday morning in London: inside the team's business hours.
NOW = datetime(2026, 3, 3, 10, tzinfo=UTC)


@dataclass
class RecordedWrites:
    """The `BatchEffects` port that records each call with what it was given."""

    calls: list[tuple[str, object]] = field(default_factory=list)

    async def set_action_states(
        self, states: Sequence[tuple[uuid.UUID, ActionState, str | None]], *, at: datetime
    ) -> None:
        self.calls.append(("set_action_states", list(states)))

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
        self.calls.append(("add_records", (list(actions), priority, recipient, sorted(messaged))))

    async def set_escalation_levels(self, levels: Mapping[uuid.UUID, int]) -> None:
        self.calls.append(("set_escalation_levels", dict(levels)))

    async def record_latest_scores(self, cases: Sequence[Case]) -> None:
        self.calls.append(("record_latest_scores", list(cases)))

    async def record_resurveys(self, requested: Sequence[ResurveyRequest]) -> None:
        self.calls.append(("record_resurveys", list(requested)))

    async def record_resurvey_answers(self, answers: Sequence[ResurveyAnswer]) -> None:
        self.calls.append(("record_resurvey_answers", list(answers)))

    async def issue_referral_codes(
        self, codes: Sequence[tuple[str, str, uuid.UUID]], *, at: datetime
    ) -> None:
        self.calls.append(("issue_referral_codes", list(codes)))

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        self.calls.append(("publish_later", list(events)))


async def test_a_flush_writes_each_kind_once_with_all_the_batch_gathered() -> None:
    writes = BatchWrites(NOW)
    case_ids = [uuid.uuid4() for _ in range(3)]
    for i, case_id in enumerate(case_ids):
        notice = requested_action(uuid.uuid4(), "staff", "case_reminder", NOW)
        writes.request(case_id, notice, recipient=f"p{i}@example.com")
        raise_ = requested_action(uuid.uuid4(), "ticket", "raise_priority", NOW)
        writes.request(case_id, raise_, priority="urgent")
        writes.states.append((uuid.uuid4(), ActionState.PLANNED, None))
        writes.messaged.add(f"c-{i}")
    repo = RecordedWrites()

    await writes.flush(repo)

    names = [name for name, _ in repo.calls]
    assert sorted(Counter(names).values()) == [1] * 8  # each kind once
    by_name = dict(repo.calls)
    actions, priority, recipient, messaged = by_name["add_records"]
    assert [case_id for case_id, _ in actions] == [c for c in case_ids for _ in range(2)]
    assert sorted((recipient or {}).values()) == [f"p{i}@example.com" for i in range(3)]
    assert list((priority or {}).values()) == ["urgent"] * 3
    assert set(recipient or {}).isdisjoint(priority or {})
    assert len(by_name["set_action_states"]) == 3
    assert messaged == ["c-0", "c-1", "c-2"]


def detractor(customer: str) -> ResponseScored:
    return ResponseScored(
        response_id=uuid.uuid4(),
        source="typeform",
        survey_id="s-1",
        customer=Customer(id=customer, email=f"{customer}@example.com", name="Ada"),
        score=2,
        segment=Segment.DETRACTOR,
        comment="slow support",
        responded_at=NOW,
        scored_at=NOW,
        received_event_id=uuid.uuid4(),
    )


@dataclass
class OutboxWrites(InMemoryOpening):
    """The opening fake, keeping each outbox write apart."""

    outbox_writes: list[list[Event]] = field(default_factory=list)

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        self.outbox_writes.append(list(events))
        await super().publish_later(events, now=now)


async def test_opening_a_batch_queues_its_events_in_one_write_whatever_its_size() -> None:
    for size in (1, 20):
        repo = OutboxWrites()

        opened = await open_cases(
            repo, [detractor(f"c-{i}") for i in range(size)], now=NOW, policy=POLICY
        )

        assert len(opened) == size
        [events] = repo.outbox_writes
        assert Counter(type(e) for e in events)[SendEmail] == size


async def test_a_new_cases_events_come_in_the_order_they_happened() -> None:
    repo = OutboxWrites()

    [case] = await open_cases(repo, [detractor("c-1")], now=NOW, policy=POLICY)

    kinds = [type(e) for e in repo.published if getattr(e, "case_id", None) == case.case_id]
    # Opened, assigned and its owner told, then the acknowledgement due at once.
    assert kinds[:4] == [CaseOpened, CaseAssigned, NotifyStaff, SendEmail]
    [email] = [e for e in repo.published if isinstance(e, SendEmail)]
    assert repo.actions[email.action_id].state is ActionState.PLANNED
    assert repo.last_message == {"c-1": NOW}
    assert [e.kind for c, e in repo.timeline if c == case.case_id] == ["opened", "assigned"]


@dataclass
class SweepOutboxWrites(InMemoryTimers):
    """The sweeper's fake, keeping each outbox write apart."""

    outbox_writes: list[list[Event]] = field(default_factory=list)

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        self.outbox_writes.append(list(events))
        await super().publish_later(events, now=now)


def _overdue_case(customer_id: str, *, due_at: datetime, level: int = 0) -> Case:
    """An open detractor case of the default rule, opened three days ago, due at `due_at`."""
    return Case(
        case_id=uuid.uuid4(),
        response_id=uuid.uuid4(),
        source="typeform",
        survey_id="s-1",
        customer_id=customer_id,
        customer_email=None,
        customer_name=None,
        segment=Segment.DETRACTOR,
        score=2,
        comment=None,
        status=CaseStatus.OPEN,
        opened_at=NOW - timedelta(days=3),
        due_at=due_at,
        rule="detractor",
        team="customer-success",
        owner="alex@example.com",
        escalation_level=level,
    )


async def test_a_sweep_of_many_escalations_queues_them_in_one_write() -> None:
    repo = SweepOutboxWrites()
    due_at = NOW - timedelta(minutes=1)
    for i in range(15):
        case = _overdue_case(f"c-{i}", due_at=due_at)
        due = DueTimer(uuid.uuid4(), case.case_id, TimerKind.ESCALATION, None, due_at)
        repo.add(case, [due])

    assert await sweep_due_timers(repo, now=NOW, policy=POLICY, limit=100) == 15

    [events] = repo.outbox_writes
    assert Counter(type(e) for e in events)[CaseEscalated] == 15
    assert all(c.escalation_level == 1 for c in repo.cases.values())


async def test_a_case_another_transaction_opened_first_takes_nothing_of_what_opening_recorded() -> (
    None
):
    """`take_opened` keeps, of every field it takes (`TAKEN`), only the entries of the cases
    the insert added; the fields it does not take stay empty; and a customer counts as
    messaged only through a case that was inserted."""
    repo = OutboxWrites()
    mine, theirs = await open_cases(
        repo, [detractor("c-mine"), detractor("c-theirs")], now=NOW, policy=POLICY
    )
    opening = BatchWrites(NOW, events=list(repo.published), messaged={"c-mine", "c-theirs"})
    for case in (mine, theirs):
        entry = timeline_entry(case.case_id, "opened", NOW, origin="test", actor=None)
        opening.levels[case.case_id] = 1
        opening.latest_scores[case.case_id] = case
        opening.timeline.append((case.case_id, entry))
        opening.resurveys.append(
            ResurveyRequest(case.case_id, case.customer_id, uuid.uuid4(), NOW, NOW)
        )
        opening.resurvey_answers.append(ResurveyAnswer(case.case_id, uuid.uuid4(), 9, NOW))
        opening.referral_codes.append((f"code-{case.customer_id}", case.customer_id, case.case_id))
        opening.request(case.case_id, requested_action(uuid.uuid4(), "staff", "x", NOW))
    writes = BatchWrites(NOW)

    writes.take_opened(opening, {mine.case_id})

    for name, case_of in TAKEN.items():
        taken = getattr(writes, name)
        if case_of is None:
            continue
        assert taken, name  # the inserted case's entries are there
        keys = taken.keys() if isinstance(taken, dict) else taken
        assert {case_of(k) for k in keys} == {mine.case_id}, name
    assert writes.actions == []
    assert writes.recipients == {}
    assert writes.states == []
    assert writes.messaged == {"c-mine"}


@pytest.mark.parametrize(
    ("level_before", "kinds", "level_after"),
    [
        (0, (TimerKind.ESCALATION, TimerKind.SECOND_LEVEL), 2),  # two steps in one sweep
        (0, (TimerKind.SECOND_LEVEL, TimerKind.ESCALATION), 2),  # in either order of time
        (2, (TimerKind.ESCALATION,), 2),  # a late first step never lowers the level
        (0, (TimerKind.REMINDER,), 0),  # a reminder does not escalate
    ],
)
async def test_a_sweep_leaves_each_case_at_the_highest_level_it_reached(
    level_before: int, kinds: tuple[TimerKind, ...], level_after: int
) -> None:
    repo = SweepOutboxWrites()
    case = _overdue_case("c-1", due_at=NOW - timedelta(hours=len(kinds) + 1), level=level_before)
    timers = [
        DueTimer(uuid.uuid4(), case.case_id, kind, None, NOW - timedelta(hours=len(kinds) - i))
        for i, kind in enumerate(kinds)
    ]
    repo.add(case, timers)

    assert await sweep_due_timers(repo, now=NOW, policy=POLICY, limit=100) == len(kinds)

    assert repo.cases[case.case_id].escalation_level == level_after
    assert {repo.state_of(t.timer_id) for t in timers} == {"fired"}
