"""Transactional outbox: events written in the same transaction as the state they describe,
then published by a relay.

The relay holds a PostgreSQL advisory lock while it publishes, so with any number of
replicas one relay publishes at a time, in the order the rows were written: per-customer
order on the topic follows commit order. The relay deletes the rows it publishes in the same
transaction, committed after the broker's acknowledgement: a failed publish, or a crash before
that commit, leaves them queued, and they are published again; consumers de-duplicate on the
event id. Until it commits, the relay holds the rows it takes, so `discard_for_key` (an
erasure) waits for the publish in flight, then finds them gone (or, if it failed, there).
"""

import asyncio
import contextlib
import json
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Identity,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from nps_events import Event, encode
from nps_events.envelope import CONTENT_TYPE, SPEC_VERSION
from nps_kit.db import SessionFactory, driver_connection
from nps_kit.faults import classify
from nps_kit.logging import get_logger
from nps_kit.metrics import LOOP_FAULTS, OUTBOX_BACKLOG, OUTBOX_PUBLISHED, labelled
from nps_kit.publishing import Outgoing
from nps_kit.redact import safe_error
from nps_kit.tracing import trace_context_headers

log = get_logger(__name__)

SendMany = Callable[[Sequence[Outgoing]], Awaitable[None]]


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("topic", String(200), nullable=False),
        Column("key", LargeBinary, nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False),
        # No `created_at` (dropped by each service's migration in issue #20's sixth session):
        # nothing read it, and it cost 8 bytes and a `now()` per row.
    )


#: The kit's statements on an outbox table, written once per table. They run on the
#: transaction's asyncpg connection (`driver_connection`), which prepares each once.
_STATEMENTS: dict[str, "_Statements"] = {}


class _Statements:
    def __init__(self, table: Table) -> None:
        name = table.fullname
        # One statement with an array per column, so the SQL does not grow with the batch.
        # The rows are inserted in the order of the arrays (WITH ORDINALITY … ORDER BY), so
        # their identity values follow the batch's order, as the relay's order needs: the
        # identity default is evaluated as the sorted rows reach the insert.
        self.insert = (
            f"INSERT INTO {name} (topic, key, value, headers) "  # noqa: S608 - our table's name
            "SELECT topic, key, value, headers FROM unnest("
            "$1::text[], $2::bytea[], $3::bytea[], $4::text[]) "
            "WITH ORDINALITY AS m(topic, key, value, headers, position) ORDER BY position"
        )
        # The relay's look: the first rows taken out of the table in one statement, before they
        # are published; the transaction commits after the broker's acknowledgement, so a
        # failed publish or a crash before the commit leaves them where they were. RETURNING
        # has no order of its own: the relay sorts them by id. The ids as an array computed
        # once (an InitPlan), then one bitmap scan of the primary key for all of them: half
        # the backend's CPU of `id IN (SELECT …)`, whose plan joins each id back through the
        # index (a hash aggregate, then an index scan per row): 2.2–3.3 against 6.4–6.9 µs
        # per row taken; and no join for a generic plan to turn into a sequential scan of the
        # table's dead rows at every call, which the old shape did in the pipeline (6.2 ms per
        # journey in one run; docs/performance.md, issue #20, fourth session).
        self.take = (
            f"DELETE FROM {name} WHERE id = ANY(ARRAY("  # noqa: S608 - our table's name
            f"SELECT id FROM {name} ORDER BY id LIMIT $1)) "
            "RETURNING id, topic, key, value, headers"
        )
        self.count = f"SELECT count(*) FROM {name}"  # noqa: S608


def _statements(table: Table) -> _Statements:
    statements = _STATEMENTS.get(table.fullname)
    if statements is None:
        statements = _STATEMENTS[table.fullname] = _Statements(table)
    return statements


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
    # The trace context they are written in goes with them (docs/observability.md): the same
    # for every event of the call, so looked up once (`encode`'s headers never carry one).
    context = trace_context_headers()
    store = stored_headers if headers_form(table) == "compact" else _json_headers
    for event in events:
        message = encode(event, source=source, time=now)
        topics.append(event.topic.value)
        keys.append(message.key)
        values.append(message.value)
        headers.append(store([*message.headers, *context] if context else message.headers))
    # One statement with an array per column: its SQL cost 3.8 µs of CPU per event against
    # 8.4 for an executemany of the same rows (docs/performance.md, scoring, 2026-12-05).
    connection = await driver_connection(session)
    await connection.execute(_statements(table).insert, topics, keys, values, headers)


#: The CloudEvents headers `nps_events.encode` writes, in its order: a row whose headers are
#: these stores only the five values that vary (and any header after them, name and value).
_CE_NAMES = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject",
             "content-type"]  # fmt: skip
_SPEC_VERSION = SPEC_VERSION.encode()
_CONTENT_TYPE = CONTENT_TYPE.encode()
#: Starts a compact row (never the start of JSON, so a relay of a version before it fails on
#: such a row, and retries, rather than publishing it wrong); separates its values. The
#: events' text fields refuse control characters, and a value holding one is stored as JSON.
_COMPACT = "\x1e"
_SEPARATOR = "\x1f"


#: The key of `table.info` that says how `add` stores headers (`use_headers`).
_HEADERS_FORM = "npsloop_outbox_headers"


def use_headers(table: Table, form: Literal["json", "compact"]) -> None:
    """How `add` stores the headers of the events it queues in `table` from now on: as JSON
    (the default, which every relay reads) or compact (`stored_headers`: read by the relay
    of this release and later ones only). The relay reads either form, whatever this says."""
    table.info[_HEADERS_FORM] = form


def headers_form(table: Table) -> Literal["json", "compact"]:
    """How `add` stores headers in `table` (`use_headers`; JSON unless told)."""
    return "compact" if table.info.get(_HEADERS_FORM) == "compact" else "json"


def _json_headers(headers: Sequence[tuple[str, bytes]]) -> str:
    return json.dumps([[name, raw.decode()] for name, raw in headers])


def stored_headers(headers: Sequence[tuple[str, bytes]]) -> str:
    """`headers` as the outbox row's `headers` column holds them, read back by `wire_headers`.

    The ones `encode` writes in its order are stored compact: `\\x1e`, then `ce_id`,
    `ce_source`, `ce_type`, `ce_time`, `ce_subject` and each later header's name and value
    (the trace context), separated by `\\x1f`; the two constant headers and the names are
    not stored (~150 bytes less per row than JSON, less WAL). Any other list is stored as a
    JSON list of [name, value] pairs, as every row was before."""
    if (
        len(headers) >= len(_CE_NAMES)
        and [name for name, _ in headers[:7]] == _CE_NAMES
        and headers[0][1] == _SPEC_VERSION
        and headers[6][1] == _CONTENT_TYPE
    ):
        parts = [raw.decode() for _, raw in headers[1:6]]
        for name, raw in headers[7:]:
            parts += (name, raw.decode())
        joined = _SEPARATOR.join(parts)
        if joined.count(_SEPARATOR) == len(parts) - 1 and _COMPACT not in joined:
            return _COMPACT + joined
    return _json_headers(headers)


def wire_headers(stored: str) -> list[tuple[str, bytes]]:
    """The headers `stored_headers` stored (or a row of a version before it, as JSON), in
    the order and with the bytes they were given."""
    if not stored.startswith(_COMPACT):
        return [(name, raw.encode()) for name, raw in json.loads(stored)]
    parts = stored[1:].split(_SEPARATOR)
    headers = [
        ("ce_specversion", _SPEC_VERSION),
        ("ce_id", parts[0].encode()),
        ("ce_source", parts[1].encode()),
        ("ce_type", parts[2].encode()),
        ("ce_time", parts[3].encode()),
        ("ce_subject", parts[4].encode()),
        ("content-type", _CONTENT_TYPE),
    ]
    headers.extend((parts[i], parts[i + 1].encode()) for i in range(5, len(parts) - 1, 2))
    return headers


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
        # BEGIN and the lock in one simple query (one round trip): the command tag says
        # whether the lock was granted ("SELECT 1") or another replica's relay holds it
        # ("SELECT 0"). The lock id is an integer of ours, written into the SQL.
        self._begin_and_lock = (
            f"BEGIN; SELECT 1 WHERE pg_try_advisory_xact_lock({int(self._lock_id)})"
        )

    def wake(self) -> None:
        """Called after a transaction that wrote outbox rows commits: publish without waiting."""
        self._wake.set()

    def stop(self) -> None:
        """Publish what is pending, then return from `run()`."""
        self._stopping = True
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch; return how many rows were published (0 if none or locked)."""
        statements = _statements(self._table)
        # A transaction of its own on a pooled connection, begun and ended here: the relay has
        # no ORM work, and a session's transaction around the same statements cost ~150 µs
        # more CPU (docs/performance.md, the kit, 2026-12-06).
        # The sessions' engine, looked up when used (a factory may be bound after the relay is
        # built, as the API fuzz tests' is).
        engine: AsyncEngine = self._sessions.kw["bind"]
        async with engine.connect() as pooled:
            raw = await pooled.get_raw_connection()
            connection: Any = raw.driver_connection
            try:
                published = await self._publish(connection, statements)
                await connection.execute("COMMIT")
            except BaseException:
                # Never back into the pool inside a transaction (the pool's reset on return
                # knows only the transactions SQLAlchemy began): rolled back, or discarded.
                try:
                    if not connection.is_closed() and connection.is_in_transaction():
                        await connection.execute("ROLLBACK")
                except BaseException:
                    await pooled.invalidate()
                    raise
                raise
            return published

    async def _publish(self, connection: Any, statements: _Statements) -> int:
        """Three round trips when there is something to publish: BEGIN with the lock, the
        rows taken, and the caller's COMMIT. The rows are taken in a statement of their own,
        after the lock is granted: a statement's snapshot is taken when it starts, so taken
        with the lock, they could include rows another replica's relay had just published."""
        if await connection.execute(self._begin_and_lock) != "SELECT 1":
            return 0
        rows = await connection.fetch(statements.take, self._batch_size)
        if not rows:
            OUTBOX_BACKLOG.labels(outbox=self._name).set(0)
            return 0
        rows.sort(key=lambda row: row[0])
        await self._send_many(
            [
                Outgoing(topic, key, value, wire_headers(headers))
                for _, topic, key, value, headers in rows
            ]
        )
        published = Counter(row[1] for row in rows)
        for topic, n in published.items():
            labelled(OUTBOX_PUBLISHED, topic).inc(n)
        # A full batch means more may wait: count them (only then, so an idle relay
        # costs nothing).
        backlog = (
            await connection.fetchval(statements.count) if len(rows) == self._batch_size else 0
        )
        OUTBOX_BACKLOG.labels(outbox=self._name).set(backlog or 0)
        return len(rows)

    async def run(self) -> None:
        """Publish until cancelled. Broker or database trouble is logged and retried.

        After a batch smaller than `batch_size` the relay waits for a `wake()` (or the idle
        interval) instead of looking again at once: the rows it did not see were committed
        after its select, and whoever committed them in this process woke it; the wake flag
        is cleared before each look, so no wake-up is lost. At a steady rate that saves an
        empty transaction per batch (docs/performance.md, the kit, 2026-12-06)."""
        backoff = self._idle_interval
        while True:
            self._wake.clear()
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
            if published >= self._batch_size:
                continue  # a full batch: more may wait
            if self._stopping:
                if published:
                    continue  # publish what is pending, then return
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._idle_interval)


async def discard_for_key(session: AsyncSession, table: Table, key: bytes) -> int:
    """Delete the events queued under message key `key` (a customer's, on erasure) and not
    published yet; return how many. Published ones have left the outbox already."""
    result = await session.execute(table.delete().where(table.c.key == key))
    return int(getattr(result, "rowcount", 0) or 0)
