"""Inbox: de-duplication of consumed events by id, inside the handler's transaction.

Each service has its own `inbox` table in its own schema (see `inbox_table`). Claiming ids
and doing the work happen in one transaction, so an event is processed exactly once in
effect however often Kafka delivers it.
"""

from collections.abc import Iterable

from sqlalchemy import Column, DateTime, MetaData, String, Table, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession


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
    rows = [{"event_id": event_id, "consumer": consumer} for event_id in dict.fromkeys(event_ids)]
    if not rows:
        return set()
    stmt = insert(table).values(rows).on_conflict_do_nothing().returning(table.c.event_id)
    result = await session.execute(stmt)
    return set(result.scalars())
