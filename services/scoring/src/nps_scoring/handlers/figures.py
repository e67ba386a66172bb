"""Reading the NPS figures: totals, series, groups, two periods compared, themes. Each runs
inside the caller's unit of work."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from nps_scoring.adapters.repository import AnsweredResponse
from nps_scoring.domain.figures import (
    Comparison,
    Counts,
    Dimension,
    Grain,
    compare,
    period_start,
)
from nps_scoring.domain.themes import NO_COMMENT, ThemeClassifier, ThemeSpan
from nps_scoring.handlers.ports import CustomerHistory, FigureReads


@dataclass(frozen=True)
class Slice:
    """Counts of one period (None: the whole range) and one group (None: not grouped)."""

    period_start: date | None
    group: str | None
    counts: Counts


@dataclass(frozen=True)
class NpsFigures:
    total: Counts
    series: list[Slice]
    groups: list[Slice]


def _summed(rows: list[tuple[date | None, str, Counts]]) -> Counts:
    return sum((counts for _, _, counts in rows), Counts())


def _selection(filter_: tuple[str, str] | None) -> tuple[str, str]:
    return filter_ if filter_ is not None else (Dimension.ALL.value, "")


async def nps_figures(
    repo: FigureReads,
    *,
    grain: Grain,
    start: date | None,
    end: date | None,
    filters: Sequence[tuple[str, str]] = (),
    group_by: str | None = None,
    timezone: str = "UTC",
) -> NpsFigures:
    """NPS counts in [start, end]: the total (exactly the days in the range), per group, and
    per period of `grain` (every period that overlaps the range, whole).

    Figures are kept per single dimension; a question on several (two filters, or a filter
    and a group on different dimensions) is counted from the stored responses instead, by
    the same rules, in the figures' `timezone`: same answer, slower."""
    series_start = None if start is None else period_start(start, grain)
    single = len(filters) <= 1 and (group_by is None or not filters or filters[0][0] == group_by)
    if single:
        dimension, selected = _selection(filters[0] if filters else None)
        value: str | None = selected

        async def counted(
            d: str, v: str | None, g: Grain, since: date | None, by_period: bool
        ) -> list[tuple[date | None, str, Counts]]:
            return await repo.figures(
                grain=g.value, dimension=d, value=v, start=since, end=end, by_period=by_period
            )

        total = _summed(await counted(dimension, value, Grain.DAY, start, False))
        if group_by is not None:
            # Grouped: every value of the dimension, or the one the filter names.
            dimension, value = group_by, None if not filters else filters[0][1]
        groups = (
            [] if group_by is None else await counted(dimension, value, Grain.DAY, start, False)
        )
        series = await counted(dimension, value, grain, series_start, True)
    else:

        async def scanned(
            g: Grain, grouped: str | None, since: date | None, by_period: bool
        ) -> list[tuple[date | None, str, Counts]]:
            return await repo.response_figures(
                grain=g.value,
                timezone=timezone,
                filters=filters,
                group_by=grouped,
                start=since,
                end=end,
                by_period=by_period,
            )

        total = _summed(await scanned(Grain.DAY, None, start, False))
        groups = [] if group_by is None else await scanned(Grain.DAY, group_by, start, False)
        series = await scanned(grain, group_by, series_start, True)
    return NpsFigures(
        total=total,
        series=[Slice(p, g if group_by is not None else None, c) for p, g, c in series],
        groups=[Slice(None, g, c) for _, g, c in groups],
    )


@dataclass(frozen=True)
class PeriodComparison:
    a: Counts
    b: Counts
    comparison: Comparison


async def compare_periods(
    repo: FigureReads,
    *,
    a: tuple[date, date],
    b: tuple[date, date],
    filters: Sequence[tuple[str, str]] = (),
    timezone: str = "UTC",
) -> PeriodComparison:
    """NPS in period a and in period b (day ranges, inclusive) and the test of b − a."""
    counts: list[Counts] = []
    for start, end in (a, b):
        figures = await nps_figures(
            repo, grain=Grain.DAY, start=start, end=end, filters=filters, timezone=timezone
        )
        counts.append(figures.total)
    return PeriodComparison(counts[0], counts[1], compare(counts[0], counts[1]))


@dataclass(frozen=True)
class ThemePeriod:
    period_start: date
    mentions: Counts
    commented: Counts


@dataclass(frozen=True)
class ThemeFigures:
    theme: str
    mentions: Counts
    trend: list[ThemePeriod]


@dataclass(frozen=True)
class ThemesOverview:
    commented: Counts
    themes: list[ThemeFigures]


async def theme_figures(
    repo: FigureReads, *, grain: Grain, start: date | None, end: date | None
) -> ThemesOverview:
    """Per theme (and `unmatched`): the responses mentioning it, per segment, in [start, end]
    and per period of `grain`, beside the responses with a comment in the same span (the
    denominator of a theme's share)."""

    async def sums(
        dimension: str, value: str | None, *, g: Grain, by_period: bool, since: date | None
    ) -> list[tuple[date | None, str, Counts]]:
        return await repo.figures(
            grain=g.value,
            dimension=dimension,
            value=value,
            start=since,
            end=end,
            by_period=by_period,
        )

    def commented_of(
        rows_all: list[tuple[date | None, str, Counts]],
        rows_none: list[tuple[date | None, str, Counts]],
    ) -> dict[date | None, Counts]:
        without = {p: c for p, _, c in rows_none}
        return {
            p: Counts(
                c.promoters - without.get(p, Counts()).promoters,
                c.passives - without.get(p, Counts()).passives,
                c.detractors - without.get(p, Counts()).detractors,
            )
            for p, _, c in rows_all
        }

    total_commented = commented_of(
        await sums(Dimension.ALL.value, "", g=Grain.DAY, by_period=False, since=start),
        await sums(Dimension.THEME.value, NO_COMMENT, g=Grain.DAY, by_period=False, since=start),
    ).get(None, Counts())
    since = None if start is None else period_start(start, grain)
    per_period_commented = commented_of(
        await sums(Dimension.ALL.value, "", g=grain, by_period=True, since=since),
        await sums(Dimension.THEME.value, NO_COMMENT, g=grain, by_period=True, since=since),
    )
    totals = {
        theme: counts
        for _, theme, counts in await sums(
            Dimension.THEME.value, None, g=Grain.DAY, by_period=False, since=start
        )
        if theme != NO_COMMENT
    }
    trends: dict[str, list[ThemePeriod]] = defaultdict(list)
    for period, theme, counts in await sums(
        Dimension.THEME.value, None, g=grain, by_period=True, since=since
    ):
        if theme != NO_COMMENT and period is not None:
            trends[theme].append(
                ThemePeriod(period, counts, per_period_commented.get(period, Counts()))
            )
    themes = [
        ThemeFigures(theme, counts, trends.get(theme, []))
        for theme, counts in sorted(totals.items(), key=lambda t: (-t[1].responses, t[0]))
    ]
    return ThemesOverview(commented=total_commented, themes=themes)


async def customer_history(
    repo: CustomerHistory, customer_id: str, *, limit: int
) -> list[AnsweredResponse]:
    """Every score the customer gave (the latest `limit`), newest first."""
    return await repo.responses_of(customer_id, limit=limit)


def theme_spans_of(response: AnsweredResponse, classifier: ThemeClassifier) -> list[ThemeSpan]:
    """Where the themes are in the response's comment, found again as it is read (the console
    highlights them); [] without a comment."""
    if response.comment is None or not response.comment.strip():
        return []
    return classifier.spans_of(response.comment, source=response.source, locale=response.locale)
