"""The follow-up policy as data: the shipped default, rule selection, and refusals that name
the line of what is wrong."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nps_events import Segment
from nps_followup.adapters.policy_file import PolicyError, default_policy_text, parse_policy
from nps_followup.domain.policy import ActionKind, Duration, DurationUnit, OwnerRule

DEFAULT = default_policy_text()

NARROWED = """\
version: 1
teams:
  cs: {members: [a@x.io], lead: l@x.io}
  enterprise: {members: [e@x.io], lead: el@x.io, timezone: America/New_York, country: US}
root_causes: [other]
rules:
  - name: detractor
    when: {segment: detractor}
    case: {team: cs, contact_within: 2 business days}
  - name: detractor-enterprise
    when: {segment: detractor, attributes: {plan: enterprise}}
    case: {team: enterprise, contact_within: 4 business hours}
  - name: detractor-enterprise-emea-web
    when: {segment: detractor, source: web, attributes: {plan: enterprise, region: [emea, apac]}}
    case: {team: enterprise, contact_within: 2 business hours}
  - name: detractor-beta-survey
    when: {segment: detractor, survey: [beta-1, beta-2]}
    case: {team: cs, contact_within: 1 day}
  - name: promoter
    when: {segment: promoter}
    actions: [{kind: email, template: promoter_thank_you, after: 1 day}]
"""


def test_the_shipped_default_follows_common_practice() -> None:
    policy = parse_policy(DEFAULT)
    detractor = policy.rule_for(
        segment=Segment.DETRACTOR, source="any", survey="any", attributes={}
    )
    assert detractor is not None
    assert detractor.case is not None
    assert detractor.case.owner is OwnerRule.ACCOUNT_OWNER
    assert detractor.case.contact_within == Duration(amount=2, unit=DurationUnit.BUSINESS_DAYS)
    assert [(a.kind, a.template, a.after.amount) for a in detractor.actions] == [
        (ActionKind.EMAIL, "detractor_acknowledgement", 0),
        (ActionKind.TICKET, None, 0),
    ]
    passive = policy.rule_for(segment=Segment.PASSIVE, source="s", survey="s", attributes={})
    promoter = policy.rule_for(segment=Segment.PROMOTER, source="s", survey="s", attributes={})
    assert passive is not None
    assert promoter is not None
    assert passive.case is None
    assert promoter.case is None
    assert [(a.template, str(a.after)) for a in passive.actions] == [
        ("passive_education", "1 days")
    ]
    assert [(a.template, str(a.after)) for a in promoter.actions] == [
        ("promoter_thank_you", "1 days")
    ]


@pytest.mark.parametrize(
    ("segment", "source", "survey", "attributes", "rule"),
    [
        (Segment.DETRACTOR, "web", "q4", {}, "detractor"),
        (Segment.DETRACTOR, "web", "q4", {"plan": "starter"}, "detractor"),
        (Segment.DETRACTOR, "app", "q4", {"plan": "enterprise"}, "detractor-enterprise"),
        # In any letters: a CRM's "Enterprise" is the policy's "enterprise".
        (Segment.DETRACTOR, "app", "q4", {"plan": "Enterprise"}, "detractor-enterprise"),
        (Segment.DETRACTOR, "app", "q4", {"plan": "ENTERPRISE "}, "detractor"),
        (
            Segment.DETRACTOR,
            "web",
            "q4",
            {"plan": "enterprise", "region": "apac"},
            "detractor-enterprise-emea-web",
        ),
        (
            Segment.DETRACTOR,
            "app",
            "q4",
            {"plan": "enterprise", "region": "apac"},
            "detractor-enterprise",
        ),
        (Segment.DETRACTOR, "web", "beta-2", {}, "detractor-beta-survey"),
        (Segment.PROMOTER, "web", "beta-2", {"plan": "enterprise"}, "promoter"),
        (Segment.PASSIVE, "web", "q4", {}, None),
    ],
)
def test_the_most_specific_matching_rule_applies(
    segment: Segment, source: str, survey: str, attributes: dict[str, str], rule: str | None
) -> None:
    found = parse_policy(NARROWED).rule_for(
        segment=segment, source=source, survey=survey, attributes=attributes
    )
    assert (found.name if found else None) == rule


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("contact_within: 2 business days", "contact_within: two days", 45, "is not a duration"),
        ("team: customer-success", "team: support", 43, "team 'support' is not under teams"),
        ('end: "17:00"}', 'end: "5pm"}', 16, "business_hours.end"),
        ("timezone: Europe/London", "timezone: Europe/Londn", 13, "unknown time zone"),
        ("country: GB ", "country: XX ", 14, "no public holidays known"),
        ("[mon, tue, wed, thu, fri]", "[mon, tue, funday]", 15, "unknown weekday"),
        ("template: passive_education", "template: Passive Education!", 59, "should match"),
        ("kind: ticket", "kind: fax", 52, "kind: Input should be 'email', 'sms' or 'ticket'"),
        (
            "after: 1 day\n\n  - name: promoter",
            "after: 1 business day\n\n  - name: promoter",
            58,
            "calendar time",
        ),
        ("frequency_cap: 7 days", "frequency_cap: 7 business days", 22, "calendar time"),
        ("  - name: promoter", "  - name: passive", 62, "rule name 'passive' is repeated"),
        ("version: 1", "version: 2", 9, "version"),
        (
            "contact_within: 2 business days\n",
            "contact_within: 2 business days\n      colour: red\n",
            46,
            "colour: Extra inputs are not permitted",
        ),
        (
            "members: [alex@example.com, sam@example.com]",
            "members: [alex@example.com",
            21,
            "not valid YAML",
        ),
        (
            "lead: cs-lead@example.com",
            "lead: cs-lead@example.com, outsider@example.org",
            17,
            "must be one email address",
        ),
        (
            "members: [alex@example.com, sam@example.com]",
            "members: [alex@example.com, sam]",
            19,
            "must be one email address",
        ),
    ],
)
def test_an_invalid_policy_is_refused_with_the_line_of_the_problem(
    old: str, new: str, line: int, message: str
) -> None:
    assert old in DEFAULT
    with pytest.raises(PolicyError) as refused:
        parse_policy(DEFAULT.replace(old, new, 1), name="policy.yaml")
    text = str(refused.value)
    assert any(
        entry.startswith(f"policy.yaml:{line}:") and message in entry
        for entry in refused.value.lines()
    ), text


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("30 minutes", 30, DurationUnit.MINUTES),
        ("1 hour", 1, DurationUnit.HOURS),
        ("1 day", 1, DurationUnit.DAYS),
        ("4 business hours", 4, DurationUnit.BUSINESS_HOURS),
        ("2  business   days", 2, DurationUnit.BUSINESS_DAYS),
        ("1 business day", 1, DurationUnit.BUSINESS_DAYS),
    ],
)
def test_durations_read_as_people_write_them(text: str, amount: int, unit: DurationUnit) -> None:
    assert Duration.parse(text) == Duration(amount=amount, unit=unit)


def _check(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nps_followup", "policy", "check", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_policy_check_runs_offline_and_names_the_line(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(DEFAULT)
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT.replace("contact_within: 2 business days", "contact_within: soon"))
    ok = _check(good)
    assert ok.returncode == 0, ok.stderr
    assert "good.yaml: ok (3 rules" in ok.stdout
    refused = _check(good, bad)
    assert refused.returncode == 1
    assert f"{bad}:45: rules.0.case.contact_within: 'soon' is not a duration" in refused.stderr


def test_followup_refuses_to_start_with_an_invalid_policy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT.replace("country: GB ", "country: XX "))
    started = subprocess.run(
        [sys.executable, "-m", "nps_followup", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "FOLLOWUP_POLICY_FILE": str(bad)},
    )
    assert started.returncode == 2
    assert f"{bad}:14: teams.customer-success.country: no public holidays known" in started.stderr
