"""Inbox: de-duplication of consumed events by id, inside the handler's transaction.

Each service has its own `inbox` table in its own schema (see `inbox_table`). Claiming ids
and doing the work happen in one transaction, so an event is processed exactly once in
effect however often Kafka delivers it.
"""

from collections.abc import Iterable

from sqlalchemy import Column, DateTime, MetaData, String, Table, bindparam, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

#: The ids as one array parameter: a statement whose SQL does not grow with the batch, so it is
#: compiled once and cached (a 500-row VALUES list cost ~15 ms of CPU per batch to compile).
_IDS = bindparam("event_ids", type_=ARRAY(String(200)))


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("event_id", String(200), primary_key=True),
        Column("consumer", String(100), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


async def claim(
    session: AsyncSession, table: Table, consumer: str, event_ids: Iterable[str]
) -> set[str]:
    """Record `event_ids` as processed by `consumer`; return those not seen before."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return set()
    stmt = (
        insert(table)
        .from_select(
            ["event_id", "consumer"],
            select(func.unnest(_IDS), literal(consumer, String(100))),
        )
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )
    result = await session.execute(stmt, {"event_ids": ids})
    return set(result.scalars())
