"""Followup's SQL for writing cases: opening them, their lifecycle, their timelines."""

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import TextClause, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Segment
from nps_followup.adapters import tables
from nps_followup.adapters.action_store import ACTION_COLUMNS, action_columns
from nps_followup.adapters.bulk import (
    columns,
    row_columns,
    unnest_insert,
    unnest_update,
    with_inserted,
)
from nps_followup.adapters.case_rows import (
    CASE_COLUMNS,
    RecordRow,
    case_from_row,
    case_values,
    with_actions,
)
from nps_followup.domain.cases import Action, Case, CaseStatus, PlannedTimer, TimelineEntry
from nps_kit.db import driver_fetch

#: A new case's timers are all pending (the column's default): a timer that fires as the case
#: opens is not written at all (`add_cases`).
_TIMER_COLUMNS = ("timer_id", "case_id", "kind", "action_id", "fire_at")
_OF_INSERTED = "u.case_id IN (SELECT case_id FROM inserted)"
#: New cases, their actions and their timers in one statement (three round trips before).
#: A case that exists already is left as it was (`ON CONFLICT DO NOTHING`: another transaction
#: opened it first). Its actions and timers are inserted only with a case this statement
#: inserted, so none of them can exist already: their ids derive from the case's id (a staff
#: notice's from the response event that opened it, which opens one case), and the foreign
#: keys keep rows of a case that does not exist out. They go without `ON CONFLICT`, which made
#: each row a speculative insertion (its primary key probed first, the row confirmed with a WAL
#: record of its own); a conflict, which cannot happen, would fail the batch rather than pass
#: unseen.
_OPEN_CASES = with_inserted(
    unnest_insert(tables.cases, CASE_COLUMNS, returning="case_id"),
    "case_id",
    unnest_insert(
        tables.actions, ACTION_COLUMNS, prefix="a_", where=_OF_INSERTED, on_conflict=None
    ),
    unnest_insert(tables.timers, _TIMER_COLUMNS, prefix="t_", where=_OF_INSERTED, on_conflict=None),
)
#: The lifecycle fields `save_cases` writes (the in-memory fake of tests/support writes the same).
#: A case's response fields never change there.
LIFECYCLE_FIELDS = (
    "status",
    "owner",
    "escalation_level",
    "first_contact_at",
    "resolved_at",
    "closed_at",
    "root_cause",
    "due_at",
    "remind_at",
    "second_level_at",
)
_SAVE_CASES = unnest_update(tables.cases, "case_id", LIFECYCLE_FIELDS)
_LATEST_SCORES = unnest_update(tables.cases, "case_id", ("latest_score", "recovered"))
#: The cases' columns, as `case_from_row` reads them.
_CASE_READ = ", ".join(c.name for c in tables.cases.columns)
#: The active statuses written out (not an array parameter): a prepared statement's generic
#: plan then sees them as it sees the values of a custom plan.
_ACTIVE = ", ".join(f"'{status}'" for status in tables.ACTIVE)
# The statements below are built from our table's column names and constants, never input.
#: A batch's two reads in one: the customers' active cases (locked, in opening order, so that
#: the latest stands), then the cases of the batch's responses (their ids only).
#: The customers are a set joined to the cases (`unnest`), not `customer_id = ANY(:customers)`:
#: in the generic plan of that prepared statement PostgreSQL compared each active case it read
#: through the queue's partial index with every customer of the batch, one by one (a constant
#: array is hashed, a parameter is not): 15 ms for a batch of 500 at 3,200 active cases, and
#: growing with them (EXPLAIN ANALYZE, docs/performance.md, issue #20's seventh session). Joined,
#: the customers are hashed, or each looked up in `ix_cases_customer_id_opened_at`: a cost that
#: grows with the batch or the active cases, never with their product.
_CASES_OF_BATCH = text(
    "WITH active AS ("  # noqa: S608 - see above
    f"SELECT {', '.join('c.' + c.name for c in tables.cases.columns)} "
    "FROM unnest(CAST(:customers AS text[])) AS k(id) "
    "JOIN followup.cases c ON c.customer_id = k.id "
    f"WHERE c.status IN ({_ACTIVE}) ORDER BY c.opened_at FOR UPDATE OF c) "
    f"SELECT true AS active, {_CASE_READ} FROM active "
    "UNION ALL SELECT false, "
    + ", ".join(
        c.name if c.name in ("case_id", "response_id", "opened_at") else "NULL"
        for c in tables.cases.columns
    )
    + " FROM followup.cases WHERE response_id = ANY(CAST(:ids AS uuid[])) "
    "ORDER BY active, opened_at"
)
_LATEST_WORKED_CASES_OF = text(
    f"SELECT DISTINCT ON (customer_id) {_CASE_READ} FROM followup.cases "  # noqa: S608 - see above
    f"WHERE customer_id = ANY(CAST(:ids AS text[])) AND status <> '{CaseStatus.AUTOMATED.value}' "
    "ORDER BY customer_id, opened_at DESC"
)
_CASES_BY_ID = text(
    f"SELECT {_CASE_READ} FROM followup.cases "  # noqa: S608 - see above
    "WHERE case_id = ANY(CAST(:ids AS uuid[])) ORDER BY case_id FOR UPDATE"
)
_RESERVE_TURNS = text(
    "INSERT INTO followup.team_turns AS t (team, turn) "
    "VALUES (CAST(:team AS text), CAST(:count AS integer) - 1) "
    "ON CONFLICT (team) DO UPDATE SET turn = t.turn + CAST(:count AS integer) RETURNING t.turn"
)
TIMELINE_COLUMNS = (
    "entry_id",
    "case_id",
    "kind",
    "at",
    "actor",
    "actor_kind",
    "actor_id",
    "actor_rule",
    "details",
)


class CaseStore:
    """Cases and their timelines as the use cases change them: opened (with their actions
    and timers), locked and read back, their lifecycle and latest score saved."""

    session: AsyncSession

    async def get_case(self, case_id: uuid.UUID, *, for_update: bool = False) -> Case | None:
        query = select(tables.cases).where(tables.cases.c.case_id == case_id)
        if for_update:
            query = query.with_for_update()
        rows = (await self.session.execute(query)).all()
        cases = await with_actions(self.session, rows, timeline=True)
        return cases[0] if cases else None

    async def cases_by_id(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Case]:
        """Cases (without actions), locked for update in id order (no deadlock between
        sweepers)."""
        ids = sorted(set(case_ids))
        if not ids:
            return {}
        rows = await driver_fetch(self.session, _CASES_BY_ID, {"ids": ids})
        return {row["case_id"]: case_from_row(RecordRow(row)) for row in rows}

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
        return case_from_row(row) if row is not None else None

    async def cases_of_batch(
        self, response_ids: Iterable[uuid.UUID], customer_ids: Iterable[str]
    ) -> tuple[dict[uuid.UUID, uuid.UUID], dict[str, Case]]:
        """The case id of each response that has a case (by response id), and the case a
        person still works for each customer (by customer id), those locked for update, in
        one statement (two round trips before)."""
        params = {"ids": list(set(response_ids)), "customers": sorted(set(customer_ids))}
        existing: dict[uuid.UUID, uuid.UUID] = {}
        active: dict[str, Case] = {}
        for row in await driver_fetch(self.session, _CASES_OF_BATCH, params):
            if row["active"]:
                active[row["customer_id"]] = case_from_row(RecordRow(row))
            else:
                existing[row["response_id"]] = row["case_id"]
        return existing, active

    async def latest_worked_cases_of(self, customer_ids: Iterable[str]) -> dict[str, Case]:
        """Each customer's most recent case that a person worked (not automated)."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        rows = await driver_fetch(self.session, _LATEST_WORKED_CASES_OF, {"ids": ids})
        return {row["customer_id"]: case_from_row(RecordRow(row)) for row in rows}

    async def add_cases(
        self,
        cases: Sequence[Case],
        timers: Sequence[tuple[uuid.UUID, PlannedTimer]],
        *,
        exempt: set[uuid.UUID],
        priority: dict[uuid.UUID, str],
        requested: Sequence[tuple[uuid.UUID, Action]] = (),
        recipient: dict[uuid.UUID, str] | None = None,
    ) -> set[uuid.UUID]:
        """Insert the cases with their actions (in the state each has), the actions
        `requested` for them now (staff notices name their `recipient`) and their pending
        timers, in one statement; return the ids of the cases inserted (a case that existed
        already is left as it was, and gets none of these actions and timers)."""
        if not cases:
            return set()
        # One statement with an array per column (`adapters.bulk`): an executemany ran the
        # insert once per case, and the timers' once per timer; then three statements, one
        # per table.
        timer_rows = [
            (t.timer_id, case_id, t.kind.value, t.action_id, t.fire_at) for case_id, t in timers
        ]
        actions = [(c.case_id, a) for c in cases for a in c.actions] + list(requested)
        params = {
            **row_columns(tables.cases, CASE_COLUMNS, [case_values(c) for c in cases]),
            **action_columns(
                actions, exempt=exempt, priority=priority, recipient=recipient, prefix="a_"
            ),
            **row_columns(tables.timers, _TIMER_COLUMNS, timer_rows, prefix="t_"),
        }
        return {row[0] for row in await driver_fetch(self.session, _OPEN_CASES, params)}

    async def save_cases(self, cases: Sequence[Case]) -> None:
        """Write the lifecycle fields of any number of cases (not the latest score: see
        `record_latest_scores`), in one statement."""
        if not cases:
            return
        rows = [
            {
                "case_id": case.case_id,
                "status": case.status.value,
                "owner": case.owner,
                "escalation_level": case.escalation_level,
                "first_contact_at": case.first_contact_at,
                "resolved_at": case.resolved_at,
                "closed_at": case.closed_at,
                "root_cause": case.root_cause,
                "due_at": case.due_at,
                "remind_at": case.remind_at,
                "second_level_at": case.second_level_at,
            }
            for case in cases
        ]
        await driver_fetch(
            self.session,
            _SAVE_CASES,
            columns(tables.cases, ("case_id", *LIFECYCLE_FIELDS), rows, key="case_id"),
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

    async def record_latest_scores(self, cases: Sequence[Case]) -> None:
        """The customer's latest score on each case (and whether it means recovery). Only these
        columns: a person working the case at the same time loses nothing."""
        if not cases:
            return
        rows = [
            {"case_id": x.case_id, "latest_score": x.latest_score, "recovered": x.recovered}
            for x in cases
        ]
        await driver_fetch(
            self.session,
            _LATEST_SCORES,
            columns(tables.cases, ("case_id", "latest_score", "recovered"), rows, key="case_id"),
        )

    async def reserve_turns(self, team: str, count: int) -> int:
        """Reserve `count` consecutive round-robin turns of the team (0, 1, 2…), counted in
        the database so that replicas share them; return the first."""
        rows = await driver_fetch(self.session, _RESERVE_TURNS, {"team": team, "count": count})
        last = rows[0][0]
        return int(last or 0) - count + 1

    async def add_timelines(self, entries: Sequence[tuple[uuid.UUID, TimelineEntry]]) -> None:
        """Timeline entries of any number of cases, in one statement."""
        if entries:
            await self.session.execute(insert_timeline(), timeline_columns(entries))


def insert_timeline(prefix: str = "") -> TextClause:
    """Timeline entries in the order recorded (`seq` numbers the case's history); an entry
    recorded already is kept. Parameters: `timeline_columns`."""
    return unnest_insert(tables.timeline, TIMELINE_COLUMNS, ordered=True, prefix=prefix)


def timeline_columns(
    entries: Sequence[tuple[uuid.UUID, TimelineEntry]], prefix: str = ""
) -> dict[str, list[Any]]:
    rows = [
        (
            e.entry_id,
            case_id,
            e.kind,
            e.at,
            e.actor.label() if e.actor else None,
            e.actor.kind.value if e.actor else None,
            e.actor.id if e.actor else None,
            e.actor.rule if e.actor else None,
            e.details,
        )
        for case_id, e in entries
    ]
    return row_columns(tables.timeline, TIMELINE_COLUMNS, rows, prefix=prefix)
