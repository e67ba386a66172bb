"""The sweeper's use case against the in-memory fake of its port: due ladder timers remind the
owner and escalate to the lead (raising the ticket's priority), due scheduled actions go to
notify unless a contact rule holds them back, and every claimed timer is marked fired."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from nps_events import (
    CaseEscalated,
    CaseReminded,
    Customer,
    NotifyStaff,
    RaiseTicketPriority,
    Segment,
    SendEmail,
    StaffReason,
)
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import ActionRow, DueTimer
from nps_followup.domain.cases import ActionState, Case, CaseStatus, TimerKind
from nps_followup.handlers import PolicyInForce, sweep_due_timers
from tests.support.followup_fakes import InMemoryTimers

_POLICY = parse_policy(default_policy_text())
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))
LEAD = _POLICY.teams["customer-success"].lead
NOW = datetime(2026, 3, 5, 12, tzinfo=UTC)


def a_case(repo: InMemoryTimers, *, status: CaseStatus = CaseStatus.OPEN) -> Case:
    """An open detractor case owned by alex@, due a minute ago, with a ticket requested and an
    acknowledgement email scheduled."""
    case = Case(
        case_id=uuid.uuid4(),
        response_id=uuid.uuid4(),
        source="typeform",
        survey_id="s-1",
        customer_id=f"c-{uuid.uuid4().hex[:6]}",
        customer_email="ada@example.com",
        customer_name="Ada",
        customer=Customer(id="c", email="ada@example.com", name="Ada"),
        segment=Segment.DETRACTOR,
        score=2,
        comment="slow",
        status=status,
        opened_at=NOW - timedelta(days=2),
        due_at=NOW - timedelta(minutes=1),
        rule="detractor",
        team="customer-success",
        owner="alex@example.com",
    )
    repo.add(
        case,
        [],
        [
            ActionRow(uuid.uuid4(), case.case_id, "ticket", None, "high", ActionState.SENT, False),
            ActionRow(
                uuid.uuid4(),
                case.case_id,
                "email",
                "detractor_acknowledgement",
                "normal",
                ActionState.SCHEDULED,
                False,
            ),
        ],
    )
    return case


def timer(
    case: Case, kind: TimerKind, *, ago: timedelta, action: uuid.UUID | None = None
) -> DueTimer:
    return DueTimer(uuid.uuid4(), case.case_id, kind, action, NOW - ago)


def email_of(repo: InMemoryTimers, case: Case) -> ActionRow:
    return next(a for a in repo.actions.values() if a.case_id == case.case_id and a.template)


async def sweep(repo: InMemoryTimers, limit: int = 100) -> int:
    return await sweep_due_timers(repo, now=NOW, policy=POLICY, limit=limit)


async def test_the_deadline_escalates_to_the_lead_and_raises_the_tickets_priority() -> None:
    repo = InMemoryTimers()
    case = a_case(repo)
    due = timer(case, TimerKind.ESCALATION, ago=timedelta(minutes=1))
    repo.add(case, [due])

    assert await sweep(repo) == 1

    assert repo.state_of(due.timer_id) == "fired"
    assert repo.cases[case.case_id].escalation_level == 1
    [escalated] = [e for e in repo.published if isinstance(e, CaseEscalated)]
    assert (escalated.level, escalated.due_at) == (1, case.due_at)
    [notice] = [e for e in repo.published if isinstance(e, NotifyStaff)]
    assert (notice.recipient, notice.role, notice.reason, notice.level) == (
        LEAD,
        "lead",
        StaffReason.ESCALATION,
        1,
    )
    assert repo.recipients[notice.action_id] == LEAD
    [raise_] = [e for e in repo.published if isinstance(e, RaiseTicketPriority)]
    ticket = next(a for a in repo.actions.values() if a.channel == "ticket")
    assert raise_.ticket_action_id == ticket.action_id
    assert [e.kind for _, e in repo.timeline] == ["escalated_1"]


async def test_the_reminder_goes_to_the_owner_and_escalates_nothing() -> None:
    repo = InMemoryTimers()
    case = a_case(repo)
    repo.add(case, [timer(case, TimerKind.REMINDER, ago=timedelta(hours=4))])

    await sweep(repo)

    assert repo.cases[case.case_id].escalation_level == 0
    assert [type(e) for e in repo.published] == [CaseReminded, NotifyStaff]
    notice = repo.published[1]
    assert isinstance(notice, NotifyStaff)
    assert (notice.recipient, notice.role) == ("alex@example.com", "owner")


async def test_a_contacted_case_climbs_no_further() -> None:
    repo = InMemoryTimers()
    case = a_case(repo, status=CaseStatus.CONTACTED)
    due = timer(case, TimerKind.SECOND_LEVEL, ago=timedelta(minutes=1))
    repo.add(case, [due])

    assert await sweep(repo) == 1

    assert repo.state_of(due.timer_id) == "fired"
    assert repo.published == []
    assert repo.timeline == []


async def test_a_due_email_goes_to_notify_and_counts_for_the_frequency_cap() -> None:
    repo = InMemoryTimers()
    case = a_case(repo)
    email = email_of(repo, case)
    repo.add(case, [timer(case, TimerKind.ACTION, ago=timedelta(0), action=email.action_id)])

    await sweep(repo)

    [sent] = repo.published
    assert isinstance(sent, SendEmail)
    assert (sent.action_id, sent.template, sent.owner) == (
        email.action_id,
        "detractor_acknowledgement",
        "alex@example.com",
    )
    assert repo.actions[email.action_id].state is ActionState.PLANNED
    assert repo.last_message[case.customer_id] == NOW


async def test_a_customer_on_the_do_not_contact_list_gets_no_email() -> None:
    repo = InMemoryTimers()
    case = a_case(repo)
    email = email_of(repo, case)
    repo.do_not_contact[case.customer_id] = {"email"}
    repo.add(case, [timer(case, TimerKind.ACTION, ago=timedelta(0), action=email.action_id)])

    await sweep(repo)

    assert repo.published == []
    assert repo.actions[email.action_id].state is ActionState.SKIPPED
    assert "do-not-contact" in (repo.reasons[email.action_id] or "")
    [(_, entry)] = repo.timeline
    assert entry.kind == "action_skipped"
    assert case.customer_id not in repo.last_message


async def test_a_customer_messaged_within_the_cap_gets_no_second_message() -> None:
    repo = InMemoryTimers()
    case = a_case(repo)
    email = email_of(repo, case)
    repo.last_message[case.customer_id] = NOW - timedelta(days=1)
    repo.add(case, [timer(case, TimerKind.ACTION, ago=timedelta(0), action=email.action_id)])

    await sweep(repo)

    assert repo.published == []
    assert "frequency cap" in (repo.reasons[email.action_id] or "")


async def test_an_action_already_requested_is_not_sent_again() -> None:
    repo = InMemoryTimers()
    case = a_case(repo)
    email = email_of(repo, case)
    repo.actions[email.action_id] = replace(email, state=ActionState.PLANNED)
    repo.add(case, [timer(case, TimerKind.ACTION, ago=timedelta(0), action=email.action_id)])

    assert await sweep(repo) == 1

    assert repo.published == []


async def test_a_sweep_fires_at_most_its_limit_earliest_first() -> None:
    repo = InMemoryTimers()
    cases = [a_case(repo) for _ in range(3)]
    timers = [
        timer(c, TimerKind.ESCALATION, ago=timedelta(minutes=m))
        for c, m in zip(cases, (1, 3, 2), strict=True)
    ]
    for c, t in zip(cases, timers, strict=True):
        repo.add(c, [t])

    assert await sweep(repo, limit=2) == 2

    assert [repo.state_of(t.timer_id) for t in timers] == ["pending", "fired", "fired"]
    assert await sweep(repo, limit=2) == 1


async def test_a_reminder_due_with_the_escalation_raises_the_ticket_once() -> None:
    repo = InMemoryTimers()
    case = a_case(repo)
    repo.add(
        case,
        [
            timer(case, TimerKind.REMINDER, ago=timedelta(hours=4)),
            timer(case, TimerKind.ESCALATION, ago=timedelta(minutes=1)),
        ],
    )

    assert await sweep(repo) == 2

    assert len([e for e in repo.published if isinstance(e, RaiseTicketPriority)]) == 1
    assert [e.kind for _, e in repo.timeline] == ["reminded", "escalated_1"]
