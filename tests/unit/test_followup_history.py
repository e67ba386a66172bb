"""History is not followed up, and every automatic decision says why (issue #16): how old a
response may be and still be acted on, per rule and policy-wide; which rule applied and which
others were considered; the calendar of a deadline; the contact rule that moved or held back a
message."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from nps_events import Customer, Segment
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import PolicyError, default_policy_text, parse_policy
from nps_followup.domain.cases import NotActedOn, not_acted_on, plan_case
from nps_followup.domain.contact_rules import held_back
from nps_followup.domain.policy import ActionKind, Duration, DurationUnit

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)  # a Friday
WEEK = timedelta(days=7)

WINDOWS = """\
version: 1
teams:
  cs: {members: [a@x.io], lead: l@x.io, timezone: Europe/Paris, country: FR}
root_causes: [other]
act_on_responses_within: 3d
rules:
  - name: detractor
    when: {segment: detractor}
    case: {team: cs, contact_within: 2 business days}
  - name: detractor-enterprise
    when: {segment: detractor, attributes: {plan: enterprise}}
    case: {team: cs, contact_within: 4 business hours}
    act_on_responses_within: 30 days
  - name: detractor-web
    when: {segment: detractor, source: web}
    case: {team: cs, contact_within: 1 business day}
  - name: detractor-app
    when: {segment: detractor, source: app}
    case: {team: cs, contact_within: 1 business day}
  - name: promoter
    when: {segment: promoter}
    actions: [{kind: sms, template: promoter_thank_you, after: 1 hour}]
  - name: passive
    when: {segment: passive}
    actions: [{kind: sms, template: passive_reply}]
"""


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("7d", 7, DurationUnit.DAYS),
        ("36h", 36, DurationUnit.HOURS),
        ("90m", 90, DurationUnit.MINUTES),
        ("30s", 30, DurationUnit.SECONDS),
        ("7 days", 7, DurationUnit.DAYS),
        ("2 business days", 2, DurationUnit.BUSINESS_DAYS),
    ],
)
def test_durations_may_be_written_short(text: str, amount: int, unit: DurationUnit) -> None:
    assert Duration.parse(text) == Duration(amount=amount, unit=unit)


def test_the_default_acts_on_responses_of_the_last_seven_days() -> None:
    policy = parse_policy(default_policy_text())
    assert policy.response_window(policy.rules[0]).calendar() == timedelta(days=7)
    assert policy.response_window(None).calendar() == timedelta(days=7)


def test_a_rule_s_own_window_wins_over_the_policy_s() -> None:
    policy = parse_policy(WINDOWS)
    by_name = {rule.name: rule for rule in policy.rules}
    assert policy.response_window(by_name["detractor"]).calendar() == timedelta(days=3)
    assert policy.response_window(by_name["detractor-enterprise"]).calendar() == timedelta(days=30)
    assert str(policy.response_window(None)) == "3 days"


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("act_on_responses_within: 3d", "act_on_responses_within: 3 business days", 5),
        ("act_on_responses_within: 30 days", "act_on_responses_within: a month", 13),
    ],
)
def test_a_window_that_is_not_a_calendar_duration_is_refused_with_its_line(
    old: str, new: str, line: int
) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(WINDOWS.replace(old, new), name="p.yaml")
    assert refused.value.problems[0].line == line
    assert "act_on_responses_within" in refused.value.problems[0].where


@pytest.mark.parametrize(
    ("backfill", "answered_ago", "reason"),
    [
        (False, timedelta(0), None),
        (False, timedelta(days=7), None),  # exactly the window: still acted on
        (False, timedelta(days=7, seconds=1), NotActedOn.OLDER_THAN_WINDOW),
        (False, timedelta(days=365), NotActedOn.OLDER_THAN_WINDOW),
        (False, -timedelta(hours=1), None),  # a sender's clock ahead of ours
        (True, timedelta(0), NotActedOn.BACKFILL),  # history, however recent
        (True, timedelta(days=365), NotActedOn.BACKFILL),
    ],
)
def test_history_and_old_answers_are_not_acted_on(
    backfill: bool, answered_ago: timedelta, reason: NotActedOn | None
) -> None:
    found = not_acted_on(backfill=backfill, responded_at=NOW - answered_ago, now=NOW, window=WEEK)
    assert found == reason


@pytest.mark.parametrize(
    ("source", "attributes", "rule", "considered"),
    [
        (
            "email",
            {},
            "detractor",
            [
                ("detractor-enterprise", 1, "attribute plan is missing, not one of ['enterprise']"),
                ("detractor-web", 2, "source is 'email', not one of ['web']"),
                ("detractor-app", 3, "source is 'email', not one of ['app']"),
            ],
        ),
        (
            "web",
            {"plan": "enterprise"},
            "detractor-enterprise",
            [
                ("detractor", 0, "matches too, but is less specific"),
                ("detractor-web", 2, "matches too, as specifically, but is listed after"),
                ("detractor-app", 3, "source is 'web', not one of ['app']"),
            ],
        ),
        (
            "app",
            {"plan": "pro"},
            "detractor-app",
            [
                ("detractor", 0, "matches too, but is less specific"),
                ("detractor-enterprise", 1, "attribute plan is 'pro', not one of ['enterprise']"),
                ("detractor-web", 2, "source is 'app', not one of ['web']"),
            ],
        ),
    ],
)
def test_the_choice_of_a_rule_names_the_others_and_why_they_lost(
    source: str,
    attributes: dict[str, str],
    rule: str,
    considered: list[tuple[str, int, str]],
) -> None:
    policy = parse_policy(WINDOWS)
    choice = policy.choose(
        segment=Segment.DETRACTOR, source=source, survey="q4", attributes=attributes
    )
    assert choice.rule is not None
    assert (choice.rule.name, choice.index) == (rule, [r.name for r in policy.rules].index(rule))
    assert [(c.rule, c.index, c.outcome) for c in choice.considered] == considered


def test_an_opened_case_records_its_rule_the_others_and_its_deadline_s_calendar() -> None:
    policy = parse_policy(WINDOWS)
    plan = plan_case(
        response_id=uuid.uuid4(),
        segment=Segment.DETRACTOR,
        source="web",
        survey_id="q4",
        customer=Customer(id="c-1", attributes={"plan": "pro"}),
        now=NOW,
        policy=policy,
        holidays_for=holidays_for(policy),
    )
    assert plan is not None
    why = plan.why(policy)
    assert (plan.rule, why["rule_index"]) == ("detractor-web", 2)
    assert [c["rule"] for c in why["considered"]] == [  # type: ignore[attr-defined]
        "detractor",
        "detractor-enterprise",
        "detractor-app",
    ]
    assert why["deadline"] == {
        "contact_within": "1 business days",
        "team": "cs",
        "timezone": "Europe/Paris",
        "business_days": ["mon", "tue", "wed", "thu", "fri"],
        "business_hours": "09:00-17:00",
        "holidays": "FR",
    }


@pytest.mark.parametrize(
    ("segment", "now", "held_by"),
    [
        # A scheduled SMS (an hour later) lands in the customer's delivery hours (09–18).
        (Segment.PROMOTER, "2026-12-04 10:00", None),  # 12:00 in Paris: as planned
        (Segment.PROMOTER, "2026-12-04 18:30", "delivery_hours"),  # 20:30: after their day
        (Segment.PROMOTER, "2026-12-04 03:00", "delivery_hours"),  # 05:00: before it
        # An immediate SMS only waits for the end of their quiet hours (21–08).
        (Segment.PASSIVE, "2026-12-04 10:00", None),
        (Segment.PASSIVE, "2026-12-04 21:30", "quiet_hours"),  # 22:30 in Paris
    ],
)
def test_a_message_moved_by_a_contact_rule_names_it(
    segment: Segment, now: str, held_by: str | None
) -> None:
    policy = parse_policy(WINDOWS)
    plan = plan_case(
        response_id=uuid.uuid4(),
        segment=segment,
        source="web",
        survey_id="q4",
        customer=Customer(id="c-1", timezone="Europe/Paris", phone="+33612345678"),
        now=datetime.fromisoformat(now).replace(tzinfo=UTC),
        policy=policy,
        holidays_for=holidays_for(policy),
    )
    assert plan is not None
    [action] = plan.actions
    assert action.held_by == held_by
    assert plan.why(policy)["held_back"] == (
        []
        if held_by is None
        else [{"action_id": str(action.action_id), "channel": "sms", "contact_rule": held_by}]
    )
    assert plan.why(policy)["deadline"] is None  # no case for a person: no deadline


@pytest.mark.parametrize(
    ("kind", "customer", "opted_out", "last", "rule"),
    [
        (ActionKind.EMAIL, Customer(id="c", email="c@x.io"), {"email"}, None, "do_not_contact"),
        (ActionKind.EMAIL, Customer(id="c"), set(), None, "no_address"),
        (ActionKind.SMS, Customer(id="c", phone="+33612345678"), set(), None, "sms_consent"),
        (
            ActionKind.EMAIL,
            Customer(id="c", email="c@x.io"),
            set(),
            NOW - timedelta(days=2),
            "frequency_cap",
        ),
        (ActionKind.EMAIL, Customer(id="c", email="c@x.io"), set(), None, None),
    ],
)
def test_a_held_back_message_names_the_contact_rule(
    kind: ActionKind,
    customer: Customer,
    opted_out: set[str],
    last: datetime | None,
    rule: str | None,
) -> None:
    held = held_back(
        kind=kind,
        customer=customer,
        opted_out=opted_out,
        last_message_at=last,
        exempt=False,
        cap=WEEK,
        now=NOW,
    )
    assert (held[0] if held else None) == rule
