"""Followup's repository: the SQL behind its use cases, inside one unit of work."""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Row,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Actor, ActorKind, Customer, Event, Segment
from nps_events.text import clean_line, clean_text, email_error
from nps_followup.adapters import tables
from nps_followup.domain.access import CaseScope
from nps_followup.domain.cases import (
    Action,
    ActionState,
    Case,
    CaseStatus,
    NotActedOn,
    PlannedTimer,
    SetAside,
    TimelineEntry,
    TimerKind,
)
from nps_followup.domain.contact_rules import DoNotContactEntry
from nps_followup.domain.queue import Place, QueueFilter, Urgency
from nps_followup.domain.simulation import StoredResponse
from nps_kit import inbox, outbox

SOURCE = "/followup"


@dataclass(frozen=True, slots=True)
class DueTimer:
    timer_id: uuid.UUID
    case_id: uuid.UUID
    kind: TimerKind
    action_id: uuid.UUID | None
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class ActionRow:
    """An action as the sweeper needs it to dispatch."""

    action_id: uuid.UUID
    case_id: uuid.UUID
    channel: str
    template: str | None
    priority: str | None
    state: ActionState
    exempt_from_cap: bool


def breached(now: datetime) -> ColumnElement[bool]:
    """`domain.cases.is_breached` as a condition on the cases table, for the counts that must
    not load each case (tests/integration/test_followup_breached.py checks that they agree)."""
    c = tables.cases.c
    return or_(
        and_(c.first_contact_at.is_(None), c.due_at.is_not(None), c.due_at < now),
        c.first_contact_at > c.due_at,
    )


def due_timers_query(now: datetime, limit: int) -> Select[Any]:
    """The sweeper's due-now query: an index scan of the partial index on pending timers."""
    t = tables.timers
    return (
        select(t.c.timer_id, t.c.case_id, t.c.kind, t.c.action_id, t.c.fire_at)
        .where(t.c.state == "pending", t.c.fire_at <= now)
        .order_by(t.c.fire_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


class FollowupRepository:
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

    # --- cases ----------------------------------------------------------------------------

    async def cases_for_responses(
        self, response_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, uuid.UUID]:
        """The case id of each response that has a case, by response id."""
        ids = list(set(response_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(tables.cases.c.response_id, tables.cases.c.case_id).where(
                tables.cases.c.response_id.in_(ids)
            )
        )
        return {row.response_id: row.case_id for row in rows}

    async def set_aside(self, responses: Sequence[SetAside]) -> None:
        """Record responses not acted on; a later version of one replaces what is recorded."""
        if not responses:
            return
        t = tables.responses_not_acted_on
        statement = insert(t).values(
            [
                {
                    "response_id": r.response_id,
                    "customer_id": r.customer_id,
                    "source": r.source,
                    "survey_id": r.survey_id,
                    "segment": r.segment.value,
                    "score": r.score,
                    "responded_at": r.responded_at,
                    "reason": r.reason.value,
                    "rule": r.rule,
                    "window": r.window,
                    "recorded_at": r.recorded_at,
                }
                for r in responses
            ]
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[t.c.response_id],
                set_={
                    name: statement.excluded[name]
                    for name in (
                        "segment",
                        "score",
                        "responded_at",
                        "reason",
                        "rule",
                        "window",
                        "recorded_at",
                    )
                },
            )
        )

    async def record_scored(self, responses: Sequence[StoredResponse]) -> None:
        """Keep the compact record of each scored response for replays; a later revision
        replaces an earlier one (never the reverse), and the first `received_at` stays."""
        latest: dict[uuid.UUID, StoredResponse] = {}
        for r in responses:
            kept = latest.get(r.response_id)
            if kept is None or r.revision >= kept.revision:
                latest[r.response_id] = r
        if not latest:
            return
        t = tables.scored_responses
        rows = [
            {
                "response_id": r.response_id,
                "customer_id": r.customer_id,
                "source": r.source,
                "survey_id": r.survey_id,
                "segment": r.segment.value,
                "score": r.score,
                "revision": r.revision,
                "responded_at": r.responded_at,
                "received_at": r.received_at,
                "backfill": r.backfill,
                "has_email": r.has_email,
                "has_phone": r.has_phone,
                "timezone": r.timezone,
                "attributes": r.attributes,
            }
            for r in sorted(latest.values(), key=lambda r: r.response_id)
        ]
        statement = insert(t)
        changed = (
            "customer_id",
            "source",
            "survey_id",
            "segment",
            "score",
            "revision",
            "responded_at",
            "backfill",
            "has_email",
            "has_phone",
            "timezone",
            "attributes",
        )
        # One statement with the rows as parameters (SQLAlchemy's insertmanyvalues), not the
        # rows inlined in `values()`: the statement then compiles once per process. Inlined,
        # compiling 500 rows of 14 columns cost 270 µs per response, a quarter of the batch.
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[t.c.response_id],
                set_={name: statement.excluded[name] for name in changed},
                where=statement.excluded.revision >= t.c.revision,
            ),
            rows,
        )

    async def scored_between(self, start: datetime, end: datetime) -> list[StoredResponse]:
        """The stored responses answered in [start, end), in the order followup received them."""
        t = tables.scored_responses
        rows = await self.session.execute(
            select(t)
            .where(t.c.responded_at >= start, t.c.responded_at < end)
            .order_by(t.c.received_at, t.c.response_id)
        )
        return [
            StoredResponse(
                response_id=row.response_id,
                customer_id=row.customer_id,
                source=row.source,
                survey_id=row.survey_id,
                segment=Segment(row.segment),
                score=row.score,
                revision=row.revision,
                responded_at=row.responded_at,
                received_at=row.received_at,
                backfill=row.backfill,
                has_email=row.has_email,
                has_phone=row.has_phone,
                timezone=row.timezone,
                attributes=row.attributes,
            )
            for row in rows
        ]

    async def all_opt_outs(self) -> dict[str, set[str]]:
        """The whole do-not-contact list: each customer's scopes."""
        d = tables.do_not_contact
        found: dict[str, set[str]] = defaultdict(set)
        for row in await self.session.execute(select(d.c.customer_id, d.c.scope)):
            found[row.customer_id].add(row.scope)
        return found

    async def read_only(self) -> None:
        """Make this transaction refuse every write (PostgreSQL's READ ONLY): what a replay
        runs in. Must be the transaction's first statement."""
        await self.session.execute(text("SET TRANSACTION READ ONLY"))

    async def set_aside_response(self, response_id: uuid.UUID) -> SetAside | None:
        """What followup recorded of a response it did not act on, if it did not."""
        t = tables.responses_not_acted_on
        row = (await self.session.execute(select(t).where(t.c.response_id == response_id))).first()
        if row is None:
            return None
        return SetAside(
            response_id=row.response_id,
            customer_id=row.customer_id,
            source=row.source,
            survey_id=row.survey_id,
            segment=Segment(row.segment),
            score=row.score,
            responded_at=row.responded_at,
            reason=NotActedOn(row.reason),
            rule=row.rule,
            window=row.window,
            recorded_at=row.recorded_at,
        )

    async def update_case_response(
        self,
        case_id: uuid.UUID,
        *,
        score: int,
        segment: Segment,
        comment: str | None,
        themes: tuple[str, ...] = (),
    ) -> None:
        """The customer updated the response the case is about (a late comment, a new score)."""
        await self.session.execute(
            update(tables.cases)
            .where(tables.cases.c.case_id == case_id)
            .values(score=score, segment=segment.value, comment=comment, themes=list(themes))
        )

    async def active_case_of(self, customer_id: str) -> Case | None:
        """The case a person still works for this customer, locked for update."""
        row = (
            await self.session.execute(
                select(tables.cases)
                .where(
                    tables.cases.c.customer_id == customer_id,
                    tables.cases.c.status.in_(tables.ACTIVE),
                )
                .order_by(tables.cases.c.opened_at.desc())
                .limit(1)
                .with_for_update()
            )
        ).first()
        return _case(row) if row is not None else None

    async def active_cases_of(self, customer_ids: Iterable[str]) -> dict[str, Case]:
        """The case a person still works for each of these customers, locked for update."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(tables.cases)
            .where(
                tables.cases.c.customer_id.in_(ids),
                tables.cases.c.status.in_(tables.ACTIVE),
            )
            .order_by(tables.cases.c.opened_at)
            .with_for_update()
        )
        return {row.customer_id: _case(row) for row in rows}

    async def latest_worked_cases_of(self, customer_ids: Iterable[str]) -> dict[str, Case]:
        """Each customer's most recent case that a person worked (not automated)."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        c = tables.cases
        rows = await self.session.execute(
            select(c)
            .ext(distinct_on(c.c.customer_id))
            .where(c.c.customer_id.in_(ids), c.c.status != CaseStatus.AUTOMATED.value)
            .order_by(c.c.customer_id, c.c.opened_at.desc())
        )
        return {row.customer_id: _case(row) for row in rows}

    async def record_latest_scores(self, cases: Sequence[Case]) -> None:
        """The customer's latest score on each case (and whether it means recovery). Only these
        columns: a person working the case at the same time loses nothing."""
        if not cases:
            return
        c = tables.cases
        await self.session.execute(
            update(c)
            .where(c.c.case_id == bindparam("b_case_id"))
            .values(latest_score=bindparam("b_score"), recovered=bindparam("b_recovered"))
            .execution_options(synchronize_session=False),
            [
                {"b_case_id": x.case_id, "b_score": x.latest_score, "b_recovered": x.recovered}
                for x in cases
            ],
        )

    async def reserve_turns(self, team: str, count: int) -> int:
        """Reserve `count` consecutive round-robin turns of the team (0, 1, 2…), counted in
        the database so that replicas share them; return the first."""
        t = tables.team_turns
        last = await self.session.scalar(
            insert(t)
            .values(team=team, turn=count - 1)
            .on_conflict_do_update(index_elements=[t.c.team], set_={"turn": t.c.turn + count})
            .returning(t.c.turn)
        )
        return int(last or 0) - count + 1

    async def add_cases(
        self,
        cases: Sequence[Case],
        timers: Sequence[tuple[uuid.UUID, PlannedTimer]],
        *,
        exempt: set[uuid.UUID],
        priority: dict[uuid.UUID, str],
        fired: set[uuid.UUID],
    ) -> set[uuid.UUID]:
        """Insert the cases with their actions and timers (`fired`: timers the caller fires in
        this transaction); return the ids of the cases inserted (a case that existed already
        is left as it was)."""
        if not cases:
            return set()
        # executemany ("insertmanyvalues" batches it): a multi-VALUES statement built in Python
        # would spend more time compiling its bind parameters than PostgreSQL inserting.
        inserted = set(
            (
                await self.session.execute(
                    insert(tables.cases).on_conflict_do_nothing().returning(tables.cases.c.case_id),
                    [_case_values(c) for c in cases],
                )
            ).scalars()
        )
        await self.add_actions_of(
            [(c.case_id, a) for c in cases if c.case_id in inserted for a in c.actions],
            exempt=exempt,
            priority=priority,
        )
        rows = [
            {
                "timer_id": t.timer_id,
                "case_id": case_id,
                "kind": t.kind.value,
                "action_id": t.action_id,
                "fire_at": t.fire_at,
                "state": "fired" if t.timer_id in fired else "pending",
                "fired_at": t.fire_at if t.timer_id in fired else None,
            }
            for case_id, t in timers
            if case_id in inserted
        ]
        if rows:
            await self.session.execute(insert(tables.timers).on_conflict_do_nothing(), rows)
        return inserted

    async def add_actions_of(
        self,
        actions: Sequence[tuple[uuid.UUID, Action]],
        *,
        exempt: set[uuid.UUID],
        priority: dict[uuid.UUID, str] | None = None,
        recipient: dict[uuid.UUID, str] | None = None,
    ) -> None:
        """Actions of any number of cases, in one statement."""
        if not actions:
            return
        await self.session.execute(
            insert(tables.actions).on_conflict_do_nothing(),
            [
                {
                    "action_id": a.action_id,
                    "case_id": case_id,
                    "channel": a.channel,
                    "template": a.template,
                    "priority": (priority or {}).get(a.action_id),
                    "recipient": (recipient or {}).get(a.action_id),
                    "exempt_from_cap": a.action_id in exempt,
                    "state": a.state.value,
                    "scheduled_for": a.scheduled_for,
                    "requested_at": a.requested_at,
                    "updated_at": a.updated_at,
                }
                for case_id, a in actions
            ],
        )

    async def save_cases(self, cases: Sequence[Case]) -> None:
        """Write the lifecycle fields of any number of cases (not the latest score: see
        `record_latest_scores`), in one executemany."""
        if not cases:
            return
        c = tables.cases
        await self.session.execute(
            update(c)
            .where(c.c.case_id == bindparam("b_case_id"))
            .values(
                status=bindparam("b_status"),
                owner=bindparam("b_owner"),
                escalation_level=bindparam("b_level"),
                first_contact_at=bindparam("b_first_contact_at"),
                resolved_at=bindparam("b_resolved_at"),
                closed_at=bindparam("b_closed_at"),
                root_cause=bindparam("b_root_cause"),
                due_at=bindparam("b_due_at"),
                remind_at=bindparam("b_remind_at"),
                second_level_at=bindparam("b_second_level_at"),
            )
            .execution_options(synchronize_session=False),
            [
                {
                    "b_case_id": case.case_id,
                    "b_status": case.status.value,
                    "b_owner": case.owner,
                    "b_level": case.escalation_level,
                    "b_first_contact_at": case.first_contact_at,
                    "b_resolved_at": case.resolved_at,
                    "b_closed_at": case.closed_at,
                    "b_root_cause": case.root_cause,
                    "b_due_at": case.due_at,
                    "b_remind_at": case.remind_at,
                    "b_second_level_at": case.second_level_at,
                }
                for case in cases
            ],
        )

    async def get_case(self, case_id: uuid.UUID, *, for_update: bool = False) -> Case | None:
        query = select(tables.cases).where(tables.cases.c.case_id == case_id)
        if for_update:
            query = query.with_for_update()
        rows = (await self.session.execute(query)).all()
        cases = await self._with_actions(rows, timeline=True)
        return cases[0] if cases else None

    async def cases_by_id(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Case]:
        """Cases (without actions), locked for update in id order (no deadlock between
        sweepers)."""
        ids = sorted(set(case_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(tables.cases)
            .where(tables.cases.c.case_id.in_(ids))
            .order_by(tables.cases.c.case_id)
            .with_for_update()
        )
        return {row.case_id: _case(row) for row in rows}

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
        return await self._with_actions(rows, timeline=False)

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
        cases = await self._with_actions(rows, timeline=False)
        return [
            (case, Place(Urgency(row.urgency), row.due_at, row.case_id))
            for case, row in zip(cases, rows, strict=True)
        ]

    # --- timeline -------------------------------------------------------------------------

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

    async def add_timelines(self, entries: Sequence[tuple[uuid.UUID, TimelineEntry]]) -> None:
        """Timeline entries of any number of cases, in one statement."""
        if not entries:
            return
        await self.session.execute(
            insert(tables.timeline).on_conflict_do_nothing(),
            [
                {
                    "entry_id": e.entry_id,
                    "case_id": case_id,
                    "kind": e.kind,
                    "at": e.at,
                    "actor": e.actor.label() if e.actor else None,
                    "actor_kind": e.actor.kind.value if e.actor else None,
                    "actor_id": e.actor.id if e.actor else None,
                    "actor_rule": e.actor.rule if e.actor else None,
                    "details": e.details,
                }
                for case_id, e in entries
            ],
        )

    # --- timers ---------------------------------------------------------------------------

    async def claim_due_timers(self, now: datetime, limit: int) -> list[DueTimer]:
        """Pending timers due at `now`, locked so that another sweeper skips them (FOR UPDATE
        SKIP LOCKED): each fires once however many replicas sweep."""
        rows = await self.session.execute(due_timers_query(now, limit))
        return [
            DueTimer(r.timer_id, r.case_id, TimerKind(r.kind), r.action_id, r.fire_at) for r in rows
        ]

    async def finish_timers(self, timer_ids: Sequence[uuid.UUID], now: datetime) -> None:
        if timer_ids:
            await self.session.execute(
                update(tables.timers)
                .where(tables.timers.c.timer_id.in_(timer_ids))
                .values(state="fired", fired_at=now)
            )

    async def add_timers(self, case_id: uuid.UUID, timers: Sequence[PlannedTimer]) -> None:
        """Pending timers for an existing case (a reopened case's new ladder)."""
        if timers:
            await self.session.execute(
                insert(tables.timers).on_conflict_do_nothing(),
                [
                    {
                        "timer_id": t.timer_id,
                        "case_id": case_id,
                        "kind": t.kind.value,
                        "action_id": t.action_id,
                        "fire_at": t.fire_at,
                        "state": "pending",
                        "fired_at": None,
                    }
                    for t in timers
                ],
            )

    async def cancel_ladder(self, case_id: uuid.UUID, now: datetime) -> None:
        """A person reached the customer: no reminder or escalation any more."""
        await self.session.execute(
            update(tables.timers)
            .where(
                tables.timers.c.case_id == case_id,
                tables.timers.c.state == "pending",
                tables.timers.c.kind != TimerKind.ACTION.value,
            )
            .values(state="cancelled", fired_at=now)
        )

    # --- actions --------------------------------------------------------------------------

    async def actions_by_id(self, action_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ActionRow]:
        ids = list(set(action_ids))
        if not ids:
            return {}
        a = tables.actions
        rows = await self.session.execute(select(a).where(a.c.action_id.in_(ids)))
        return {
            r.action_id: ActionRow(
                r.action_id,
                r.case_id,
                r.channel,
                r.template,
                r.priority,
                ActionState(r.state),
                r.exempt_from_cap,
            )
            for r in rows
        }

    async def tickets_of(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """The action that asked for each case's helpdesk ticket, where one was requested."""
        ids = list(set(case_ids))
        if not ids:
            return {}
        a = tables.actions
        rows = await self.session.execute(
            select(a.c.case_id, a.c.action_id).where(
                a.c.case_id.in_(ids),
                a.c.channel == "ticket",
                a.c.template.is_(None),
                a.c.state.in_(
                    [ActionState.PLANNED.value, ActionState.SENT.value, ActionState.UNKNOWN.value]
                ),
            )
        )
        return {row.case_id: row.action_id for row in rows}

    async def set_action_states(
        self, states: Sequence[tuple[uuid.UUID, ActionState, str | None]], *, at: datetime
    ) -> None:
        """(action, state, reason) for any number of actions, in one executemany."""
        if not states:
            return
        a = tables.actions
        await self.session.execute(
            update(a)
            .where(a.c.action_id == bindparam("b_action_id"))
            .values(
                state=bindparam("b_state"),
                reason=bindparam("b_reason"),
                updated_at=at,
                requested_at=at,
            )
            .execution_options(synchronize_session=False),
            [
                {"b_action_id": action_id, "b_state": state.value, "b_reason": reason}
                for action_id, state, reason in states
            ],
        )

    async def record_action_outcome(
        self,
        action_id: uuid.UUID,
        *,
        state: ActionState,
        provider_message_id: str | None,
        reason: str | None,
        at: datetime,
    ) -> bool:
        """Record what happened to an action; False if there is no such action."""
        result = await self.session.execute(
            update(tables.actions)
            .where(tables.actions.c.action_id == action_id)
            .values(
                state=state.value,
                provider_message_id=provider_message_id,
                reason=reason,
                updated_at=at,
            )
            .returning(tables.actions.c.action_id)
        )
        return result.first() is not None

    # --- contact rules --------------------------------------------------------------------

    async def opted_out(self, customer_ids: Iterable[str]) -> dict[str, set[str]]:
        ids = list(set(customer_ids))
        found: dict[str, set[str]] = defaultdict(set)
        if ids:
            d = tables.do_not_contact
            rows = await self.session.execute(
                select(d.c.customer_id, d.c.scope).where(d.c.customer_id.in_(ids))
            )
            for row in rows:
                found[row.customer_id].add(row.scope)
        return found

    async def add_opt_out(
        self, customer_id: str, scope: str, *, source: str, reason: str | None, at: datetime
    ) -> None:
        await self.session.execute(
            insert(tables.do_not_contact)
            .values(customer_id=customer_id, scope=scope, source=source, reason=reason, at=at)
            .on_conflict_do_nothing()
        )

    async def remove_opt_out(self, customer_id: str, scope: str) -> bool:
        d = tables.do_not_contact
        result = await self.session.execute(
            d.delete()
            .where(and_(d.c.customer_id == customer_id, d.c.scope == scope))
            .returning(d.c.scope)
        )
        return result.first() is not None

    async def opt_outs_of(self, customer_id: str) -> list[DoNotContactEntry]:
        d = tables.do_not_contact
        rows = await self.session.execute(
            select(d).where(d.c.customer_id == customer_id).order_by(d.c.scope)
        )
        return [DoNotContactEntry(r.scope, r.source, r.reason, r.at) for r in rows]

    async def last_messages(self, customer_ids: Iterable[str]) -> dict[str, datetime]:
        ids = list(set(customer_ids))
        if not ids:
            return {}
        m = tables.last_messages
        rows = await self.session.execute(select(m).where(m.c.customer_id.in_(ids)))
        return {r.customer_id: r.at for r in rows}

    async def set_last_message(self, customer_id: str, at: datetime) -> None:
        await self.set_last_messages([customer_id], at)

    async def set_last_messages(self, customer_ids: Iterable[str], at: datetime) -> None:
        ids = sorted(set(customer_ids))
        if not ids:
            return
        m = tables.last_messages
        statement = insert(m)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[m.c.customer_id],
                set_={"at": func.greatest(m.c.at, statement.excluded.at)},
            ),
            [{"customer_id": i, "at": at} for i in ids],
        )

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

    # --- reading --------------------------------------------------------------------------

    async def _with_actions(self, rows: Sequence[Row[Any]], *, timeline: bool) -> list[Case]:
        if not rows:
            return []
        ids = [r.case_id for r in rows]
        actions: dict[uuid.UUID, list[Action]] = defaultdict(list)
        action_rows = await self.session.execute(
            select(tables.actions)
            .where(tables.actions.c.case_id.in_(ids))
            .order_by(tables.actions.c.requested_at, tables.actions.c.action_id)
        )
        for a in action_rows:
            actions[a.case_id].append(
                Action(
                    action_id=a.action_id,
                    channel=a.channel,
                    template=a.template,
                    state=ActionState(a.state),
                    provider_message_id=a.provider_message_id,
                    reason=a.reason,
                    requested_at=a.requested_at,
                    updated_at=a.updated_at,
                    scheduled_for=a.scheduled_for,
                )
            )
        entries: dict[uuid.UUID, list[TimelineEntry]] = defaultdict(list)
        if timeline:
            entry_rows = await self.session.execute(
                select(tables.timeline)
                .where(tables.timeline.c.case_id.in_(ids))
                .order_by(tables.timeline.c.seq)
            )
            for e in entry_rows:
                entries[e.case_id].append(
                    TimelineEntry(e.entry_id, e.kind, e.at, _actor(e), dict(e.details))
                )
        return [
            _case(r, actions=tuple(actions[r.case_id]), timeline=tuple(entries[r.case_id]))
            for r in rows
        ]


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


def _actor(e: Row[Any]) -> Actor | None:
    """A timeline entry's actor; entries written before actors were known (0003) have at most
    the free text a request gave, read as a person's name."""
    if e.actor_kind is None:
        return Actor(kind=ActorKind.PERSON, id=e.actor, name=e.actor) if e.actor else None
    return Actor(
        kind=ActorKind(e.actor_kind),
        id=e.actor_id or e.actor_kind,
        name=e.actor,
        rule=e.actor_rule,
    )


def _case(
    r: Row[Any], *, actions: tuple[Action, ...] = (), timeline: tuple[TimelineEntry, ...] = ()
) -> Case:
    return Case(
        case_id=r.case_id,
        response_id=r.response_id,
        source=r.source,
        survey_id=r.survey_id,
        customer_id=r.customer_id,
        customer_email=r.customer_email
        if r.customer_email is None or email_error(r.customer_email) is None
        else None,
        customer_name=clean_line(r.customer_name) or None if r.customer_name else None,
        segment=Segment(r.segment),
        score=r.score,
        comment=clean_text(r.comment) if r.comment else r.comment,
        status=CaseStatus(r.status),
        opened_at=r.opened_at,
        due_at=r.due_at,
        rule=r.rule,
        team=r.team,
        owner=r.owner,
        remind_at=r.remind_at,
        second_level_at=r.second_level_at,
        escalation_level=r.escalation_level,
        first_contact_at=r.first_contact_at,
        resolved_at=r.resolved_at,
        closed_at=r.closed_at,
        root_cause=r.root_cause,
        latest_score=r.latest_score,
        recovered=r.recovered,
        customer=_stored_customer(r.customer) if r.customer is not None else None,
        themes=tuple(r.themes or ()),
        actions=actions,
        timeline=timeline,
    )


def _stored_customer(data: dict[str, Any]) -> Customer:
    """The customer as stored with the case. One stored before the events refused control
    characters and lists of addresses (issue #12) may hold what a `SendEmail` can no longer
    carry: the name and attributes are made one line and an address that no longer passes is
    dropped, so that the case's timers and actions still go out (an email to nobody fails
    visibly on the case) instead of stopping every sweep at this case. Comments are cleaned
    the same way on load."""
    try:
        return Customer.model_validate(data)
    except ValidationError:
        pass
    name, email, attributes = data.get("name"), data.get("email"), data.get("attributes")
    return Customer.model_validate(
        {
            **data,
            "name": clean_line(name)[:200] or None if isinstance(name, str) else None,
            "email": email if isinstance(email, str) and email_error(email) is None else None,
            "attributes": {
                k: clean_line(v)[:200] for k, v in (attributes or {}).items() if isinstance(v, str)
            },
        }
    )


def _case_values(c: Case) -> dict[str, Any]:
    return {
        "case_id": c.case_id,
        "response_id": c.response_id,
        "source": c.source,
        "survey_id": c.survey_id,
        "customer_id": c.customer_id,
        "customer_email": c.customer_email,
        "customer_name": c.customer_name,
        "customer": c.customer.model_dump(mode="json") if c.customer is not None else None,
        "segment": c.segment.value,
        "score": c.score,
        "comment": c.comment,
        "themes": list(c.themes),
        "status": c.status.value,
        "opened_at": c.opened_at,
        "due_at": c.due_at,
        "remind_at": c.remind_at,
        "second_level_at": c.second_level_at,
        "rule": c.rule,
        "team": c.team,
        "owner": c.owner,
        "latest_score": c.latest_score,
        "recovered": c.recovered,
    }


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
