"""How the dashboard reads a time to first contact or to resolution (followup gives seconds)."""

import pytest

from nps_console.domain.durations import Span, span


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, Span("duration.minutes", 0)),
        (89, Span("duration.minutes", 1)),
        (2_700, Span("duration.minutes", 45)),
        (3_599, Span("duration.minutes", 60)),  # still under the hour: rounded, not promoted
        (3_600, Span("duration.hours", 1.0)),
        (9_000, Span("duration.hours", 2.5)),
        (40_000, Span("duration.hours", 11)),  # ten and up: whole hours
        (48 * 3_600 - 1, Span("duration.hours", 48)),
        (48 * 3_600, Span("duration.days", 2.0)),
        (302_400, Span("duration.days", 3.5)),
        (30 * 86_400 + 40_000, Span("duration.days", 30)),
    ],
)
def test_a_duration_reads_in_minutes_hours_or_days(seconds: float, shown: Span) -> None:
    assert span(seconds) == shown
