"""Followup's SQL for the timers of cases: scheduled actions and the escalation ladder."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    DateTime,
    Integer,
    Select,
    bindparam,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_followup.adapters import tables
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
    now: datetime | BindParameter[Any], limit: int | BindParameter[Any]
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


#: The due-now query with its time and limit as parameters, run on the driver connection.
_CLAIM_DUE = due_timers_query(
    bindparam("now", type_=DateTime(timezone=True)), bindparam("limit", type_=Integer)
)
_FINISH = text(
    "UPDATE followup.timers SET state = 'fired', fired_at = CAST(:now AS timestamptz) "
    "WHERE timer_id = ANY(CAST(:ids AS uuid[]))"
)


class TimerStore:
    """Durable timers: claimed when due (FOR UPDATE SKIP LOCKED, so that any number of
    sweepers fire each once), added for a reopened case's ladder, cancelled once a person
    reaches the customer."""

    session: AsyncSession

    async def claim_due_timers(self, now: datetime, limit: int) -> list[DueTimer]:
        """Pending timers due at `now`, locked so that another sweeper skips them (FOR UPDATE
        SKIP LOCKED): each fires once however many replicas sweep."""
        rows = await driver_fetch(self.session, _CLAIM_DUE, {"now": now, "limit": limit})
        return [DueTimer(r[0], r[1], TimerKind(r[2]), r[3], r[4]) for r in rows]

    async def finish_timers(self, timer_ids: Sequence[uuid.UUID], now: datetime) -> None:
        if timer_ids:
            await driver_fetch(self.session, _FINISH, {"ids": list(timer_ids), "now": now})

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
