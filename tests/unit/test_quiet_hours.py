"""Quiet hours have one rule (`nps_events.hours`): followup plans an SMS out of them and notify
holds it back at send time, and both judge the same customer in the same zone: theirs when the
tz database knows it, else the policy's default (which followup resolves and the command
carries), never UTC behind followup's back."""

from datetime import UTC, datetime, time

import pytest

from nps_events import Customer
from nps_events.hours import window_end, zone_or
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.domain.contact_rules import customer_zone, delivery_time, quiet_hours_for
from nps_followup.domain.policy import ActionKind, Policy
from nps_notify.domain.dispatch import quiet_until


def policy_defaulting_to(zone: str) -> Policy:
    policy = parse_policy(default_policy_text())
    contact = policy.contact.model_copy(update={"default_customer_timezone": zone})
    return policy.model_copy(update={"contact": contact})


#: 22:00 in Tokyo, 13:00 UTC: quiet for a customer judged in Tokyo, not for one in UTC.
EVENING_IN_TOKYO = datetime(2026, 3, 3, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("theirs", "judged_in"),
    [
        ("Mars/Olympus", "Asia/Tokyo"),  # a zone the tz database does not know
        (None, "Asia/Tokyo"),  # no zone given
        ("Europe/Paris", "Europe/Paris"),  # their own
    ],
)
def test_followup_and_notify_judge_a_customer_in_the_same_zone(
    theirs: str | None, judged_in: str
) -> None:
    policy = policy_defaulting_to("Asia/Tokyo")
    customer = Customer(id="c-1", phone="+33612345678", timezone=theirs)
    quiet = quiet_hours_for(customer, policy)
    assert customer_zone(customer, policy).key == quiet.timezone == judged_in
    planned = delivery_time(
        ActionKind.SMS,
        planned=EVENING_IN_TOKYO,
        delayed=False,
        zone=customer_zone(customer, policy),
        policy=policy,
    )
    held = quiet_until(EVENING_IN_TOKYO, timezone=quiet.timezone, start=quiet.start, end=quiet.end)
    # Where followup moved the SMS is where notify lets it go: the end of the same window.
    assert planned == (held or EVENING_IN_TOKYO)
    assert quiet_until(planned, timezone=quiet.timezone, start=quiet.start, end=quiet.end) is None


def test_an_unknown_customer_zone_falls_back_to_the_one_given() -> None:
    assert zone_or("Mars/Olympus", "Asia/Tokyo").key == "Asia/Tokyo"
    assert zone_or("", "UTC").key == "UTC"


@pytest.mark.parametrize(
    ("utc", "end"),
    [
        ("2026-11-25T19:59:00+00:00", None),  # 20:59 in Paris: not yet
        ("2026-11-25T20:00:00+00:00", "2026-11-26T07:00:00+00:00"),  # 21:00, until 08:00
        ("2026-11-26T03:30:00+00:00", "2026-11-26T07:00:00+00:00"),  # after midnight
        ("2026-11-26T07:00:00+00:00", None),  # 08:00: the window has ended
    ],
)
def test_a_window_across_midnight_ends_on_the_right_day(utc: str, end: str | None) -> None:
    found = window_end(
        datetime.fromisoformat(utc), zone_or("Europe/Paris", "UTC"), time(21), time(8)
    )
    assert found == (datetime.fromisoformat(end) if end else None)
