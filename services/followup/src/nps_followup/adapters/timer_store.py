"""Followup's SQL for the timers of cases: scheduled actions and the escalation ladder."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Select,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_followup.adapters import tables
from nps_followup.adapters.bulk import row_columns, unnest_update
from nps_followup.domain.cases import PlannedTimer, TimerKind
from nps_kit.db import driver_fetch


@dataclass(frozen=True, slots=True)
class DueTimer:
    timer_id: uuid.UUID
    case_id: uuid.UUID
    kind: TimerKind
    action_id: uuid.UUID | None
    fire_at: datetime


def due_timers_query(
    now: datetime | ColumnElement[datetime], limit: int | ColumnElement[int]
) -> Select[Any]:
    """The sweeper's due-now query: an index scan of the partial index on pending timers (its
    condition written out in the statement, so that a prepared statement's generic plan can
    use that index too)."""
    t = tables.timers
    return (
        select(t.c.timer_id, t.c.case_id, t.c.kind, t.c.action_id, t.c.fire_at)
        .where(t.c.state == literal_column("'pending'"), t.c.fire_at <= now)
        .order_by(t.c.fire_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


#: The due timers claimed and recorded as fired in one statement: the due-now query locks them
#: (its rows' `ctid`s, which cannot move while this transaction holds their locks), and the
#: update finds each by its `ctid` (a TID scan, no index descent) and returns it. Two round
#: trips before (the claim, then an update by `timer_id` with the ids sent back).
_CLAIM = text(
    "WITH due AS ("  # noqa: S608 - our compiled query
    + str(
        due_timers_query(
            literal_column(":now", DateTime(timezone=True)), literal_column(":limit", Integer)
        )
        .with_only_columns(literal_column("followup.timers.ctid"))
        .compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    )
    + ") UPDATE followup.timers AS t SET state = 'fired', fired_at = CAST(:now AS timestamptz) "
    "WHERE t.ctid = ANY(ARRAY(SELECT ctid FROM due)) "
    "RETURNING t.timer_id, t.case_id, t.kind, t.action_id, t.fire_at"
)


#: The one lifecycle field a sweep changes: every other column of the case goes untouched
#: (writing all ten lifecycle fields back cost ~8% of the sweeper's CPU per escalation).
_LEVEL_COLUMNS = ("case_id", "escalation_level")
_SET_LEVELS = unnest_update(tables.cases, "case_id", _LEVEL_COLUMNS[1:])


def _fire_at(timer: "DueTimer") -> datetime:
    return timer.fire_at


class TimerStore:
    """Durable timers: claimed when due (FOR UPDATE SKIP LOCKED, so that any number of
    sweepers fire each once), added for a reopened case's ladder, cancelled once a person
    reaches the customer."""

    session: AsyncSession

    async def claim_due_timers(self, now: datetime, limit: int) -> list[DueTimer]:
        """Pending timers due at `now`, in the order they fell due, locked so that another
        sweeper skips them (FOR UPDATE SKIP LOCKED: each fires once however many replicas
        sweep) and recorded as fired, in one statement (a rollback leaves them pending)."""
        rows = await driver_fetch(self.session, _CLAIM, {"now": now, "limit": limit})
        due = [DueTimer(r[0], r[1], TimerKind(r[2]), r[3], r[4]) for r in rows]
        due.sort(key=_fire_at)  # RETURNING keeps no order
        return due

    async def set_escalation_levels(self, levels: Mapping[uuid.UUID, int]) -> None:
        """Each case's escalation level, in one statement (the cases are locked by the sweep)."""
        if levels:
            params = row_columns(tables.cases, _LEVEL_COLUMNS, list(levels.items()))
            await driver_fetch(self.session, _SET_LEVELS, params)

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
