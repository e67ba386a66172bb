"""Closed-loop figures in SQL: counts and exact percentiles of the cases people work, per group,
for one or several groupings in one pass over the period's cases."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Segment
from nps_followup.adapters import tables
from nps_followup.adapters.case_reads import breached
from nps_followup.domain.cases import CaseStatus

#: What the figures can be grouped by: a column of the case, the period its case opened in
#: (UTC), or `all` (one group).
GROUPINGS = ("all", "team", "owner", "segment", "day", "week", "month")


@dataclass(frozen=True, slots=True)
class FigureRow:
    #: The grouping this row belongs to (one of GROUPINGS).
    grouping: str
    group: str | None
    cases: int
    open: int
    breached: int
    on_time: int
    contacted: int
    closed: int
    with_later_answer: int
    recovered: int
    first_contact_p50: float | None
    first_contact_p90: float | None
    resolution_p50: float | None
    resolution_p90: float | None


@dataclass(frozen=True, slots=True)
class FigureFilter:
    """Which cases the figures count: each given condition must hold."""

    team: str | None = None
    source: str | None = None
    segment: str | None = None
    survey_id: str | None = None


def _expression(grouping: str) -> Any:
    c = tables.cases
    if grouping in ("team", "owner", "segment"):
        return c.c[grouping]
    if grouping in ("day", "week", "month"):
        return func.to_char(
            func.date_trunc(grouping, func.timezone("UTC", c.c.opened_at)), "YYYY-MM-DD"
        )
    raise ValueError(f"unknown grouping {grouping!r}")


async def closed_loop_figures(
    session: AsyncSession,
    *,
    groupings: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    only: FigureFilter | None = None,
) -> list[FigureRow]:
    """Closed-loop figures of the cases people work (not automated ones) opened in
    [start, end), of `only` those cases when given, per group of each grouping asked, in the
    order asked. One SQL statement reads the period's cases once, whatever the number of
    groupings (`GROUP BY GROUPING SETS`); the percentiles are PostgreSQL's exact
    `percentile_cont` (linear interpolation between the closest ranks) over each group's cases.
    A team's range reads ix_cases_team_opened_at, any other range ix_cases_opened_at."""
    asked = list(dict.fromkeys(groupings))  # each once, in the order asked
    if not asked or any(g not in GROUPINGS for g in asked):
        raise ValueError(f"groupings must be some of {GROUPINGS}, got {groupings!r}")
    c = tables.cases
    keyed = [g for g in asked if g != "all"]
    expressions = [_expression(g) for g in keyed]
    on_time = and_(c.c.first_contact_at.is_not(None), c.c.first_contact_at <= c.c.due_at)
    # date_part gives double precision, which percentile_cont takes as it is; extract gives
    # numeric (PostgreSQL 14 and later), converted on every row: the pass took 2.4 times as long
    # (docs/performance.md).
    to_contact = func.date_part("epoch", c.c.first_contact_at - c.c.opened_at)
    to_resolve = func.date_part("epoch", c.c.resolved_at - c.c.opened_at)

    def count_if(condition: Any) -> Any:
        return func.count().filter(condition)

    def percentile(fraction: float, value: Any) -> Any:
        return func.percentile_cont(fraction).within_group(value)

    # GROUPING(e1, …, en) sets bit n-1-i when e_i is not a key of the row's grouping set: with
    # one expression per set, the set is the expression whose bit is clear, and `all` (the
    # empty set) has every bit set.
    which = func.grouping(*expressions) if len(asked) > 1 and expressions else literal_column("0")
    query = select(
        which.label("which"),
        *(e.label(f"g{i}") for i, e in enumerate(expressions)),
        func.count().label("cases"),
        count_if(c.c.status.in_(tables.ACTIVE)).label("open"),
        count_if(breached(now)).label("breached"),
        count_if(on_time).label("on_time"),
        count_if(c.c.first_contact_at.is_not(None)).label("contacted"),
        count_if(c.c.status == CaseStatus.CLOSED.value).label("closed"),
        count_if(and_(c.c.latest_score.is_not(None), c.c.segment == Segment.DETRACTOR.value)).label(
            "with_later_answer"
        ),
        count_if(c.c.recovered).label("recovered"),
        percentile(0.5, to_contact).label("fc50"),
        percentile(0.9, to_contact).label("fc90"),
        percentile(0.5, to_resolve).label("rs50"),
        percentile(0.9, to_resolve).label("rs90"),
    ).where(c.c.status != CaseStatus.AUTOMATED.value)
    if len(asked) > 1:
        sets = [tuple_(e) for e in expressions] + ([tuple_()] if "all" in asked else [])
        query = query.group_by(func.grouping_sets(*sets))
    elif expressions:
        query = query.group_by(expressions[0])
    # else `all` alone: no GROUP BY (PostgreSQL refuses a constant), one row
    if start is not None:
        query = query.where(c.c.opened_at >= start)
    if end is not None:
        query = query.where(c.c.opened_at < end)
    if only is not None:
        for name in ("team", "source", "segment", "survey_id"):
            value = getattr(only, name)
            if value is not None:
                query = query.where(c.c[name] == value)
    every = (1 << len(expressions)) - 1
    found: dict[str, list[FigureRow]] = {g: [] for g in asked}
    for r in await session.execute(query):
        if len(asked) == 1:
            grouping, group = asked[0], (r.g0 if expressions else "all")
        elif r.which == every:
            grouping, group = "all", "all"
        else:
            i = next(
                i for i in range(len(expressions)) if not r.which >> (len(expressions) - 1 - i) & 1
            )
            grouping, group = keyed[i], r._mapping[f"g{i}"]
        found[grouping].append(
            FigureRow(
                grouping=grouping,
                group=None if group is None else str(group),
                cases=r.cases,
                open=r.open,
                breached=r.breached,
                on_time=r.on_time,
                contacted=r.contacted,
                closed=r.closed,
                with_later_answer=r.with_later_answer,
                recovered=r.recovered,
                first_contact_p50=_seconds(r.fc50),
                first_contact_p90=_seconds(r.fc90),
                resolution_p50=_seconds(r.rs50),
                resolution_p90=_seconds(r.rs90),
            )
        )
    # Each grouping's groups in order (NULL, an owner not yet assigned, last), groupings as asked.
    return [
        row
        for g in asked
        for row in sorted(found[g], key=lambda row: (row.group is None, row.group or ""))
    ]


def _seconds(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
