"""People's transitions of a case (assign, contact, resolve, close, reopen) through followup's
handlers, against the in-memory fake of their port: what each records on the timeline, what it
publishes, who is told, and what happens to the escalation ladder."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from nps_events import (
    Actor,
    ActorKind,
    CaseAssigned,
    CaseClosed,
    CaseContactRecorded,
    CaseReopened,
    CaseResolved,
    ContactOutcome,
    Customer,
    NotifyStaff,
    Segment,
    StaffReason,
)
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.domain.cases import Case, CaseStatus, TimerKind, calendar_for, plan_ladder
from nps_followup.domain.lifecycle import LifecycleError, UnknownRootCause
from nps_followup.handlers import (
    CaseNotFound,
    PolicyInForce,
    UnknownOwner,
    assign_case,
    close_case,
    record_contact,
    reopen_case,
    resolve_case,
)
from tests.support.followup_fakes import InMemoryCaseLifecycle

_POLICY = parse_policy(default_policy_text())
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))
TEAM = "customer-success"
MEMBERS = _POLICY.teams[TEAM].members  # alex@, sam@ (round-robin in this order)
#: Tuesday morning in London: inside the team's business hours.
OPENED = datetime(2026, 3, 3, 10, tzinfo=UTC)
NOW = OPENED + timedelta(hours=2)
KIM = Actor(kind=ActorKind.PERSON, id="kim-subject", name="kim@example.com")
ALEX = Actor(kind=ActorKind.PERSON, id="alex-subject", name="alex@example.com")


def open_case(
    repo: InMemoryCaseLifecycle,
    *,
    customer: str = "c-1",
    attributes: dict[str, str] | None = None,
    team: str | None = TEAM,
    owner: str | None = None,
) -> Case:
    """A detractor case opened by the default policy's rule, with its ladder pending."""
    case_id = uuid.uuid4()
    rule = next(r for r in _POLICY.rules if r.name == "detractor")
    ladder = plan_ladder(case_id, rule, OPENED, calendar_for(_POLICY, TEAM, POLICY.holidays_for))
    case = Case(
        case_id=case_id,
        response_id=uuid.uuid4(),
        source="typeform",
        survey_id="s-1",
        customer_id=customer,
        customer_email="ada@example.com",
        customer_name="Ada",
        customer=Customer(
            id=customer, email="ada@example.com", name="Ada", attributes=attributes or {}
        ),
        segment=Segment.DETRACTOR,
        score=2,
        comment="slow support",
        status=CaseStatus.OPEN,
        opened_at=OPENED,
        due_at=ladder.due_at,
        remind_at=ladder.remind_at,
        second_level_at=ladder.second_level_at,
        rule="detractor",
        team=team,
        owner=owner,
    )
    return repo.add(case, ladder=ladder.timers)


def notices(repo: InMemoryCaseLifecycle) -> list[NotifyStaff]:
    return [e for e in repo.published if isinstance(e, NotifyStaff)]


# --- assign ---------------------------------------------------------------------------------


async def test_assigning_a_team_member_tells_them_with_the_contact_deadline() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)

    assigned = await assign_case(
        repo, case.case_id, owner="sam@example.com", actor=KIM, now=NOW, policy=POLICY
    )

    assert assigned.owner == "sam@example.com"
    [entry] = assigned.timeline
    assert (entry.kind, entry.actor, entry.details) == (
        "assigned",
        KIM,
        {"owner": "sam@example.com", "by_rule": False},
    )
    [event] = [e for e in repo.published if isinstance(e, CaseAssigned)]
    assert (event.owner, event.by_rule, event.actor) == ("sam@example.com", False, KIM)
    [notice] = notices(repo)
    assert (notice.recipient, notice.reason, notice.due_at) == (
        "sam@example.com",
        StaffReason.ASSIGNED,
        case.due_at,
    )
    assert repo.recipients[notice.action_id] == "sam@example.com"
    assert [a.action_id for a in assigned.actions] == [notice.action_id]


async def test_taking_a_case_yourself_sends_no_notice() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)

    taken = await assign_case(
        repo, case.case_id, owner="alex@example.com", actor=ALEX, now=NOW, policy=POLICY
    )

    assert taken.owner == "alex@example.com"
    assert notices(repo) == []
    assert [type(e) for e in repo.published] == [CaseAssigned]


async def test_reassigning_to_the_same_owner_sends_no_second_notice() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo, owner="sam@example.com")

    await assign_case(
        repo, case.case_id, owner="sam@example.com", actor=KIM, now=NOW, policy=POLICY
    )

    assert notices(repo) == []


async def test_an_owner_outside_the_team_is_refused_and_nothing_changes() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)

    with pytest.raises(UnknownOwner, match="not a member of team 'customer-success'"):
        await assign_case(
            repo, case.case_id, owner="eve@elsewhere.io", actor=KIM, now=NOW, policy=POLICY
        )

    assert repo.published == []
    assert repo.cases[case.case_id].owner is None


async def test_the_team_lead_may_own_a_case_named_in_any_case() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)

    assigned = await assign_case(
        repo, case.case_id, owner="CS-Lead@example.com", actor=KIM, now=NOW, policy=POLICY
    )

    assert assigned.owner == "CS-Lead@example.com"


async def test_assign_by_rule_gives_the_case_to_the_customers_account_owner() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo, attributes={"account_owner": "am@example.com"})

    assigned = await assign_case(repo, case.case_id, owner=None, actor=KIM, now=NOW, policy=POLICY)

    assert assigned.owner == "am@example.com"
    assert assigned.timeline[0].details == {"owner": "am@example.com", "by_rule": True}
    assert repo.turns == {}  # the account owner takes no round-robin turn
    [notice] = notices(repo)
    assert notice.recipient == "am@example.com"


async def test_assign_by_rule_without_an_account_owner_takes_the_teams_turns_in_order() -> None:
    repo = InMemoryCaseLifecycle()
    cases = [open_case(repo, customer=f"c-{i}") for i in range(3)]
    # an account owner that no notice can reach is no owner: round-robin applies
    unreachable = open_case(repo, customer="c-x", attributes={"account_owner": "somebody"})

    owners = [
        (await assign_case(repo, c.case_id, owner=None, actor=KIM, now=NOW, policy=POLICY)).owner
        for c in [*cases, unreachable]
    ]

    assert owners == [MEMBERS[0], MEMBERS[1], MEMBERS[0], MEMBERS[1]]
    assert repo.turns == {TEAM: 3}


async def test_assign_by_rule_needs_a_team() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo, team=None)

    with pytest.raises(LifecycleError, match="no team"):
        await assign_case(repo, case.case_id, owner=None, actor=KIM, now=NOW, policy=POLICY)
    assert repo.published == []


async def test_an_unknown_case_is_not_found() -> None:
    repo = InMemoryCaseLifecycle()

    with pytest.raises(CaseNotFound):
        await close_case(repo, uuid.uuid4(), actor=KIM, now=NOW, policy=POLICY)


# --- contact --------------------------------------------------------------------------------


async def test_reaching_the_customer_in_time_stops_the_ladder() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)
    assert {t.kind for t in repo.pending(case.case_id)} == {
        TimerKind.REMINDER,
        TimerKind.ESCALATION,
        TimerKind.SECOND_LEVEL,
    }

    contacted = await record_contact(
        repo,
        case.case_id,
        channel="phone",
        outcome=ContactOutcome.REACHED,
        note="called back",
        actor=ALEX,
        now=NOW,
    )

    assert (contacted.status, contacted.first_contact_at) == (CaseStatus.CONTACTED, NOW)
    assert repo.pending(case.case_id) == []
    [event] = repo.published
    assert isinstance(event, CaseContactRecorded)
    assert (event.outcome, event.within_sla, event.actor) == (ContactOutcome.REACHED, True, ALEX)
    assert contacted.timeline[0].details == {
        "channel": "phone",
        "outcome": "reached",
        "note": "called back",
        "within_sla": True,
    }


async def test_reaching_the_customer_after_the_deadline_is_recorded_as_late() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)
    assert case.due_at is not None

    late = case.due_at + timedelta(minutes=1)
    await record_contact(
        repo,
        case.case_id,
        channel="phone",
        outcome=ContactOutcome.REACHED,
        note=None,
        actor=ALEX,
        now=late,
    )

    [event] = repo.published
    assert isinstance(event, CaseContactRecorded)
    assert event.within_sla is False


async def test_an_attempt_that_did_not_reach_the_customer_keeps_the_ladder() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)

    tried = await record_contact(
        repo,
        case.case_id,
        channel="phone",
        outcome=ContactOutcome.NO_ANSWER,
        note=None,
        actor=ALEX,
        now=NOW,
    )

    assert (tried.status, tried.first_contact_at) == (CaseStatus.OPEN, None)
    assert len(repo.pending(case.case_id)) == 3
    [event] = repo.published
    assert isinstance(event, CaseContactRecorded)
    assert event.within_sla is None


# --- resolve, close, reopen -----------------------------------------------------------------


async def test_resolving_records_the_root_cause_and_cancels_the_ladder() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)

    resolved = await resolve_case(
        repo,
        case.case_id,
        root_cause="support_experience",
        note="refunded",
        actor=ALEX,
        now=NOW,
        policy=POLICY,
    )

    assert (resolved.status, resolved.root_cause, resolved.resolved_at) == (
        CaseStatus.RESOLVED,
        "support_experience",
        NOW,
    )
    assert repo.pending(case.case_id) == []
    [event] = repo.published
    assert isinstance(event, CaseResolved)
    assert (event.root_cause, event.actor) == ("support_experience", ALEX)


async def test_a_root_cause_outside_the_taxonomy_is_refused() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)

    with pytest.raises(UnknownRootCause, match="not in the policy's taxonomy"):
        await resolve_case(
            repo, case.case_id, root_cause="gremlins", note=None, actor=ALEX, now=NOW, policy=POLICY
        )

    assert repo.published == []
    assert repo.cases[case.case_id].status is CaseStatus.OPEN
    assert len(repo.pending(case.case_id)) == 3


async def test_closing_a_resolved_case() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)
    await resolve_case(
        repo, case.case_id, root_cause="other", note=None, actor=ALEX, now=NOW, policy=POLICY
    )

    closed = await close_case(
        repo, case.case_id, actor=KIM, now=NOW + timedelta(hours=1), policy=POLICY
    )

    assert (closed.status, closed.closed_at) == (CaseStatus.CLOSED, NOW + timedelta(hours=1))
    assert isinstance(repo.published[-1], CaseClosed)
    assert [e.kind for e in closed.timeline] == ["resolved", "closed"]


async def test_a_case_still_open_cannot_be_closed() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)

    with pytest.raises(LifecycleError, match="cannot close a case that is open"):
        await close_case(repo, case.case_id, actor=KIM, now=NOW, policy=POLICY)
    assert repo.published == []


async def test_reopening_a_case_nobody_contacted_gives_it_a_new_deadline_and_ladder() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)
    await resolve_case(
        repo, case.case_id, root_cause="other", note=None, actor=ALEX, now=NOW, policy=POLICY
    )
    later = NOW + timedelta(days=7)

    reopened = await reopen_case(
        repo, case.case_id, reason="customer wrote again", actor=KIM, now=later, policy=POLICY
    )

    assert reopened.status is CaseStatus.OPEN
    assert reopened.due_at is not None
    assert case.due_at is not None
    assert reopened.due_at > later > case.due_at
    assert reopened.escalation_level == 0
    ladder = repo.pending(case.case_id)
    assert {t.kind for t in ladder} == {
        TimerKind.REMINDER,
        TimerKind.ESCALATION,
        TimerKind.SECOND_LEVEL,
    }
    assert all(t.fire_at > later for t in ladder)
    event = repo.published[-1]
    assert isinstance(event, CaseReopened)
    assert event.due_at == reopened.due_at
    assert reopened.timeline[-1].details == {
        "reason": "customer wrote again",
        "due_at": reopened.due_at.isoformat(),
    }


async def test_reopening_a_contacted_case_needs_no_new_ladder() -> None:
    repo = InMemoryCaseLifecycle()
    case = open_case(repo)
    await record_contact(
        repo,
        case.case_id,
        channel="email",
        outcome=ContactOutcome.REACHED,
        note=None,
        actor=ALEX,
        now=NOW,
    )
    await resolve_case(
        repo, case.case_id, root_cause="other", note=None, actor=ALEX, now=NOW, policy=POLICY
    )

    reopened = await reopen_case(repo, case.case_id, reason=None, actor=KIM, now=NOW, policy=POLICY)

    assert reopened.status is CaseStatus.CONTACTED
    assert repo.pending(case.case_id) == []
    event = repo.published[-1]
    assert isinstance(event, CaseReopened)
    assert event.due_at is None


async def test_a_case_is_not_reopened_while_the_customer_has_another_in_progress() -> None:
    repo = InMemoryCaseLifecycle()
    old = open_case(repo, customer="c-1")
    await resolve_case(
        repo, old.case_id, root_cause="other", note=None, actor=ALEX, now=NOW, policy=POLICY
    )
    newer = open_case(repo, customer="c-1")

    with pytest.raises(LifecycleError, match=str(newer.case_id)):
        await reopen_case(repo, old.case_id, reason=None, actor=KIM, now=NOW, policy=POLICY)
    assert repo.cases[old.case_id].status is CaseStatus.RESOLVED
