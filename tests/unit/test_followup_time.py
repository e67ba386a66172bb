"""Time done right, with a frozen clock: business time per team (weekends, public holidays,
time zones, DST) and the customer's clock (delivery hours, quiet hours for SMS)."""

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import holidays
import pytest

from nps_followup.domain.calendar import BusinessCalendar, next_inside, next_outside
from nps_followup.domain.policy import Duration, Hours, Team


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _calendar(zone: str, country: str | None) -> BusinessCalendar:
    team = Team(timezone=zone, country=country, lead="l@x.io", members=("m@x.io",))
    return BusinessCalendar.of(team, holidays.country_holidays(country) if country else set())


LONDON = _calendar("Europe/London", "GB")
NEW_YORK = _calendar("America/New_York", "US")
NO_HOLIDAYS = _calendar("Europe/London", None)


@pytest.mark.parametrize(
    ("calendar", "start", "duration", "expected", "why"),
    [
        (LONDON, "2026-11-24 10:00", "2 business days", "2026-11-26 10:00", "Tuesday: Thursday"),
        (LONDON, "2026-11-27 16:00", "2 business days", "2026-12-01 16:00", "over a weekend"),
        (LONDON, "2026-11-28 12:00", "2 business days", "2026-12-01 17:00", "opened on Saturday"),
        (LONDON, "2026-11-24 06:00", "4 business hours", "2026-11-24 13:00", "before opening"),
        (LONDON, "2026-11-24 18:30", "1 business hour", "2026-11-25 10:00", "after closing"),
        (
            LONDON,
            "2026-12-23 10:00",
            "2 business days",
            "2026-12-29 10:00",
            "Christmas, Boxing Day",
        ),
        (NO_HOLIDAYS, "2026-12-23 10:00", "2 business days", "2026-12-25 10:00", "no holidays"),
        (LONDON, "2026-03-27 16:00", "2 business hours", "2026-03-30 09:00", "into summer time"),
        (NEW_YORK, "2026-11-24 22:00", "4 business hours", "2026-11-25 18:00", "New York evening"),
        (NEW_YORK, "2026-11-25 15:00", "2 business days", "2026-11-30 15:00", "Thanksgiving"),
        (LONDON, "2026-11-24 10:00", "1 day", "2026-11-25 10:00", "calendar days ignore hours"),
        (LONDON, "2026-11-28 10:00", "30 minutes", "2026-11-28 10:30", "calendar minutes"),
        (LONDON, "2026-11-28 10:00", "0 business hours", "2026-11-28 10:00", "at once"),
    ],
)
def test_deadlines_count_business_time_of_the_team(
    calendar: BusinessCalendar, start: str, duration: str, expected: str, why: str
) -> None:
    assert calendar.add(_utc(start), Duration.parse(duration)) == _utc(expected), why


@pytest.mark.parametrize(
    ("calendar", "now", "due", "hours", "why"),
    [
        (LONDON, "2026-11-24 10:00", "2026-11-24 15:00", 5, "the same day"),
        (LONDON, "2026-11-27 16:00", "2026-12-01 16:00", 16, "over a weekend"),
        (LONDON, "2026-11-24 20:00", "2026-11-25 11:00", 2, "from the evening before"),
        (LONDON, "2026-12-23 10:00", "2026-12-29 10:00", 16, "Christmas, Boxing Day"),
        (NEW_YORK, "2026-11-24 22:00", "2026-11-25 18:00", 4, "New York evening"),
        (LONDON, "2026-11-24 15:00", "2026-11-24 10:00", 0, "past its deadline"),
    ],
)
def test_business_time_left_is_what_the_deadline_added(
    calendar: BusinessCalendar, now: str, due: str, hours: int, why: str
) -> None:
    left = calendar.business_time_between(_utc(now), _utc(due))
    assert left.total_seconds() == hours * 3600, why
    if hours:
        assert calendar.add_business_time(_utc(now), left) == _utc(due), why


DAYTIME = Hours(start=time(9), end=time(18))
NIGHT = Hours(start=time(21), end=time(8))


@pytest.mark.parametrize(
    ("moment", "zone", "expected", "why"),
    [
        ("2026-11-25 10:00", "Europe/Paris", "2026-11-25 10:00", "11:00 in Paris: now"),
        ("2026-11-25 10:00", "Asia/Tokyo", "2026-11-26 00:00", "19:00 in Tokyo: next morning"),
        ("2026-11-25 03:00", "America/Los_Angeles", "2026-11-25 17:00", "19:00 the evening before"),
        ("2026-11-25 06:00", "Europe/London", "2026-11-25 09:00", "early: later that morning"),
    ],
)
def test_scheduled_messages_arrive_in_the_customers_day(
    moment: str, zone: str, expected: str, why: str
) -> None:
    assert next_inside(_utc(moment), ZoneInfo(zone), DAYTIME) == _utc(expected), why


@pytest.mark.parametrize(
    ("moment", "zone", "expected", "why"),
    [
        ("2026-11-25 12:00", "Europe/Paris", "2026-11-25 12:00", "13:00 in Paris: fine"),
        ("2026-11-25 21:30", "Europe/Paris", "2026-11-26 07:00", "22:30: after the night"),
        ("2026-11-25 05:00", "Europe/Paris", "2026-11-25 07:00", "06:00: at 08:00 local"),
        ("2026-11-25 12:00", "Asia/Tokyo", "2026-11-25 23:00", "21:00 in Tokyo: night"),
        ("2026-11-25 20:59", "UTC", "2026-11-25 20:59", "a minute before quiet hours"),
    ],
)
def test_no_sms_in_the_customers_quiet_hours(
    moment: str, zone: str, expected: str, why: str
) -> None:
    assert next_outside(_utc(moment), ZoneInfo(zone), NIGHT) == _utc(expected), why
