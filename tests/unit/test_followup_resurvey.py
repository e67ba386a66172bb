"""Re-surveys: `resurvey_after` in the policy (per rule, policy-wide, `off`, refusals that name
the line), the decision table of whether and whom to ask when the time comes, and the use
cases against the in-memory fakes of their ports: closing sets the timer, reopening cancels
it, the sweep publishes `ResurveyRequested` or records why not, and the customer's next answer
is linked to the case."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from nps_events import (
    CaseResponseAttached,
    Customer,
    RequestResurvey,
    ResponseScored,
    ResurveyRequested,
    Segment,
)
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import PolicyError, parse_policy
from nps_followup.adapters.repository import DueTimer
from nps_followup.domain.cases import Case, CaseStatus, TimerKind
from nps_followup.domain.resurvey import (
    ResurveyRequest,
    Suppressed,
    answers_resurvey,
    resurvey_decision,
)
from nps_followup.handlers import (
    PolicyInForce,
    close_case,
    open_cases,
    reopen_case,
    sweep_due_timers,
)
from tests.support.followup_fakes import InMemoryCaseLifecycle, InMemoryOpening, InMemoryTimers
from tests.unit.test_followup_case_work import KIM

POLICY_TEXT = """\
version: 1
teams:
  cs: {members: [a@x.io], lead: l@x.io}
root_causes: [other]
rules:
  - name: detractor
    when: {segment: detractor}
    case: {team: cs, contact_within: 2 business days}
  - name: detractor-enterprise
    when: {segment: detractor, attributes: {plan: enterprise}}
    case: {team: cs, contact_within: 1 day}
    resurvey_after: 14d
  - name: detractor-trial
    when: {segment: detractor, attributes: {plan: trial}}
    case: {team: cs, contact_within: 1 day}
    resurvey_after: off
  - name: promoter
    when: {segment: promoter}
    actions: [{kind: email, template: promoter_thank_you, after: 1 day}]
resurvey_after: 30 days
"""
_POLICY = parse_policy(POLICY_TEXT)
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))
CLOSED = datetime(2026, 3, 6, 16, tzinfo=UTC)
ADA = Customer(id="ada", email="ada@example.com", phone="+14155550123", name="Ada")


@pytest.mark.parametrize(
    ("rule", "delay"),
    [
        ("detractor", "30 days"),  # the policy's own setting
        ("detractor-enterprise", "14 days"),  # the rule's
        ("detractor-trial", None),  # `off`
        ("promoter", None),  # no case a person closes: nothing to ask again about
    ],
)
def test_each_rule_resurveys_after_its_own_delay_else_the_policys(
    rule: str, delay: str | None
) -> None:
    found = _POLICY.resurvey_delay(next(r for r in _POLICY.rules if r.name == rule))
    assert (None if found is None else str(found)) == delay


def test_without_resurvey_after_nobody_is_asked_again() -> None:
    policy = parse_policy(POLICY_TEXT.replace("resurvey_after: 30 days\n", ""))
    assert [str(policy.resurvey_delay(r)) for r in policy.rules] == [
        "None",
        "14 days",
        "None",
        "None",
    ]


@pytest.mark.parametrize(
    ("change", "line", "says"),
    [
        (("resurvey_after: 30 days", "resurvey_after: 2 business days"), 20, "calendar time"),
        (("resurvey_after: 30 days", "resurvey_after: 0d"), 20, "longer than nothing"),
        (("resurvey_after: 14d", "resurvey_after: soonish"), 12, "is not a duration"),
        (
            ("after: 1 day}]\n", "after: 1 day}]\n    resurvey_after: 30d\n"),
            20,
            "opens none",
        ),
    ],
)
def test_a_wrong_resurvey_after_is_refused_naming_its_line(
    change: tuple[str, str], line: int, says: str
) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(POLICY_TEXT.replace(*change), name="p.yaml")
    [problem] = refused.value.problems
    assert problem.line == line
    assert problem.where.endswith("resurvey_after")
    assert says in problem.message


def closed_case(customer: Customer = ADA, **changes: object) -> Case:
    case = Case(
        case_id=uuid.uuid4(),
        response_id=uuid.uuid4(),
        source="typeform",
        survey_id="s-1",
        customer_id=customer.id,
        customer_email=customer.email,
        customer_name=customer.name,
        customer=customer,
        segment=Segment.DETRACTOR,
        score=3,
        comment="slow",
        status=CaseStatus.CLOSED,
        opened_at=CLOSED - timedelta(days=3),
        due_at=CLOSED - timedelta(days=1),
        rule="detractor",
        team="cs",
        owner="a@x.io",
        closed_at=CLOSED,
    )
    return replace(case, **changes)  # type: ignore[arg-type]


NO_ADDRESS = Customer(id="in-app-7")
EMAIL_ONLY = Customer(id="ada", email="ada@example.com")


@pytest.mark.parametrize(
    ("case", "opted_out", "answered", "expected"),
    [
        (closed_case(), set(), None, ADA),
        (closed_case(), set(), CLOSED - timedelta(days=9), ADA),  # the answer the case is about
        (closed_case(status=CaseStatus.CONTACTED, closed_at=None), set(), None, None),
        (closed_case(), {"all"}, None, "do_not_contact"),
        (closed_case(), set(), CLOSED + timedelta(days=2), "answered_again"),
        (closed_case(), {"email"}, None, ADA.model_copy(update={"email": None})),
        (closed_case(), {"email", "sms"}, None, "do_not_contact"),
        (closed_case(EMAIL_ONLY), {"email"}, None, "do_not_contact"),
        (closed_case(EMAIL_ONLY), {"sms"}, None, EMAIL_ONLY),
        (closed_case(NO_ADDRESS), set(), None, NO_ADDRESS),  # asked by id: an in-app survey
    ],
    ids=[
        "closed: ask",
        "answered before it closed: ask",
        "reopened: nothing",
        "do not contact at all",
        "answered again since",
        "no email: ask without it",
        "every channel opted out",
        "opted out of their only channel",
        "opted out of a channel they lack",
        "known by id alone",
    ],
)
def test_whether_and_whom_to_ask_again(
    case: Case, opted_out: set[str], answered: datetime | None, expected: object
) -> None:
    decision = resurvey_decision(
        case, case.customer or ADA, opted_out=opted_out, answered_again_at=answered
    )
    if isinstance(expected, str):
        assert isinstance(decision, Suppressed)
        assert decision.contact_rule == expected
        assert decision.reason
    else:
        assert decision == expected


def test_an_answer_given_before_the_request_is_not_its_answer() -> None:
    asked = CLOSED + timedelta(days=30)
    assert answers_resurvey(asked, asked + timedelta(hours=1))
    assert answers_resurvey(asked, asked)
    assert not answers_resurvey(asked, asked - timedelta(seconds=1))
    assert not answers_resurvey(None, asked)


# --- the use cases ---------------------------------------------------------------------------


async def test_closing_sets_the_resurvey_timer_and_reopening_cancels_it() -> None:
    repo = InMemoryCaseLifecycle()
    case = repo.add(
        closed_case(
            status=CaseStatus.RESOLVED, closed_at=None, resolved_at=CLOSED, rule="detractor"
        )
    )

    closed = await close_case(repo, case.case_id, actor=KIM, now=CLOSED, policy=POLICY)

    [timer] = repo.pending(case.case_id)
    assert (timer.kind, timer.fire_at) == (TimerKind.RESURVEY, CLOSED + timedelta(days=30))
    assert closed.timeline[-1].details == {
        "resurvey_at": (CLOSED + timedelta(days=30)).isoformat(),
        "resurvey_after": "30 days",
    }

    reopened = await reopen_case(
        repo,
        case.case_id,
        reason="still slow",
        actor=KIM,
        now=CLOSED + timedelta(days=2),
        policy=POLICY,
    )

    assert [t.state for t in repo.timers[case.case_id] if t.timer.kind is TimerKind.RESURVEY] == [
        "cancelled"
    ]
    assert reopened.timeline[-1].details["resurvey_cancelled"] == timer.fire_at.isoformat()


async def test_a_rule_with_resurvey_off_sets_no_timer() -> None:
    repo = InMemoryCaseLifecycle()
    case = repo.add(closed_case(status=CaseStatus.RESOLVED, closed_at=None, rule="detractor-trial"))
    closed = await close_case(repo, case.case_id, actor=KIM, now=CLOSED, policy=POLICY)
    assert repo.pending(case.case_id) == []
    assert closed.timeline[-1].details == {}


def resurvey_timer_of(case: Case) -> DueTimer:
    return DueTimer(
        uuid.uuid4(), case.case_id, TimerKind.RESURVEY, None, CLOSED + timedelta(days=30)
    )


async def test_the_sweep_asks_again_with_the_original_answer_once() -> None:
    repo = InMemoryTimers()
    case = closed_case()
    timer = resurvey_timer_of(case)
    repo.add(case, [timer])
    at = timer.fire_at + timedelta(seconds=5)

    assert await sweep_due_timers(repo, now=at, policy=POLICY, limit=10) == 1
    assert await sweep_due_timers(repo, now=at, policy=POLICY, limit=10) == 0

    [event] = repo.published
    assert isinstance(event, ResurveyRequested)
    assert (event.case_id, event.customer, event.score, event.segment) == (
        case.case_id,
        ADA,
        3,
        Segment.DETRACTOR,
    )
    assert (event.response_id, event.source, event.survey_id, event.closed_at) == (
        case.response_id,
        "typeform",
        "s-1",
        CLOSED,
    )
    [(_, entry)] = repo.timeline
    assert entry.kind == "resurvey_requested"
    assert event.entry_id == entry.entry_id
    assert repo.resurveys[case.case_id] == ResurveyRequest(
        case.case_id, "ada", timer.timer_id, CLOSED, at
    )


async def test_a_customer_on_the_do_not_contact_list_is_not_asked_and_the_case_says_why() -> None:
    repo = InMemoryTimers(do_not_contact={"ada": {"all"}})
    case = closed_case()
    timer = resurvey_timer_of(case)
    repo.add(case, [timer])

    await sweep_due_timers(repo, now=timer.fire_at, policy=POLICY, limit=10)

    assert repo.published == []
    assert repo.resurveys == {}
    [(_, entry)] = repo.timeline
    assert entry.kind == "resurvey_skipped"
    assert entry.details["contact_rule"] == "do_not_contact"
    assert repo.state_of(timer.timer_id) == "fired"


def answer(customer: Customer, score: int, at: datetime) -> ResponseScored:
    segment = (
        Segment.PROMOTER if score >= 9 else Segment.PASSIVE if score >= 7 else Segment.DETRACTOR
    )
    return ResponseScored(
        response_id=uuid.uuid4(),
        source="typeform",
        survey_id="s-1",
        customer=customer,
        score=score,
        segment=segment,
        responded_at=at,
        scored_at=at,
        received_event_id=uuid.uuid4(),
    )


async def test_the_first_answer_after_the_request_is_linked_to_the_case() -> None:
    repo = InMemoryOpening()
    case = closed_case()
    repo.add(case, [])
    asked = CLOSED + timedelta(days=30)
    repo.resurveys[case.case_id] = ResurveyRequest(case.case_id, "ada", uuid.uuid4(), CLOSED, asked)

    first = answer(ADA, 9, asked + timedelta(days=1))
    await open_cases(repo, [first], now=first.responded_at, policy=POLICY)
    second = answer(ADA, 6, asked + timedelta(days=40))
    await open_cases(repo, [second], now=second.responded_at, policy=POLICY)

    linked = repo.resurvey_answers[case.case_id]
    assert (linked.response_id, linked.score) == (first.response_id, 9)
    attached = [e for _, e in repo.timeline if e.kind == "response_attached"]
    assert [e.details.get("resurvey_requested_at") for e in attached] == [asked.isoformat(), None]
    assert [(e.details["score"], e.details["segment"]) for e in attached] == [
        (9, "promoter"),
        (6, "detractor"),
    ]
    events = [e for e in repo.published if isinstance(e, CaseResponseAttached)]
    assert [e.resurvey_requested_at for e in events] == [asked, None]
    assert repo.cases[case.case_id].latest_score == 6


# --- the survey tool's webhook (`resurvey_webhook`) ------------------------------------------

WEBHOOK_TEXT = (
    POLICY_TEXT.replace(
        "    resurvey_after: 14d\n",
        "    resurvey_after: 14d\n    resurvey_webhook: accounts_tool\n",
    ).replace(
        "  - name: promoter\n",
        "  - name: detractor-in-app\n"
        "    when: {segment: detractor, source: in-app}\n"
        "    case: {team: cs, contact_within: 1 day}\n"
        "    resurvey_webhook: off\n"
        "  - name: promoter\n",
    )
    + "resurvey_webhook: survey_tool\n"
)
_WEBHOOK_POLICY = parse_policy(WEBHOOK_TEXT)
WEBHOOK_POLICY = PolicyInForce(policy=_WEBHOOK_POLICY, holidays_for=holidays_for(_WEBHOOK_POLICY))


@pytest.mark.parametrize(
    ("rule", "endpoint"),
    [
        ("detractor", "survey_tool"),  # the policy's own setting
        ("detractor-enterprise", "accounts_tool"),  # the rule's
        ("detractor-in-app", None),  # `off`: the in-app survey asks by itself
        ("gone-since", "survey_tool"),  # a rule that left the policy: the policy's
    ],
)
def test_each_rule_calls_its_own_webhook_else_the_policys(rule: str, endpoint: str | None) -> None:
    found = next((r for r in _WEBHOOK_POLICY.rules if r.name == rule), None)
    assert _WEBHOOK_POLICY.resurvey_webhook_for(found) == endpoint


def test_without_resurvey_webhook_no_rule_calls_one() -> None:
    assert {_POLICY.resurvey_webhook_for(r) for r in _POLICY.rules} == {None}


@pytest.mark.parametrize(
    ("change", "line", "where", "says"),
    [
        (
            ("resurvey_webhook: survey_tool\n", "resurvey_webhook: ../admin\n"),
            26,
            "resurvey_webhook",
            "is not an endpoint name",
        ),
        (  # a rule that asks nobody again
            ("    resurvey_after: off\n", "    resurvey_after: off\n    resurvey_webhook: x\n"),
            18,
            "rules.2.resurvey_webhook",
            "asks nobody again",
        ),
        (  # the policy names one, and nothing asks again
            ("resurvey_after: 30 days\n", ""),
            23,
            "resurvey_webhook",
            "no rule asks anyone again",
        ),
    ],
)
def test_a_wrong_resurvey_webhook_is_refused_naming_its_line(
    change: tuple[str, str], line: int, where: str, says: str
) -> None:
    text = WEBHOOK_TEXT.replace(*change)
    if "no rule" in says:  # the enterprise rule's own delay would still ask
        text = text.replace("    resurvey_after: 14d\n    resurvey_webhook: accounts_tool\n", "")
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, name="p.yaml")
    [problem] = refused.value.problems
    assert (problem.line, problem.where) == (line, where)
    assert says in problem.message


async def test_the_sweep_also_asks_the_survey_tools_webhook_without_an_opted_out_address() -> None:
    repo = InMemoryTimers(do_not_contact={"ada": {"sms"}})
    case = closed_case()
    timer = resurvey_timer_of(case)
    repo.add(case, [timer])

    await sweep_due_timers(repo, now=timer.fire_at, policy=WEBHOOK_POLICY, limit=10)

    requested, request = repo.published
    assert isinstance(requested, ResurveyRequested)
    assert isinstance(request, RequestResurvey)
    assert request.endpoint == "survey_tool"
    assert request.customer == ADA.model_copy(update={"phone": None}) == requested.customer
    assert (request.case_id, request.response_id, request.survey_id, request.source) == (
        case.case_id,
        case.response_id,
        "s-1",
        "typeform",
    )
    assert (request.score, request.segment, request.closed_at, request.rule) == (
        3,
        Segment.DETRACTOR,
        CLOSED,
        "detractor",
    )
    assert request.requested_at == timer.fire_at
    # The case keeps the action, whose result notify reports, and the timeline names it.
    [(case_id, action)] = repo.requested
    assert (case_id, action.action_id) == (case.case_id, request.action_id)
    assert (action.channel, action.template) == ("webhook", "request_resurvey")
    assert repo.recipients[action.action_id] == "webhook:survey_tool"
    [(_, entry)] = repo.timeline
    assert entry.kind == "resurvey_requested"
    assert entry.details["webhook"] == "survey_tool"
    assert entry.details["action_id"] == str(request.action_id)


@pytest.mark.parametrize(
    ("changes", "endpoint"),
    [
        ({"rule": "detractor-enterprise"}, "accounts_tool"),
        ({"rule": "detractor-in-app", "source": "in-app"}, None),
    ],
)
async def test_the_sweep_calls_the_rules_webhook_or_none(
    changes: dict[str, str], endpoint: str | None
) -> None:
    repo = InMemoryTimers()
    case = closed_case(ADA, **changes)
    timer = resurvey_timer_of(case)
    repo.add(case, [timer])

    await sweep_due_timers(repo, now=timer.fire_at, policy=WEBHOOK_POLICY, limit=10)

    asked = [e.endpoint for e in repo.published if isinstance(e, RequestResurvey)]
    assert asked == ([] if endpoint is None else [endpoint])
    assert [type(e) for e in repo.published if isinstance(e, ResurveyRequested)] == [
        ResurveyRequested
    ]
    [(_, entry)] = repo.timeline
    assert entry.details.get("webhook") == endpoint
    assert len(repo.requested) == (0 if endpoint is None else 1)


async def test_a_re_survey_held_back_calls_no_webhook() -> None:
    repo = InMemoryTimers(do_not_contact={"ada": {"all"}})
    case = closed_case()
    timer = resurvey_timer_of(case)
    repo.add(case, [timer])

    await sweep_due_timers(repo, now=timer.fire_at, policy=WEBHOOK_POLICY, limit=10)

    assert repo.published == []
    assert repo.requested == []
    [(_, entry)] = repo.timeline
    assert entry.kind == "resurvey_skipped"
