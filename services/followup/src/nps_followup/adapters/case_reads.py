"""Followup's SQL for reading cases: lists, the urgency queue, the gauges."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    DateTime,
    String,
    Uuid,
    and_,
    cast,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from nps_followup.adapters import tables
from nps_followup.adapters.case_rows import with_actions
from nps_followup.domain.access import CaseScope
from nps_followup.domain.cases import Case, CaseStatus
from nps_followup.domain.queue import Place, QueueFilter, Urgency


def breached(now: datetime) -> ColumnElement[bool]:
    """`domain.cases.is_breached` as a condition on the cases table, for the counts that must
    not load each case (tests/integration/test_followup_breached.py checks that they agree)."""
    c = tables.cases.c
    return or_(
        and_(c.first_contact_at.is_(None), c.due_at.is_not(None), c.due_at < now),
        c.first_contact_at > c.due_at,
    )


class CaseReads:
    """Cases as people browse them: newest first, in urgency order (a cursor's page reads as
    few rows however deep it is), and the counts behind the case gauges."""

    session: AsyncSession

    async def list_cases(
        self,
        *,
        customer_id: str | None,
        status: CaseStatus | Sequence[CaseStatus] | None,
        limit: int,
        offset: int,
        filters: QueueFilter | None = None,
        scope: CaseScope | None = None,
    ) -> list[Case]:
        """Newest first (the queue in urgency order is `case_queue`). With a `scope`, only its
        teams' cases and those its person owns."""
        c = tables.cases.c
        query = select(tables.cases).order_by(c.opened_at.desc(), c.case_id)
        if customer_id is not None:
            query = query.where(c.customer_id == customer_id)
        if isinstance(status, CaseStatus):
            query = query.where(c.status == status.value)
        elif status:
            query = query.where(c.status.in_([s.value for s in status]))
        query = query.where(*_filter_conditions(filters or QueueFilter(), scope))
        rows = (await self.session.execute(query.limit(limit).offset(offset))).all()
        return await with_actions(self.session, rows, timeline=False)

    async def case_queue(
        self,
        *,
        filters: QueueFilter,
        scope: CaseScope | None,
        as_of: datetime,
        after: Place | None = None,
        backwards: bool = False,
        limit: int,
        offset: int = 0,
    ) -> list[tuple[Case, Place]]:
        """Cases in urgency order as of `as_of` (see `domain.queue`), those after `after`
        (before it, nearest first, when `backwards`), at most `limit`, each with its place
        (`domain.queue.place_of` says the same; a test checks that they agree).

        One UNION ALL of a range scan per status and urgency group, each in (due_at,
        case_id) order and limited, then merged: on the partial index of active cases, a page
        after a cursor reads as few rows as the first page, however deep it is."""
        c = tables.cases.c
        statuses = filters.statuses or tuple(CaseStatus)
        # Breached as it stood at `as_of`: an open case past its deadline; or one reached or
        # resolved since `as_of` (a cursor's), which keeps the place it had then. `since`
        # says the same for the status at hand, in a form an index answers: the few cases
        # changed since `as_of`.
        parts: list[tuple[Urgency, ColumnElement[bool]]] = []
        for status in statuses:
            if status is CaseStatus.OPEN:
                breached = and_(_is(status), c.due_at < as_of)
                due = and_(_is(status), c.due_at >= as_of)
            else:
                unreached = or_(c.first_contact_at.is_(None), c.first_contact_at > as_of)
                unresolved = or_(c.resolved_at.is_(None), c.resolved_at > as_of)
                since = (
                    c.first_contact_at > as_of
                    if status is CaseStatus.CONTACTED
                    else c.resolved_at > as_of
                )
                breached = and_(_is(status), c.due_at < as_of, since, unreached, unresolved)
                due = and_(
                    _is(status),
                    c.due_at.is_not(None),
                    or_(c.due_at >= as_of, not_(and_(unreached, unresolved))),
                )
            parts.append((Urgency.BREACHED, breached))
            parts.append((Urgency.DUE, due))
        parts.extend(
            (Urgency.NO_DEADLINE, and_(c.status == s.value, c.due_at.is_(None))) for s in statuses
        )
        common = _filter_conditions(filters, scope)
        selects = []
        for urgency, part in parts:
            condition = part
            if after is not None:
                if (urgency < after.urgency) != backwards and urgency != after.urgency:
                    continue
                if urgency == after.urgency:
                    condition = and_(part, _beyond(after, backwards=backwards))
            ordering = [c.due_at.desc(), c.case_id.desc()] if backwards else [c.due_at, c.case_id]
            selects.append(
                select(tables.cases, literal(int(urgency)).label("urgency"))
                .where(condition, *common)
                .order_by(*ordering)
                .limit(limit + offset)
            )
        if not selects:
            return []
        merged = union_all(*selects).subquery("queue")
        q = merged.c
        if backwards:
            order = [q.urgency.desc(), q.due_at.desc().nulls_first(), q.case_id.desc()]
        else:
            order = [q.urgency.asc(), q.due_at.asc().nulls_last(), q.case_id.asc()]
        query = select(merged).order_by(*order).limit(limit).offset(offset)
        rows = (await self.session.execute(query)).all()
        if backwards:
            rows = rows[::-1]
        cases = await with_actions(self.session, rows, timeline=False)
        return [
            (case, Place(Urgency(row.urgency), row.due_at, row.case_id))
            for case, row in zip(cases, rows, strict=True)
        ]

    async def case_gauges(self, now: datetime) -> tuple[dict[tuple[str, str], int], dict[int, int]]:
        """Active cases by (segment, status), and breached open cases by escalation level:
        two grouped counts (the partial indexes on status keep them cheap)."""
        c = tables.cases.c
        active = await self.session.execute(
            select(c.segment, c.status, func.count())
            .where(c.status.in_(["open", "contacted"]))
            .group_by(c.segment, c.status)
        )
        breaching = await self.session.execute(
            select(c.escalation_level, func.count())
            .where(c.status == CaseStatus.OPEN.value, breached(now))
            .group_by(c.escalation_level)
        )
        return (
            {(row[0], row[1]): int(row[2]) for row in active},
            {int(row[0]): int(row[1]) for row in breaching},
        )


def _is(status: CaseStatus) -> ColumnElement[bool]:
    """`status = 'open'` with the value written out, not bound: the planner can then see that
    the partial index on active cases covers the statement, even in a generic plan."""
    return tables.cases.c.status == literal_column(f"'{status.value}'", String)


def _beyond(place: Place, *, backwards: bool) -> ColumnElement[bool]:
    """The cases after `place` within its urgency group (before it, when `backwards`)."""
    c = tables.cases.c
    if place.due_at is None:
        return c.case_id < place.case_id if backwards else c.case_id > place.case_id
    key = tuple_(c.due_at, c.case_id)
    mark = tuple_(literal(place.due_at, DateTime(timezone=True)), literal(place.case_id, Uuid))
    return key < mark if backwards else key > mark


def _filter_conditions(filters: QueueFilter, scope: CaseScope | None) -> list[ColumnElement[bool]]:
    """The queue's filters, and the caller's scope, as conditions on the cases table."""
    c = tables.cases.c
    conditions: list[ColumnElement[bool]] = []
    if filters.customer_id is not None:
        conditions.append(c.customer_id == filters.customer_id)
    if filters.segments:
        conditions.append(c.segment.in_(sorted(filters.segments)))
    if filters.sources:
        conditions.append(c.source.in_(sorted(filters.sources)))
    if filters.themes:
        themes = cast(sorted(filters.themes), ARRAY(String(40)))
        conditions.append(c.themes.overlap(themes))
    if filters.score_min is not None:
        conditions.append(c.score >= filters.score_min)
    if filters.score_max is not None:
        conditions.append(c.score <= filters.score_max)
    if filters.owner is not None:
        conditions.append(c.owner == filters.owner)
    if filters.team is not None:
        conditions.append(c.team == filters.team)
    if filters.customer:
        pattern = "%" + _like_escaped(filters.customer.lower()) + "%"
        conditions.append(tables.customer_search_text().like(pattern, escape="\\"))
    if scope is not None:
        conditions.append(
            or_(c.team.in_(sorted(scope.teams)), func.lower(c.owner) == (scope.person or ""))
        )
    return conditions


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
