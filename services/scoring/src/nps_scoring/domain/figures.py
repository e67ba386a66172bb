"""NPS figures: which buckets a response counts in, NPS, its margin of error, and whether a
change between two periods is significant.

A response counts once in each bucket it belongs to: for each grain (day, week starting on
Monday, month) of the day it was answered on (in the figures' time zone), in `all`, in its
`source`, its `survey`, each of its `theme`s (or `unmatched`, or `no_comment`), and each
`attribute:<key>` the customer carries. An update of a response moves it: minus one in the
buckets of the stored version, plus one in those of the new one.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo

from nps_events import Segment
from nps_scoring.domain.themes import NO_COMMENT, UNMATCHED

#: z for a two-sided 95% confidence interval.
Z_95 = 1.959963984540054

ALL = "all"
ATTRIBUTE_PREFIX = "attribute:"


class Grain(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Dimension(StrEnum):
    ALL = "all"
    SOURCE = "source"
    SURVEY = "survey"
    THEME = "theme"


_ALL, _SOURCE, _SURVEY, _THEME = (d.value for d in Dimension)


def period_start(day: date, grain: Grain) -> date:
    """The first day of the period of `grain` that contains `day` (weeks start on Monday)."""
    if grain is Grain.DAY:
        return day
    if grain is Grain.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


@dataclass(frozen=True, slots=True)
class Counted:
    """What decides the buckets of one version of a response."""

    segment: Segment
    responded_at: datetime
    source: str
    survey_id: str
    themes: tuple[str, ...] | None
    attributes: Mapping[str, str]


class BucketKey(NamedTuple):
    # A tuple, not a dataclass: a year of figures hashes and compares millions of these.
    grain: str
    dimension: str
    value: str
    period_start: date


_GRAINS = (Grain.DAY.value, Grain.WEEK.value, Grain.MONTH.value)


def buckets_of(response: Counted, tz: ZoneInfo) -> list[BucketKey]:
    day = response.responded_at.astimezone(tz).date()
    starts = _period_starts(day)
    groups = _groups(response)
    return [
        BucketKey(grain, dimension, value, start)
        for grain, start in zip(_GRAINS, starts, strict=True)
        for dimension, value in groups
    ]


def _period_starts(day: date) -> tuple[date, date, date]:
    return day, day - timedelta(days=day.weekday()), day.replace(day=1)


def _groups(response: Counted) -> list[tuple[str, str]]:
    """The (dimension, value) pairs a response counts in, at every grain."""
    if response.themes is None:
        themes: Iterable[str] = (NO_COMMENT,)
    else:
        themes = sorted(set(response.themes)) or (UNMATCHED,)
    return [
        (_ALL, ""),
        (_SOURCE, response.source),
        (_SURVEY, response.survey_id),
        *((_THEME, theme) for theme in themes),
        *((f"{ATTRIBUTE_PREFIX}{k}", v) for k, v in sorted(response.attributes.items())),
    ]


#: Per bucket: the change of (promoters, passives, detractors).
Deltas = dict[BucketKey, list[int]]
#: The same at the day grain only, by (day, dimension, value): `rolled_up` gives every grain.
DayDeltas = dict[tuple[date, str, str], list[int]]

_COLUMN = {Segment.PROMOTER: 0, Segment.PASSIVE: 1, Segment.DETRACTOR: 2}


def new_deltas() -> Deltas:
    return defaultdict(lambda: [0, 0, 0])


def new_day_deltas() -> DayDeltas:
    return defaultdict(lambda: [0, 0, 0])


def count(deltas: Deltas, response: Counted, tz: ZoneInfo, *, sign: int = 1) -> None:
    """Add (`sign` 1) or remove (−1) one response in each of its buckets: the definition of
    the figures, one response at a time. Scoring counts a batch with `count_days` and
    `rolled_up`, which must give the same buckets (the unit tests hold them to this)."""
    column = _COLUMN[response.segment]
    for key in buckets_of(response, tz):
        deltas[key][column] += sign


def count_days(days: DayDeltas, response: Counted, tz: ZoneInfo, *, sign: int = 1) -> None:
    """`count` at the day grain only. The week's and the month's buckets are sums of days, so
    `rolled_up(days)` equals `count` of every response: a third of the buckets per response,
    and a week's and month's start computed once per day of the batch, not per response."""
    column = _COLUMN[response.segment]
    day = response.responded_at.astimezone(tz).date()
    for dimension, value in _groups(response):
        days[(day, dimension, value)][column] += sign


def rolled_up(days: DayDeltas) -> Deltas:
    """Every grain's buckets from the day grain's (`count_days`)."""
    deltas = new_deltas()
    starts: dict[date, tuple[date, date, date]] = {}
    for (day, dimension, value), (promoters, passives, detractors) in days.items():
        if (its := starts.get(day)) is None:
            its = starts[day] = _period_starts(day)
        for grain, start in zip(_GRAINS, its, strict=True):
            bucket = deltas[BucketKey(grain, dimension, value, start)]
            bucket[0] += promoters
            bucket[1] += passives
            bucket[2] += detractors
    return deltas


@dataclass(frozen=True, slots=True)
class Counts:
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def responses(self) -> int:
        return self.promoters + self.passives + self.detractors

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(
            self.promoters + other.promoters,
            self.passives + other.passives,
            self.detractors + other.detractors,
        )

    @property
    def nps(self) -> float | None:
        """% promoters − % detractors, −100 to 100; None without responses."""
        n = self.responses
        return None if n == 0 else 100.0 * (self.promoters - self.detractors) / n

    @property
    def variance(self) -> float | None:
        """Variance of NPS as a proportion difference (−1 to 1), with p and d the promoter
        and detractor shares: (p + d − (p − d)²) / n. None below two responses."""
        n = self.responses
        if n < 2:
            return None
        p, d = self.promoters / n, self.detractors / n
        return max(0.0, p + d - (p - d) ** 2) / n

    @property
    def margin_of_error(self) -> float | None:
        """Half-width of the 95% confidence interval of NPS, in NPS points.

        None with fewer than two responses: one response always gives a variance of 0, which
        would claim certainty from a single answer. With every answer in one segment (all
        promoters, say) the estimate is 0 as well: the formula sees no spread, so read a 0 on
        a small sample as "too few responses to tell", not as certainty.
        """
        variance = self.variance
        return None if variance is None else 100.0 * Z_95 * math.sqrt(variance)


@dataclass(frozen=True, slots=True)
class Comparison:
    """NPS of period b minus NPS of period a, and whether that change is significant."""

    difference: float | None
    standard_error: float | None
    z: float | None
    p_value: float | None
    significant: bool | None


def compare(a: Counts, b: Counts) -> Comparison:
    """Two-sample z-test on the NPS difference: z = (NPS_b − NPS_a) / sqrt(var_a + var_b),
    two-sided; significant at 95% when p < 0.05. The test is undefined (None) when either
    period has fewer than two responses, or neither shows any spread (standard error 0)."""
    if a.nps is None or b.nps is None:
        return Comparison(None, None, None, None, None)
    difference = b.nps - a.nps
    if a.variance is None or b.variance is None:
        return Comparison(difference, None, None, None, None)
    standard_error = 100.0 * math.sqrt(a.variance + b.variance)
    if standard_error == 0:
        return Comparison(difference, 0.0, None, None, None)
    z = difference / standard_error
    p_value = math.erfc(abs(z) / math.sqrt(2))
    return Comparison(difference, standard_error, z, p_value, p_value < 0.05)
