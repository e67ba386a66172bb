"""The console's pure parts: how a deadline reads in the queue, which pages sign-in may
return to, when cookies are Secure, and that every string a template asks for is in the
catalog."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nps_console import catalog
from nps_console.config import ConsoleSettings
from nps_console.domain.chart import nps_chart
from nps_console.domain.deadline import due_label
from nps_console.domain.local_time import LocalTime, local_time
from nps_console.domain.periods import this_and_previous
from nps_console.entrypoints import case_pages, console, dashboard_pages, web
from nps_console.handlers import safe_return_to
from nps_events import Segment
from nps_followup.domain.escalation import LADDER, RungState, ladder_step
from nps_followup.domain.impact import Done
from nps_followup.domain.policy import ActionKind, OwnerRule

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TEMPLATES = Path(catalog.__file__).with_name("templates")


@pytest.mark.parametrize(
    ("status", "due_in", "business_hours", "expected", "why"),
    [
        ("open", timedelta(hours=-1), 0.0, "Overdue", "past its deadline"),
        ("open", timedelta(0), 0.0, "Overdue", "the deadline is now"),
        ("open", timedelta(days=2), 5.0, "Due in 5 business hours", "business time, not wall"),
        ("open", timedelta(days=2), 4.2, "Due in 5 business hours", "hours round up"),
        ("open", timedelta(hours=1), 1.0, "Due in 1 business hour", "one"),
        ("open", timedelta(minutes=20), 0.3, "Due within the hour", "less than one"),
        ("open", timedelta(hours=3), None, "Due in 3 business hours", "no team: wall time"),
        ("open", None, None, "No deadline", "no deadline"),
        ("contacted", timedelta(hours=-5), 0.0, "Contacted", "reached: the clock stopped"),
        ("resolved", timedelta(hours=5), 5.0, "Contacted", "finished"),
    ],
)
def test_the_queue_says_how_long_is_left_in_business_hours(
    status: str, due_in: timedelta | None, business_hours: float | None, expected: str, why: str
) -> None:
    label = due_label(
        status=status,
        due_at=None if due_in is None else NOW + due_in,
        business_hours_left=business_hours,
        now=NOW,
    )
    assert catalog.t(label.key, **label.values) == expected, why
    assert label.overdue == (expected == "Overdue"), why


@pytest.mark.parametrize(
    ("asked", "returned"),
    [
        ("/cases/42?done=contact", "/cases/42?done=contact"),
        (None, "/cases"),
        ("", "/cases"),
        ("https://evil.example/", "/cases"),
        ("//evil.example/", "/cases"),
        ("/\\evil.example", "/cases"),
        ("cases", "/cases"),
    ],
)
def test_sign_in_returns_only_to_a_page_of_the_console(asked: str | None, returned: str) -> None:
    assert safe_return_to(asked) == returned


@pytest.mark.parametrize(
    ("public_url", "secure"),
    [
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
        ("https://console.example.com", True),
        ("http://console.example.com", True),  # a browser will drop it: misconfigured, not weak
    ],
)
def test_cookies_are_secure_unless_served_over_http_on_this_machine(
    public_url: str, secure: bool
) -> None:
    assert ConsoleSettings(public_url=public_url).secure_cookies is secure


def test_every_string_a_template_asks_for_is_in_the_catalog() -> None:
    asked = {
        key
        for page in TEMPLATES.glob("*.html")
        for key in re.findall(r"""\bt\(\s*["']([a-z_.0-9]+)["']""", page.read_text())
    }
    assert asked, "no t(…) call found: the pattern is wrong"
    whole = {k for k in asked if not k.endswith(".")}
    assert sorted(whole - set(catalog.EN)) == []
    # Keys built from a value ("status." ~ case.status): one for every value there is.
    # Values from followup's own enums: a new step, role, state or kind needs its words here.
    values: dict[str, list[str]] = {
        "status.": list(web.STATUSES),
        "outcome.": list(web.OUTCOMES),
        "ladder.step.": [k.value for k in LADDER],
        "ladder.role.": ["owner", "lead", "second_level"],
        "ladder.state.": [s.value for s in RungState],
        "segment.": [s.value for s in Segment],
        "dashboard.figure.": ["nps", "responses", "promoters", "passives", "detractors"],
        "policy.owner.": [o.value for o in OwnerRule],
        "policy.message.": [k.value for k in ActionKind],
        "impact.done.": [d.value for d in Done],
    }
    assert {k for k in asked if k.endswith(".")} == set(values)
    built = [f"{prefix}{value}" for prefix, found in values.items() for value in found]
    built += [f"done.{step}" for step in web.STEPS]
    roles = {ladder_step(kind, owner=None, team=None).role for kind in LADDER}
    assert roles == set(values["ladder.role."])
    assert sorted(set(built) - set(catalog.EN)) == []


def test_the_nps_chart_puts_higher_nps_higher_and_skips_empty_periods() -> None:
    chart = nps_chart(
        [("2026-09-01", -20.0, 10.0), ("2026-10-01", None, None), ("2026-11-01", 40.0, 5.0)]
    )
    assert [p.label for p in chart.points] == ["2026-09-01", "2026-11-01"]
    low, high = chart.points
    assert high.y < chart.zero < low.y  # SVG's y grows downwards
    assert low.band_top < low.y < low.band_bottom
    assert high.band_bottom - high.band_top < low.band_bottom - low.band_top
    assert low.x < high.x
    assert nps_chart([]).points == []


def test_the_nps_chart_keeps_a_band_beyond_the_scale_on_the_chart() -> None:
    [point] = nps_chart([("2026-11-01", 95.0, 30.0)]).points
    assert point.band_top == nps_chart([("x", 100.0, 0.0)]).points[0].y


@pytest.mark.parametrize(
    ("value", "reads"),
    [
        (
            [
                {
                    "rule": "detractor-web",
                    "index": 2,
                    "outcome": "source is 'app', not one of ['web']",
                }
            ],
            "rule: detractor-web, index: 2, outcome: source is 'app', not one of ['web']",
        ),
        (
            {"timezone": "Europe/London", "business_days": ["mon", "tue"], "holidays": None},
            "timezone: Europe/London, business_days: mon; tue, holidays: —",
        ),
        ([], "—"),
        (None, "—"),
        ("detractor", "detractor"),
    ],
)
def test_why_a_case_opened_reads_as_words_on_its_timeline(value: object, reads: str) -> None:
    assert console.detail(value) == reads


def test_the_queue_form_asks_followup_for_the_filters_given_and_the_active_cases() -> None:
    filters = case_pages.queue_filters(
        {"customer": " Ada ", "segment": "detractor", "score_max": "3", "owner": "", "x": "y"}
    )
    assert case_pages.queue_params(filters, cursor="", page_size=25) == {
        "sort": "urgency",
        "status": ["open", "contacted"],
        "limit": 25,
        "customer": "Ada",
        "segment": "detractor",
        "score_max": "3",
    }
    chosen = case_pages.queue_filters({"status": "resolved"})
    params = case_pages.queue_params(chosen, cursor="abc", page_size=25)
    assert params["status"] == ["resolved"]
    assert params["cursor"] == "abc"


@pytest.mark.parametrize(
    ("days", "this", "previous"),
    [
        (7, ("2026-11-18", "2026-11-24"), ("2026-11-11", "2026-11-17")),
        (30, ("2026-10-26", "2026-11-24"), ("2026-09-26", "2026-10-25")),
        (1, ("2026-11-24", "2026-11-24"), ("2026-11-23", "2026-11-23")),
    ],
)
def test_the_dashboard_compares_the_last_days_with_as_many_days_before(
    days: int, this: tuple[str, str], previous: tuple[str, str]
) -> None:
    now, before = this_and_previous(NOW.date(), days)
    assert (now.first.isoformat(), now.last.isoformat()) == this
    assert (before.first.isoformat(), before.last.isoformat()) == previous
    assert now.days == before.days == days


@pytest.mark.parametrize(
    ("zone", "clock", "offset", "night"),
    [
        ("Asia/Tokyo", "Tue 21:00", "UTC+09:00", True),
        ("Europe/London", "Tue 12:00", "UTC+00:00", False),
        ("America/New_York", "Tue 07:00", "UTC-05:00", True),
        ("Asia/Kolkata", "Tue 17:30", "UTC+05:30", False),
    ],
)
def test_the_case_page_says_the_customers_time_now(
    zone: str, clock: str, offset: str, night: bool
) -> None:
    assert local_time(zone, NOW) == LocalTime(zone, clock, offset, night)


@pytest.mark.parametrize("zone", [None, "", "Mars/Olympus_Mons", "../etc/passwd"])
def test_no_or_an_unknown_time_zone_gives_no_local_time(zone: str | None) -> None:
    assert local_time(zone, NOW) is None


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"days": "14"}, "The period is one of 7, 30, 90, 365 days."),
        ({"days": "-7"}, "The period is one of 7, 30, 90, 365 days."),
        ({"segment": "grumpy"}, "The segment is one of promoter, passive, detractor."),
    ],
)
def test_a_dashboard_choice_outside_its_lists_is_refused_with_why(
    query: dict[str, str], problem: str
) -> None:
    assert dashboard_pages.dashboard_choice(query) == problem


def test_the_dashboard_defaults_to_thirty_days_unfiltered() -> None:
    assert dashboard_pages.dashboard_choice({}) == dashboard_pages.DashboardChoice(days=30)


def test_every_timeline_kind_followup_writes_reads_as_words() -> None:
    """Each kind followup puts on a timeline has its words in the catalog; a kind this console
    does not know yet is shown as followup names it, not as an error."""
    written = {
        "opened",
        "assigned",
        "action_skipped",
        "reminded",
        "escalated_1",
        "escalated_2",
        "contact",
        "resolved",
        "closed",
        "reopened",
        "response_attached",
        "ticket_status",
        "resurvey_requested",
        "resurvey_skipped",
        "referral_recorded",
    }
    for kind in written:
        assert catalog.kind_label(kind) != kind, kind
    assert catalog.kind_label("a_kind_from_a_later_followup") == "a_kind_from_a_later_followup"
