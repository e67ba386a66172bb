"""The kit's fixed costs: what a consumer batch pays in `nps_kit` whatever the service does.

In process, against the embedded PostgreSQL and broker, with an inbox and an outbox table of
the bench's own (schema `benchkit`), each batch goes the way every consumer's does:

    unit_of_work → inbox.claim(ids) → outbox.add(events) → commit → relay.publish_pending()

(the relay's own loop, woken after the commit: advisory lock, select, publish to the broker,
delete, commit; then whatever its loop does next). Batches of
1 (a steady stream) and of 500 (a backlog). `outbox.add` encodes the events in the timed loop,
as in a service; their ids are computed before it (each service derives them itself).

Printed per batch size: CPU per batch and per event (`time.process_time` of this process,
split into the handler's transaction and the rest: the relay, the broker's
answers, the event loop), and PostgreSQL's round trips per batch, counted
by a pass through a small proxy that reads the protocol (a simple query or an extended
query's Sync is one round trip). Then the idle cost: the relay's loop and nothing else, CPU
per second over `--idle` seconds. Last, the consumer runner with a handler that does nothing:
idle, and records produced one at a time (`--only consumer` runs that part alone,
`--only batches` all but that part).

    .venv/bin/python bench/kit.py                       # 2,000 batches of 1, 40 of 500
    .venv/bin/python bench/kit.py --ones 3000 --rounds 3
"""

import argparse
import asyncio
import contextlib
import gc
import os
import shutil
import statistics
import struct
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import uvloop
from sqlalchemy import MetaData, event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from nps_events import Customer, ResponseReceived, encode
from nps_events.topics import ALL_TOPICS
from nps_kit import inbox, outbox
from nps_kit.db import create_engine, session_factory, unit_of_work
from nps_kit.devstack import EmbeddedPostgres, free_port, new_broker
from nps_kit.messaging import (
    ConsumerRunner,
    Inbound,
    Outgoing,
    Publisher,
    Rejection,
    ensure_topics,
)
from nps_kit.settings import DatabaseSettings, KafkaSettings

SCHEMA = "benchkit"
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def _events(n: int, run: str) -> list[ResponseReceived]:
    return [
        ResponseReceived(
            response_id=ResponseReceived.derive_response_id("bench", f"{run}-r{i}"),
            source="bench",
            provider_response_id=f"{run}-r{i}",
            survey_id="survey-1",
            customer=Customer(id=f"{run}-c{i % 997}"),
            score=i % 11,
            comment="Support never answered my emails",
            responded_at=NOW,
            received_at=NOW,
        )
        for i in range(n)
    ]


class _Counter:
    """Counts round trips in the PostgreSQL protocol stream from client to server: a simple
    query ('Q') or the Sync ('S') that ends an extended query is one."""

    def __init__(self) -> None:
        self.round_trips = 0

    def feed(self, buffer: bytearray, started: bool) -> bool:
        """Consume whole messages from `buffer`; return whether the start-up message is past."""
        while True:
            if not started:
                if len(buffer) < 4:
                    return started
                (length,) = struct.unpack("!I", buffer[:4])
                if len(buffer) < length:
                    return started
                del buffer[:length]
                started = length != 8  # an SSLRequest (8 bytes) comes before the real start-up
                continue
            if len(buffer) < 5:
                return started
            kind = bytes(buffer[0:1])
            (length,) = struct.unpack("!I", buffer[1:5])
            if len(buffer) < 1 + length:
                return started
            if kind in (b"Q", b"S"):
                self.round_trips += 1
            del buffer[: 1 + length]


@contextlib.asynccontextmanager
async def _counting_proxy(upstream_port: int, counter: _Counter):  # type: ignore[no-untyped-def]
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)

        async def to_server() -> None:
            buffer, started = bytearray(), False
            while data := await reader.read(65536):
                buffer += data
                started = counter.feed(buffer, started)
                up_writer.write(data)
            up_writer.close()

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
            writer.close()

        with contextlib.suppress(ConnectionError):
            await asyncio.gather(to_server(), to_client())

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _setup(url: str) -> None:
    engine = create_engine(DatabaseSettings(url=url), application_name="bench-kit-setup")
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        await conn.run_sync(METADATA.create_all)
    await engine.dispose()


METADATA = MetaData(schema=SCHEMA)
INBOX = inbox.inbox_table(METADATA)
OUTBOX = outbox.outbox_table(METADATA)


async def _batches(
    url: str, kafka: KafkaSettings, *, size: int, count: int, counter: _Counter | None
) -> dict[str, float]:
    """`count` batches of `size` through the kit's path, each published by the relay's own
    loop (`OutboxRelay.run`, woken after the commit) before the next begins."""
    engine = create_engine(DatabaseSettings(url=url), application_name="bench-kit")
    statements = 0

    def _count_statement(*_: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine.sync_engine, "before_cursor_execute", _count_statement)
    sessions = session_factory(engine)
    publisher = Publisher(kafka, client_id="bench-kit")
    await publisher.start()
    sent = asyncio.Event()

    async def send_many(messages: Sequence[Outgoing]) -> None:
        await publisher.send_many(messages)
        sent.set()

    relay = outbox.OutboxRelay(sessions=sessions, table=OUTBOX, send_many=send_many, batch_size=500)
    relaying = asyncio.create_task(relay.run())
    run = uuid.uuid4().hex[:8]
    events = _events(size * (count + 1), run)
    ids = [str(e.event_id()) for e in events]
    try:

        async def one(i: int) -> float:
            lo, hi = i * size, (i + 1) * size
            started = time.process_time()
            async with unit_of_work(sessions) as session:
                fresh = await inbox.claim(session, INBOX, "bench", ids[lo:hi])
                await outbox.add(
                    session,
                    OUTBOX,
                    [e for e, id_ in zip(events[lo:hi], ids[lo:hi], strict=True) if id_ in fresh],
                    source="bench",
                    now=NOW,
                )
            spent = time.process_time() - started
            sent.clear()
            relay.wake()
            await sent.wait()
            return spent

        await one(0)  # the pool's connection, SQLAlchemy's caches
        await asyncio.sleep(0.2)  # the relay's look after it, if it takes one
        statements = 0
        trips_before = counter.round_trips if counter else 0
        gc.collect()
        wal_from = await _wal_lsn(engine)
        transaction = 0.0
        started = time.process_time()
        for i in range(1, count + 1):
            transaction += await one(i)
        await asyncio.sleep(0.2)  # the relay's look after the last, if it takes one
        total = time.process_time() - started
        wal = await _wal_since(engine, wal_from)
    finally:
        relay.stop()
        await relaying
        await publisher.stop()
        await engine.dispose()
    return {
        "transaction": transaction / count,
        "relay": (total - transaction) / count,
        "statements": statements / count,
        "round_trips": ((counter.round_trips - trips_before) / count) if counter else 0.0,
        "wal": wal / (count * size),
    }


async def _wal_lsn(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return str(await connection.scalar(text("SELECT pg_current_wal_lsn()::text")))


async def _wal_since(engine: AsyncEngine, lsn: str) -> float:
    """Bytes of WAL the cluster wrote since `lsn`: the claim, the outbox insert, the commits
    and the relay's delete (nothing else runs on the bench's PostgreSQL)."""
    async with engine.connect() as connection:
        return float(
            await connection.scalar(
                text(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(CAST(:lsn AS text) AS pg_lsn))"
                ),
                {"lsn": lsn},
            )
        )


async def _idle(url: str, kafka: KafkaSettings, seconds: float) -> float:
    """CPU per second of an idle relay's loop (nothing queued)."""
    engine = create_engine(DatabaseSettings(url=url), application_name="bench-kit-idle")
    publisher = Publisher(kafka, client_id="bench-kit-idle")
    await publisher.start()
    relay = outbox.OutboxRelay(
        sessions=session_factory(engine), table=OUTBOX, send_many=publisher.send_many
    )
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(1.0)
    started = time.process_time()
    await asyncio.sleep(seconds)
    spent = time.process_time() - started
    relay.stop()
    await task
    await publisher.stop()
    await engine.dispose()
    return spent / seconds


async def _consumer(kafka: KafkaSettings, *, seconds: float, ones: int) -> tuple[float, float]:
    """The consumer runner with a handler that does nothing, on a topic of 3 partitions:
    CPU per second idle, and CPU per record when records come one at a time (each produced
    once the one before is handled; the producer's CPU counts too, the same in every tree)."""
    topic = f"bench.kit.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [topic, f"{topic}.dlq"], partitions=3)
    publisher = Publisher(kafka, client_id="bench-kit-consumer")
    await publisher.start()
    handled = asyncio.Event()

    async def nothing(batch: list[Inbound]) -> list[Rejection]:
        handled.set()
        return []

    runner = ConsumerRunner(
        settings=kafka, group_id=topic, topics=[topic], handler=nothing, publisher=publisher
    )
    task = asyncio.create_task(runner.run())
    events = _events(ones + 1, uuid.uuid4().hex[:8])

    async def one(event: ResponseReceived) -> None:
        message = encode(event, source="bench", time=NOW)
        handled.clear()
        await publisher.send_many(
            [Outgoing(topic, message.key, message.value, list(message.headers))]
        )
        # A bound, so that a lost record fails the run instead of hanging it.
        await asyncio.wait_for(handled.wait(), timeout=60)

    try:
        await asyncio.wait_for(runner.ready.wait(), timeout=120)
        await one(events[0])
        await asyncio.sleep(1.0)
        started = time.process_time()
        await asyncio.sleep(seconds)
        idle = (time.process_time() - started) / seconds
        started = time.process_time()
        for event in events[1:]:
            await one(event)
        per_record = (time.process_time() - started) / ones
    finally:
        runner.stop()
        await task
        await publisher.stop()
    return idle, per_record


def _url_via(url: str, port: int) -> str:
    return make_url(url).set(port=port).render_as_string(hide_password=False)


async def _main(args: argparse.Namespace, url: str, kafka: KafkaSettings) -> None:
    await ensure_topics(kafka, ALL_TOPICS, partitions=3)
    if args.only != "consumer":
        await _batches_and_idle(args, url, kafka)
    if args.only == "batches":
        return
    consumer = [
        await _consumer(kafka, seconds=args.idle, ones=args.records) for _ in range(args.rounds)
    ]
    print(
        f"consumer runner (3 partitions, a handler that does nothing; load "
        f"{os.getloadavg()[0]:.2f}): idle "
        f"{statistics.median(c[0] for c in consumer) * 1e3:.2f} ms of CPU per second; "
        f"records one at a time {statistics.median(c[1] for c in consumer) * 1e6:,.0f} µs "
        "of CPU per record, producing included"
    )


async def _batches_and_idle(args: argparse.Namespace, url: str, kafka: KafkaSettings) -> None:
    await _setup(url)
    plan = [(1, args.ones), (500, args.fives)]
    # Round trips: one pass per size through the counting proxy (not timed).
    trips: dict[int, dict[str, float]] = {}
    port = make_url(url).port or 5432
    for size, _ in plan:
        counter = _Counter()
        async with _counting_proxy(port, counter) as proxy_port:
            trips[size] = await _batches(
                _url_via(url, proxy_port), kafka, size=size, count=20, counter=counter
            )
    cpu: dict[int, list[dict[str, float]]] = {size: [] for size, _ in plan}
    loads = []
    for _ in range(args.rounds):
        for size, count in plan:
            loads.append(os.getloadavg()[0])
            cpu[size].append(await _batches(url, kafka, size=size, count=count, counter=None))
    idle = [await _idle(url, kafka, args.idle) for _ in range(args.rounds)]
    print(f"load average {min(loads):.2f}–{max(loads):.2f}; medians of {args.rounds} rounds")
    for size, count in plan:
        runs = cpu[size]
        t = statistics.median(r["transaction"] for r in runs) * 1e6
        p = statistics.median(r["relay"] for r in runs) * 1e6
        every = ", ".join(f"{(r['transaction'] + r['relay']) * 1e6:,.0f}" for r in runs)
        wal = ", ".join(f"{r['wal']:,.0f}" for r in runs)
        print(
            f"batches of {size:>3} ({count:,}): {t + p:8,.0f} µs of CPU per batch "
            f"({(t + p) / size:6.1f} per event): transaction {t:,.0f}, relay {p:,.0f} "
            f"[rounds: {every}]; SQLAlchemy statements {runs[0]['statements']:.1f}, "
            f"PostgreSQL round trips {trips[size]['round_trips']:.1f} per batch; "
            f"WAL {statistics.median(r['wal'] for r in runs):,.0f} bytes per event "
            f"[rounds: {wal}]"
        )
    print(f"idle relay: {statistics.median(idle) * 1e3:.2f} ms of CPU per second")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ones", type=int, default=2000, help="batches of 1")
    parser.add_argument("--fives", type=int, default=40, help="batches of 500")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle relay")
    parser.add_argument("--records", type=int, default=300, help="records one at a time")
    parser.add_argument(
        "--outbox-headers",
        choices=["json", "compact"],
        default="compact",
        help="how outbox rows store headers (trees before issue #20's fifth session: JSON)",
    )
    parser.add_argument(
        "--only",
        choices=["consumer", "batches"],
        help="the consumer runner's part only, or the batches and the idle relay only",
    )
    args = parser.parse_args()
    if hasattr(outbox, "use_headers"):
        outbox.use_headers(OUTBOX, args.outbox_headers)
    tmp = Path(tempfile.mkdtemp(prefix="npsloop-bench-kit-"))
    broker = new_broker("tansu", tmp)
    postgres = EmbeddedPostgres(data_dir=tmp / "pg", port=free_port(), durable=False)
    broker.start()
    try:
        postgres.start()
        try:
            kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
            uvloop.run(_main(args, postgres.url, kafka))
        finally:
            postgres.stop()
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
