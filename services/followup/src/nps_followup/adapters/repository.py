"""Followup's repository: the SQL behind its use cases, inside one unit of work. One object
implements every port; the SQL of each concern is in its own module beside this one."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Event, Segment
from nps_followup.adapters import tables
from nps_followup.adapters.action_store import ActionRow, ActionStore
from nps_followup.adapters.case_reads import CaseReads, breached
from nps_followup.adapters.case_store import CaseStore
from nps_followup.adapters.contact_rules import ContactRuleStore
from nps_followup.adapters.response_records import ResponseRecords
from nps_followup.adapters.timer_store import DueTimer, TimerStore, due_timers_query
from nps_followup.domain.cases import CaseStatus
from nps_kit import inbox, outbox

# What the handlers, the bench and the tests import from here, wherever it lives now.
__all__ = [
    "SOURCE",
    "ActionRow",
    "DueTimer",
    "FigureFilter",
    "FigureRow",
    "FollowupRepository",
    "breached",
    "closed_loop_figures",
    "due_timers_query",
]

SOURCE = "/followup"


class FollowupRepository(
    CaseStore, CaseReads, ActionStore, TimerStore, ContactRuleStore, ResponseRecords
):
    """Every port of `handlers.ports` over one session (the caller's unit of work): the SQL
    of each concern lives in its own module (`case_store`, `case_reads`, `action_store`,
    `timer_store`, `contact_rules`, `response_records`); what spans them is here."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Delete the customer's cases with everything hanging off them (actions, timers,
        timeline), their opt-outs and last-message time, and their queued, unpublished events.
        The customer is then unknown to followup: a new response opens a new case."""
        cases = select(tables.cases.c.case_id).where(tables.cases.c.customer_id == customer_id)
        erased: dict[str, int] = {}
        for name, table in (
            ("timeline", tables.timeline),
            ("timers", tables.timers),
            ("actions", tables.actions),
        ):
            result = await self.session.execute(table.delete().where(table.c.case_id.in_(cases)))
            erased[name] = int(getattr(result, "rowcount", 0) or 0)
        for name, table in (
            ("cases", tables.cases),
            ("responses_not_acted_on", tables.responses_not_acted_on),
            ("scored_responses", tables.scored_responses),
            ("do_not_contact", tables.do_not_contact),
            ("last_messages", tables.last_messages),
        ):
            result = await self.session.execute(
                table.delete().where(table.c.customer_id == customer_id)
            )
            erased[name] = int(getattr(result, "rowcount", 0) or 0)
        erased["outbox"] = await outbox.discard_for_key(
            self.session, tables.outbox, customer_id.encode()
        )
        return erased

    async def claim(self, consumer: str, event_ids: Iterable[str]) -> set[str]:
        """Event ids not processed before by `consumer`, now marked processed."""
        return await inbox.claim(self.session, tables.inbox, consumer, event_ids)

    async def read_only(self) -> None:
        """Make this transaction refuse every write (PostgreSQL's READ ONLY): what a replay
        runs in. Must be the transaction's first statement."""
        await self.session.execute(text("SET TRANSACTION READ ONLY"))

    async def figures(
        self,
        *,
        group_by: str,
        start: datetime | None,
        end: datetime | None,
        now: datetime,
        only: "FigureFilter | None" = None,
    ) -> list["FigureRow"]:
        return await closed_loop_figures(
            self.session, group_by=group_by, start=start, end=end, now=now, only=only
        )

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        await outbox.add(self.session, tables.outbox, events, source=SOURCE, now=now)


@dataclass(frozen=True, slots=True)
class FigureRow:
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


async def closed_loop_figures(
    session: AsyncSession,
    *,
    group_by: str,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    only: FigureFilter | None = None,
) -> list[FigureRow]:
    """Closed-loop figures of the cases people work (not automated ones) opened in
    [start, end), per group, of `only` those cases when given; one SQL pass, percentiles
    computed by PostgreSQL (a team's range reads ix_cases_team_opened_at, any other range
    ix_cases_opened_at)."""
    c = tables.cases
    if group_by in ("team", "owner", "segment"):
        group: Any = c.c[group_by]
    elif group_by in ("day", "week", "month"):
        group = func.to_char(
            func.date_trunc(group_by, func.timezone("UTC", c.c.opened_at)), "YYYY-MM-DD"
        )
    else:
        group = literal_column("'all'")  # one group: no GROUP BY (PostgreSQL refuses a constant)
    on_time = and_(c.c.first_contact_at.is_not(None), c.c.first_contact_at <= c.c.due_at)
    to_contact = func.extract("epoch", c.c.first_contact_at - c.c.opened_at)
    to_resolve = func.extract("epoch", c.c.resolved_at - c.c.opened_at)

    def count_if(condition: Any) -> Any:
        return func.count().filter(condition)

    def percentile(fraction: float, value: Any) -> Any:
        return func.percentile_cont(fraction).within_group(value)

    query = select(
        group.label("grp"),
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
    if group_by != "all":
        query = query.group_by(group).order_by(group)
    if start is not None:
        query = query.where(c.c.opened_at >= start)
    if end is not None:
        query = query.where(c.c.opened_at < end)
    if only is not None:
        for name in ("team", "source", "segment", "survey_id"):
            value = getattr(only, name)
            if value is not None:
                query = query.where(c.c[name] == value)
    rows = await session.execute(query)
    return [
        FigureRow(
            group=None if r.grp is None else str(r.grp),
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
        for r in rows
    ]


def _seconds(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
