"""Time done right: business hours per team (weekends and public holidays off), and the
customer's own clock for what the customer receives. Pure functions of their inputs; `now`
is always passed in."""

from collections.abc import Container
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nps_events.hours import window_end
from nps_followup.domain.policy import Duration, DurationUnit, Hours, Team

#: How far ahead a business-time sum may look before the calendar is declared broken
#: (a team whose every day is a holiday).
_HORIZON_DAYS = 3 * 366


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """When a team works, in its own time zone. `holidays` is any container of dates (the
    adapters pass a `holidays` library calendar)."""

    zone: ZoneInfo
    weekdays: frozenset[int]
    opens: time
    closes: time
    holidays: Container[date]

    @classmethod
    def of(cls, team: Team, holidays: Container[date]) -> "BusinessCalendar":
        return cls(
            zone=ZoneInfo(team.timezone),
            weekdays=team.weekdays,
            opens=team.business_hours.start,
            closes=team.business_hours.end,
            holidays=holidays,
        )

    @property
    def day_length(self) -> timedelta:
        today = date(2000, 1, 1)
        return datetime.combine(today, self.closes) - datetime.combine(today, self.opens)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays

    def add(self, start: datetime, duration: Duration) -> datetime:
        """`start` plus `duration`: calendar units as they are, business units counted only
        inside business hours (2 business days = twice the length of a business day)."""
        match duration.unit:
            case DurationUnit.BUSINESS_HOURS:
                return self.add_business_time(start, timedelta(hours=duration.amount))
            case DurationUnit.BUSINESS_DAYS:
                return self.add_business_time(start, self.day_length * duration.amount)
            case _:
                return (start + duration.calendar()).astimezone(UTC)

    def length(self, duration: Duration) -> timedelta:
        """How much working time `duration` is (calendar units: the time itself)."""
        match duration.unit:
            case DurationUnit.BUSINESS_HOURS:
                return timedelta(hours=duration.amount)
            case DurationUnit.BUSINESS_DAYS:
                return self.day_length * duration.amount
            case _:
                return duration.calendar()

    def add_business_time(self, start: datetime, amount: timedelta) -> datetime:
        """The moment `amount` of business time after `start` has passed."""
        if amount <= timedelta(0):
            return start.astimezone(UTC)
        local = start.astimezone(self.zone)
        remaining = amount
        day = local.date()
        for _ in range(_HORIZON_DAYS):
            if self.is_business_day(day):
                opens = _at(day, self.opens, self.zone)
                closes = _at(day, self.closes, self.zone)
                cursor = max(local, opens)
                if cursor < closes:
                    available = closes.astimezone(UTC) - cursor.astimezone(UTC)
                    if remaining <= available:
                        return cursor.astimezone(UTC) + remaining
                    remaining -= available
            day += timedelta(days=1)
        raise ValueError("no business time within three years: check the team's calendar")

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much business time lies from `start` to `end` (zero if `end` is not later):
        the inverse of `add_business_time`, for "due in 5 business hours"."""
        if end <= start:
            return timedelta(0)
        total = timedelta(0)
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        while day <= last:
            if self.is_business_day(day):
                opens = max(_at(day, self.opens, self.zone), start)
                closes = min(_at(day, self.closes, self.zone), end)
                if opens < closes:
                    total += closes.astimezone(UTC) - opens.astimezone(UTC)
            day += timedelta(days=1)
        return total

    def at_work_until(self, moment: datetime) -> datetime | None:
        """When the working day `moment` falls in ends; None outside business time."""
        local = moment.astimezone(self.zone)
        if not self.is_business_day(local.date()):
            return None
        opens = _at(local.date(), self.opens, self.zone)
        closes = _at(local.date(), self.closes, self.zone)
        return closes.astimezone(UTC) if opens <= local < closes else None


def _at(day: date, moment: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=zone)


def next_inside(moment: datetime, zone: ZoneInfo, hours: Hours) -> datetime:
    """The earliest time at or after `moment` whose local time in `zone` is inside `hours`."""
    local = moment.astimezone(zone)
    if hours.contains(local.time()):
        return moment.astimezone(UTC)
    return _next_boundary(local, hours.start, zone)


def next_outside(moment: datetime, zone: ZoneInfo, hours: Hours) -> datetime:
    """The earliest time at or after `moment` whose local time in `zone` is outside `hours`
    (e.g. the end of the customer's quiet hours)."""
    end = window_end(moment, zone, hours.start, hours.end)
    return moment.astimezone(UTC) if end is None else end


def _next_boundary(local: datetime, boundary: time, zone: ZoneInfo) -> datetime:
    candidate = _at(local.date(), boundary, zone)
    if candidate <= local:
        candidate = _at(local.date() + timedelta(days=1), boundary, zone)
    return candidate.astimezone(UTC)
