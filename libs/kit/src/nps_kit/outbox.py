"""Transactional outbox: events written in the same transaction as the state they describe,
then published by a relay.

The relay holds a PostgreSQL advisory lock while it publishes, so with any number of
replicas one relay publishes at a time, in the order the rows were written: per-customer
order on the topic follows commit order. A crash after publishing and before deleting the
rows publishes them again; consumers de-duplicate on the event id.
"""

import asyncio
import contextlib
import json
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TextClause,
    any_,
    bindparam,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Event, encode
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.faults import classify
from nps_kit.logging import get_logger
from nps_kit.metrics import LOOP_FAULTS, OUTBOX_BACKLOG, OUTBOX_PUBLISHED, labelled
from nps_kit.publishing import Outgoing
from nps_kit.redact import safe_error
from nps_kit.tracing import with_trace_context

log = get_logger(__name__)

SendMany = Callable[[Sequence[Outgoing]], Awaitable[None]]

#: The published rows' ids as one array parameter: a `DELETE` whose SQL does not grow with the
#: batch (an `IN` list is rendered again for every batch).
_IDS = bindparam("ids", type_=ARRAY(BigInteger))


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("topic", String(200), nullable=False),
        Column("key", LargeBinary, nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


#: `INSERT … SELECT` statements, one per outbox table: the batch's rows as one array per
#: column, so the SQL does not grow with the batch and SQLAlchemy compiles it once.
_INSERTS: dict[str, TextClause] = {}


def _insert_of(table: Table) -> TextClause:
    statement = _INSERTS.get(table.fullname)
    if statement is None:
        # The rows are inserted in the order of the arrays (WITH ORDINALITY … ORDER BY), so
        # their identity values follow the batch's order, as the relay's order needs: the
        # identity default is evaluated as the sorted rows reach the insert.
        statement = _INSERTS[table.fullname] = text(
            f"INSERT INTO {table.fullname} (topic, key, value, headers) "  # noqa: S608 - our table's name
            "SELECT topic, key, value, headers FROM unnest("
            "CAST(:topic AS text[]), CAST(:key AS bytea[]), CAST(:value AS bytea[]), "
            "CAST(:headers AS text[])) WITH ORDINALITY AS m(topic, key, value, headers, position) "
            "ORDER BY position"
        )
    return statement


async def add(
    session: AsyncSession, table: Table, events: list[Event], *, source: str, now: datetime
) -> None:
    """Queue `events` for publishing, in the caller's transaction, in the order given (the
    relay publishes them in that order)."""
    if not events:
        return
    topics: list[str] = []
    keys: list[bytes] = []
    values: list[bytes] = []
    headers: list[str] = []
    for event in events:
        message = encode(event, source=source, time=now)
        topics.append(event.topic.value)
        keys.append(message.key)
        values.append(message.value)
        # The trace context it is written in goes with it (docs/observability.md).
        headers.append(
            json.dumps([[name, raw.decode()] for name, raw in with_trace_context(message.headers)])
        )
    # One statement with an array per column: its SQL cost 3.8 µs of CPU per event against
    # 8.4 for an executemany of the same rows (docs/performance.md, scoring, 2026-12-05).
    await session.execute(
        _insert_of(table), {"topic": topics, "key": keys, "value": values, "headers": headers}
    )


class OutboxRelay:
    """Publishes outbox rows in order, then deletes them."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        table: Table,
        send_many: SendMany,
        batch_size: int = 500,
        idle_interval: float = 0.5,
    ) -> None:
        self._sessions = sessions
        self._table = table
        self._send_many = send_many
        self._batch_size = batch_size
        self._idle_interval = idle_interval
        self._wake = asyncio.Event()
        self._stopping = False
        # One lock id per outbox table, stable across processes.
        self._name = f"{table.schema}.{table.name}"
        self._lock_id = zlib.crc32(self._name.encode())

    def wake(self) -> None:
        """Called after a transaction that wrote outbox rows commits: publish without waiting."""
        self._wake.set()

    def stop(self) -> None:
        """Publish what is pending, then return from `run()`."""
        self._stopping = True
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch; return how many rows were published (0 if none or locked)."""
        table = self._table
        async with unit_of_work(self._sessions) as session:
            locked = await session.scalar(
                text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": self._lock_id}
            )
            if not locked:
                return 0
            rows = (
                await session.execute(
                    select(table.c.id, table.c.topic, table.c.key, table.c.value, table.c.headers)
                    .order_by(table.c.id)
                    .limit(self._batch_size)
                )
            ).all()
            if not rows:
                OUTBOX_BACKLOG.labels(outbox=self._name).set(0)
                return 0
            await self._send_many(
                [
                    Outgoing(
                        row.topic,
                        row.key,
                        row.value,
                        [(name, value.encode()) for name, value in json.loads(row.headers)],
                    )
                    for row in rows
                ]
            )
            published = Counter(row.topic for row in rows)
            for topic, n in published.items():
                labelled(OUTBOX_PUBLISHED, topic).inc(n)
            await session.execute(
                delete(table).where(table.c.id == any_(_IDS)), {"ids": [row.id for row in rows]}
            )
            # A full batch means more may wait: count them (only then, so an idle relay
            # costs nothing).
            backlog = (
                await session.scalar(select(func.count()).select_from(table))
                if len(rows) == self._batch_size
                else 0
            )
            OUTBOX_BACKLOG.labels(outbox=self._name).set(backlog or 0)
            return len(rows)

    async def run(self) -> None:
        """Publish until cancelled. Broker or database trouble is logged and retried."""
        backoff = self._idle_interval
        while True:
            try:
                published = await self.publish_pending()
                backoff = self._idle_interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                fault = classify(exc)
                LOOP_FAULTS.labels("outbox-relay", fault.value).inc()
                log.warning(
                    "outbox.publish_failed",
                    fault=fault.value,
                    error=safe_error(exc),
                    retry_in=backoff,
                )
                if self._stopping:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if published:
                continue
            if self._stopping:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._idle_interval)


async def discard_for_key(session: AsyncSession, table: Table, key: bytes) -> int:
    """Delete the events queued under message key `key` (a customer's, on erasure) and not
    published yet; return how many. Published ones have left the outbox already."""
    result = await session.execute(table.delete().where(table.c.key == key))
    return int(getattr(result, "rowcount", 0) or 0)
