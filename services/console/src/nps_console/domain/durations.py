"""How long a closed-loop step took, as the dashboard reads it (followup gives seconds)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A catalog key and the number it shows."""

    key: str
    n: float


def span(seconds: float) -> Span:
    """Minutes under an hour, hours under two days, days beyond, one decimal above ten
    dropped: 2,700 s is "45 min", 9,000 s "2.5 h", 302,400 s "3.5 d". Wall-clock time, as
    followup measures it (from the case's opening to the step)."""
    if seconds < 3600:
        return Span("duration.minutes", round(seconds / 60))
    if seconds < 48 * 3600:
        return Span("duration.hours", _short(seconds / 3600))
    return Span("duration.days", _short(seconds / 86400))


def _short(value: float) -> float:
    return round(value) if value >= 10 else round(value, 1)
