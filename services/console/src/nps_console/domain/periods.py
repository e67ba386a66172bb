"""The dashboard's two periods: this one (the last N days, today included) and the one just
before it, of the same length, so that a change is read like for like. Pure: `today` is
passed in."""

from dataclasses import dataclass
from datetime import date, timedelta

#: The lengths the dashboard offers, in days.
LENGTHS = (7, 30, 90, 365)


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def this_and_previous(today: date, days: int) -> tuple[Period, Period]:
    """(this period, the previous one): `days` days ending today, and the `days` before."""
    if days < 1:
        raise ValueError("a period lasts at least a day")
    this = Period(today - timedelta(days=days - 1), today)
    previous = Period(this.first - timedelta(days=days), this.first - timedelta(days=1))
    return this, previous


def change(before: float | None, after: float | None) -> float | None:
    """after − before, or None when either is unknown."""
    if before is None or after is None:
        return None
    return after - before
