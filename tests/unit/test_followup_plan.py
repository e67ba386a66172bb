"""The shipped default policy applied with a frozen clock: which case and actions each
response gets, and when, across weekends, holidays, time zones and quiet hours."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from nps_events import Customer, Segment
from nps_events.ids import NAMESPACE
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.domain.cases import (
    CaseStatus,
    Planner,
    TimerKind,
    action_id_for,
    calendar_for,
    case_id_for,
    plan_case,
    plan_ladder,
    timer_id_for,
)
from nps_followup.domain.contact_rules import contact_block
from nps_followup.domain.ownership import choose_owner
from nps_followup.domain.policy import ActionKind, OwnerRule

POLICY = parse_policy(default_policy_text())
SMS_POLICY = parse_policy(
    default_policy_text().replace(
        "      - kind: ticket\n",
        "      - kind: sms\n        template: detractor_sms\n      - kind: ticket\n",
    )
)
RESPONSE = uuid.UUID("00000000-0000-4000-8000-000000000001")


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _plan(segment: Segment, now: str, *, timezone: str | None = None, policy=POLICY):  # type: ignore[no-untyped-def]
    return plan_case(
        response_id=RESPONSE,
        segment=segment,
        source="web",
        survey_id="q4",
        customer=Customer(
            id="c-1",
            email="c@example.com",
            phone="+33612345678",
            timezone=timezone,
            attributes={"sms_consent": "yes"},
        ),
        now=_utc(now),
        policy=policy,
        holidays_for=holidays_for(policy),
    )


@pytest.mark.parametrize(
    ("opened", "due", "remind", "second_level", "why"),
    [
        ("2026-11-24 10:00", "2026-11-26 10:00", "2026-11-25 14:00", "2026-11-27 10:00", "Tue"),
        ("2026-11-27 16:00", "2026-12-01 16:00", "2026-12-01 12:00", "2026-12-02 16:00", "Fri"),
        ("2026-11-28 12:00", "2026-12-01 17:00", "2026-12-01 13:00", "2026-12-02 17:00", "Sat"),
        ("2026-12-23 10:00", "2026-12-29 10:00", "2026-12-24 14:00", "2026-12-30 10:00", "Xmas"),
        ("2026-11-24 22:00", "2026-11-26 17:00", "2026-11-26 13:00", "2026-11-27 17:00", "night"),
    ],
)
def test_detractor_case_is_due_in_two_business_days_with_its_ladder(
    opened: str, due: str, remind: str, second_level: str, why: str
) -> None:
    plan = _plan(Segment.DETRACTOR, opened)
    assert plan is not None
    assert plan.status is CaseStatus.OPEN
    assert plan.team == "customer-success"
    assert plan.owner_rule is OwnerRule.ACCOUNT_OWNER
    # London in winter is UTC; the owner is reminded 4 business hours before the deadline.
    assert (plan.due_at, plan.remind_at, plan.second_level_at) == (
        _utc(due),
        _utc(remind),
        _utc(second_level),
    ), why
    timers = {t.kind: t.fire_at for t in plan.timers if t.kind is not TimerKind.ACTION}
    assert timers == {
        TimerKind.REMINDER: _utc(remind),
        TimerKind.ESCALATION: _utc(due),
        TimerKind.SECOND_LEVEL: _utc(second_level),
    }


@pytest.mark.parametrize("opened", ["2026-11-24 10:00", "2026-11-28 23:30", "2026-12-25 03:00"])
def test_detractor_gets_the_acknowledgement_and_the_ticket_at_once_whatever_the_day(
    opened: str,
) -> None:
    plan = _plan(Segment.DETRACTOR, opened, timezone="Asia/Tokyo")
    assert plan is not None
    assert [(a.kind, a.template, a.at) for a in plan.actions] == [
        (ActionKind.EMAIL, "detractor_acknowledgement", _utc(opened)),
        (ActionKind.TICKET, None, _utc(opened)),
    ]
    assert plan.actions[0].exempt_from_frequency_cap


@pytest.mark.parametrize(
    ("segment", "opened", "timezone", "sent", "template"),
    [
        (Segment.PASSIVE, "2026-11-24 10:00", None, "2026-11-25 10:00", "passive_education"),
        (
            Segment.PASSIVE,
            "2026-11-24 10:00",
            "Asia/Tokyo",
            "2026-11-26 00:00",
            "passive_education",
        ),
        (
            Segment.PROMOTER,
            "2026-11-24 20:00",
            "Europe/Paris",
            "2026-11-26 08:00",
            "promoter_thank_you",
        ),
        (
            Segment.PROMOTER,
            "2026-11-24 12:00",
            "America/New_York",
            "2026-11-25 14:00",
            "promoter_thank_you",
        ),
        (
            Segment.PROMOTER,
            "2026-11-24 12:00",
            "Not/AZone",
            "2026-11-25 12:00",
            "promoter_thank_you",
        ),
    ],
)
def test_passives_and_promoters_get_one_email_a_day_later_in_their_own_daytime(
    segment: Segment, opened: str, timezone: str | None, sent: str, template: str
) -> None:
    plan = _plan(segment, opened, timezone=timezone)
    assert plan is not None
    assert plan.status is CaseStatus.AUTOMATED
    assert plan.due_at is None
    assert [(a.kind, a.template, a.at) for a in plan.actions] == [
        (ActionKind.EMAIL, template, _utc(sent))
    ]
    assert [t.kind for t in plan.timers] == [TimerKind.ACTION]


@pytest.mark.parametrize(
    ("opened", "timezone", "sms_at"),
    [
        ("2026-11-24 12:00", "Europe/Paris", "2026-11-24 12:00"),
        ("2026-11-24 22:00", "Europe/Paris", "2026-11-25 07:00"),
        ("2026-11-24 14:00", "Asia/Tokyo", "2026-11-24 23:00"),
    ],
)
def test_an_sms_waits_for_the_end_of_the_customers_quiet_hours(
    opened: str, timezone: str, sms_at: str
) -> None:
    plan = _plan(Segment.DETRACTOR, opened, timezone=timezone, policy=SMS_POLICY)
    assert plan is not None
    [sms] = [a for a in plan.actions if a.kind is ActionKind.SMS]
    assert sms.at == _utc(sms_at)


def test_a_redelivered_response_plans_the_same_case_and_actions() -> None:
    first = _plan(Segment.DETRACTOR, "2026-11-24 10:00")
    again = _plan(Segment.DETRACTOR, "2026-11-24 11:00")
    assert first is not None
    assert again is not None
    assert first.case_id == again.case_id == case_id_for(RESPONSE)
    assert [a.action_id for a in first.actions] == [a.action_id for a in again.actions]
    assert [t.timer_id for t in first.timers] == [t.timer_id for t in again.timers]


def test_a_plans_ids_are_the_uuid5_of_the_case_and_what_each_one_is() -> None:
    # The ids stored and published for a case's actions and timers (notify de-duplicates on
    # them; a redelivery after a crash must find them): written out here from their names.
    plan = _plan(Segment.DETRACTOR, "2026-11-24 10:00")
    assert plan is not None
    case = str(plan.case_id)
    assert plan.case_id == uuid.uuid5(NAMESPACE, f"case\x1f{RESPONSE}")
    for index, action in enumerate(plan.actions):
        name = f"action\x1f{case}\x1f{index}\x1f{action.kind.value}\x1f{action.template or ''}"
        assert action.action_id == uuid.uuid5(NAMESPACE, name)
        assert action.action_id == action_id_for(
            plan.case_id, index, action.kind.value, action.template
        )
    for timer in plan.timers:
        detail = str(timer.action_id) if timer.kind is TimerKind.ACTION else ""
        name = f"timer\x1f{case}\x1f{timer.kind.value}\x1f{detail}"
        assert timer.timer_id == uuid.uuid5(NAMESPACE, name)
        assert timer.timer_id == timer_id_for(plan.case_id, timer.kind, detail)
    assert {t.kind for t in plan.timers} == {
        TimerKind.ACTION,
        TimerKind.REMINDER,
        TimerKind.ESCALATION,
        TimerKind.SECOND_LEVEL,
    }


@pytest.mark.parametrize(
    ("rule", "attributes", "turn", "owner"),
    [
        (OwnerRule.ACCOUNT_OWNER, {"account_owner": "kim@example.com"}, 0, "kim@example.com"),
        (OwnerRule.ACCOUNT_OWNER, {}, 3, "sam@example.com"),
        (OwnerRule.ROUND_ROBIN, {"account_owner": "kim@example.com"}, 4, "alex@example.com"),
        (OwnerRule.UNASSIGNED, {}, 1, None),
        # An account owner no notice could reach is no owner: the round-robin applies.
        (
            OwnerRule.ACCOUNT_OWNER,
            {"account_owner": "ok@team.example, outsider@example.org"},
            1,
            "sam@example.com",
        ),
        (OwnerRule.ACCOUNT_OWNER, {"account_owner": "Kim Jones"}, 0, "alex@example.com"),
        (OwnerRule.ACCOUNT_OWNER, {"account_owner": "webhook:ops"}, 0, "webhook:ops"),
    ],
)
def test_owner_by_rule(
    rule: OwnerRule, attributes: dict[str, str], turn: int, owner: str | None
) -> None:
    members = ("alex@example.com", "sam@example.com")
    assert choose_owner(rule, members=members, attributes=attributes, turn=turn) == owner


NOW = _utc("2026-11-24 10:00")
WEEK = timedelta(days=7)


@pytest.mark.parametrize(
    ("kind", "customer", "opted_out", "last", "exempt", "blocked"),
    [
        (ActionKind.EMAIL, Customer(id="c", email="c@x.io"), set(), None, False, None),
        (
            ActionKind.EMAIL,
            Customer(id="c", email="c@x.io"),
            {"email"},
            None,
            True,
            "do-not-contact",
        ),
        (
            ActionKind.EMAIL,
            Customer(id="c", email="c@x.io"),
            {"all"},
            None,
            False,
            "do-not-contact",
        ),
        (ActionKind.EMAIL, Customer(id="c", email="c@x.io"), {"sms"}, None, False, None),
        (ActionKind.EMAIL, Customer(id="c"), set(), None, False, "no email address"),
        (
            ActionKind.EMAIL,
            Customer(id="c", email="c@x.io"),
            set(),
            NOW - timedelta(days=2),
            False,
            "frequency cap",
        ),
        (
            ActionKind.EMAIL,
            Customer(id="c", email="c@x.io"),
            set(),
            NOW - timedelta(days=2),
            True,
            None,
        ),
        (
            ActionKind.EMAIL,
            Customer(id="c", email="c@x.io"),
            set(),
            NOW - timedelta(days=8),
            False,
            None,
        ),
        (ActionKind.SMS, Customer(id="c", phone="+33612345678"), set(), None, False, "consented"),
        (
            ActionKind.SMS,
            Customer(id="c", phone="+33612345678", attributes={"sms_consent": "yes"}),
            set(),
            None,
            False,
            None,
        ),
        (
            ActionKind.SMS,
            Customer(id="c", attributes={"sms_consent": "yes"}),
            set(),
            None,
            False,
            "no phone",
        ),
        (ActionKind.TICKET, Customer(id="c"), {"all"}, NOW, False, None),
    ],
)
def test_contact_rules_protect_the_customer(  # noqa: PLR0917 - one per table column
    kind: ActionKind,
    customer: Customer,
    opted_out: set[str],
    last: datetime | None,
    exempt: bool,
    blocked: str | None,
) -> None:
    reason = contact_block(
        kind=kind,
        customer=customer,
        opted_out=opted_out,
        last_message_at=last,
        exempt=exempt,
        cap=WEEK,
        now=NOW,
    )
    if blocked is None:
        assert reason is None
    else:
        assert reason is not None
        assert blocked in reason


#: The SMS policy with a rule for enterprise detractors (an attribute decides the rule, and so
#: the deadlines and actions) and one for the `app` source's passives.
MIXED_POLICY = parse_policy(
    default_policy_text()
    .replace(
        "      - kind: ticket\n",
        "      - kind: sms\n        template: detractor_sms\n      - kind: ticket\n",
    )
    .replace(
        "\nact_on_responses_within:",
        """
  - name: enterprise
    when: {segment: detractor, attributes: {plan: enterprise}}
    case:
      team: customer-success
      owner: round_robin
      contact_within: 4 business hours
    actions:
      - kind: email
        template: detractor_acknowledgement
        exempt_from_frequency_cap: true
  - name: app-passive
    when: {segment: passive, source: app}
    actions:
      - kind: sms
        template: passive_sms
        after: 2 hours
act_on_responses_within:""",
        1,
    )
)


def test_a_planner_shared_by_a_batch_plans_each_response_as_if_it_were_alone() -> None:
    # A batch's planner works out the rule, the deadlines and the delivery times once for
    # the responses that share them: each plan must still be the one its response gets on
    # its own, whatever the responses planned before it (segments, sources, attributes that
    # choose another rule or none, time zones that move an SMS or an email).
    now = _utc("2026-11-27 20:30")
    planner = Planner(MIXED_POLICY, holidays_for(MIXED_POLICY), now)
    responses = [
        (
            uuid.UUID(int=i),
            segment,
            source,
            Customer(
                id=f"c-{i}",
                email="c@example.com",
                phone="+33612345678",
                timezone=timezone,
                attributes={"sms_consent": "yes", **({"plan": plan} if plan else {})},
            ),
        )
        for i, (segment, source, timezone, plan) in enumerate(
            (segment, source, timezone, plan)
            for segment in (Segment.DETRACTOR, Segment.PASSIVE, Segment.PROMOTER)
            for source in ("web", "app")
            for timezone in (None, "Asia/Tokyo", "America/Los_Angeles", "Not/AZone")
            for plan in (None, "enterprise", "Enterprise", "smb")
        )
    ]
    plans = [
        planner.plan(
            response_id=response_id,
            segment=segment,
            source=source,
            survey_id="q4",
            customer=customer,
        )
        for response_id, segment, source, customer in responses
    ]
    alone = [
        plan_case(
            response_id=response_id,
            segment=segment,
            source=source,
            survey_id="q4",
            customer=customer,
            now=now,
            policy=MIXED_POLICY,
            holidays_for=holidays_for(MIXED_POLICY),
        )
        for response_id, segment, source, customer in responses
    ]
    assert plans == alone
    # Every rule was chosen, and the choices moved some actions (so the cases differ).
    assert {p.rule for p in plans if p is not None} == {
        "detractor",
        "enterprise",
        "passive",
        "app-passive",
        "promoter",
    }
    assert len({(p.rule, tuple(a.at for a in p.actions)) for p in plans if p is not None}) > 5


def test_a_planners_ladder_is_plan_ladders() -> None:
    # The batch's deadlines, once per rule, with each case's own timer ids.
    now = _utc("2026-12-23 10:00")
    plan = Planner(POLICY, holidays_for(POLICY), now).plan(
        response_id=RESPONSE,
        segment=Segment.DETRACTOR,
        source="web",
        survey_id="q4",
        customer=Customer(id="c-1"),
    )
    assert plan is not None
    rule = POLICY.rules[plan.rule_index]
    assert rule.case is not None
    ladder = plan_ladder(
        plan.case_id, rule, now, calendar_for(POLICY, rule.case.team, holidays_for(POLICY))
    )
    assert (plan.due_at, plan.remind_at, plan.second_level_at) == (
        ladder.due_at,
        ladder.remind_at,
        ladder.second_level_at,
    )
    assert plan.timers[-len(ladder.timers) :] == ladder.timers


def test_a_planners_response_window_is_the_policys() -> None:
    planner = Planner(MIXED_POLICY, holidays_for(MIXED_POLICY), _utc("2026-11-27 20:30"))
    for rule in (*MIXED_POLICY.rules, None, *MIXED_POLICY.rules):
        window = MIXED_POLICY.response_window(rule)
        assert planner.response_window(rule) == (window, window.calendar())
