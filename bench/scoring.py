"""Scoring on this machine: events per second through the service, and how fast its figures
answer over a year of data.

1. Throughput. Starts the embedded broker and PostgreSQL and scoring as a process; once it is
   ready, puts N `ResponseReceived` events on nps.responses.v1 (3 partitions; comments in
   several languages, customer attributes, one in ten an update of an earlier response) and
   times how long scoring takes to score them all (responses stored, transitions and themes
   found, figures moved, `ResponseScored` queued) and to publish every `ResponseScored`.
2. Handler (`--only handler`). In process, no consumer: the same events encoded as the broker
   would deliver them, then in batches of `--batch` (default 500) decoded, handed to
   scoring's consumer handler (one transaction each) and published by the outbox relay to the
   broker, with the CPU time of each stage (`time.process_time`): decode, event ids, inbox,
   the stored responses, themes, the figures, the outbox insert, the commit, the relay.
3. Figures. In a second database, COPYs R responses spread over a year (default 1,000,000),
   runs `nps-scoring rebuild-figures` over them (timed: the cost of a rebuild), starts scoring
   on that database and times each kind of `GET` a dashboard makes.

    .venv/bin/python bench/scoring.py --events 20000 --responses 1000000
    .venv/bin/python bench/scoring.py --only throughput --broker apache-kafka
    .venv/bin/python bench/scoring.py --only handler --events 10000 --batch 500

`DATABASE_OUTBOX_HEADERS=compact` in the environment turns the outbox's compact headers on
in both parts (the service's default is JSON; docs/operations.md).
"""

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

from nps_events import Customer, ResponseReceived, Topic, decode, encode
from nps_events.topics import ALL_TOPICS
from nps_kit import db as kit_db
from nps_kit import outbox as kit_outbox
from nps_kit.clock import SystemClock
from nps_kit.db import create_engine, session_factory
from nps_kit.devstack import EmbeddedPostgres, free_port, new_broker, scratch_dir
from nps_kit.devstack.idp import ServedIdentityProvider
from nps_kit.devstack.services import ServiceProcess, migrate
from nps_kit.messaging import Inbound, Publisher, ensure_topics
from nps_kit.outbox import OutboxRelay
from nps_kit.settings import KafkaSettings
from nps_scoring.adapters import tables
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.adapters.taxonomy import load_taxonomy
from nps_scoring.config import ScoringSettings
from nps_scoring.domain.segments import segment_of
from nps_scoring.domain.themes import KeywordThemeClassifier
from nps_scoring.entrypoints.consumer import responses_handler
from nps_scoring.handlers import scoring as scoring_handler

COMMENTS = [
    None,
    None,
    "Delivery was late and the parcel arrived damaged",
    "Way too expensive for what it does",
    "Support never answered my emails",
    "The app is not slow, but it crashes every day",
    "Great product, easy to use",
    "La livraison était très lente",
    "El soporte no respondió y es muy caro",
    "O suporte é ótimo",
    "Die App stürzt ständig ab",
    "Setup took far too long",
    "Nothing to add",
]
THEMES = ["delivery", "price", "support", "product_quality", "ease_of_use", "onboarding",
          "performance", "reliability"]  # fmt: skip
YEAR_END = datetime(2026, 11, 24, tzinfo=UTC)


def make_events(n: int, run: str) -> list[ResponseReceived]:
    rng = random.Random(6)
    events: list[ResponseReceived] = []
    for i in range(n):
        if events and rng.random() < 0.1:
            earlier = rng.choice(events)  # an update: a comment added, a score changed
            events.append(
                earlier.model_copy(
                    update={"score": rng.randint(0, 10), "comment": rng.choice(COMMENTS[2:])}
                )
            )
            continue
        customer = f"{run}-c{rng.randint(0, n // 3)}"
        at = YEAR_END - timedelta(minutes=rng.randint(0, 60 * 24 * 90))
        provider_id = f"{run}-r{i}"
        events.append(
            ResponseReceived(
                response_id=ResponseReceived.derive_response_id("bench", provider_id),
                source="bench",
                provider_response_id=provider_id,
                survey_id=f"survey-{rng.randint(1, 5)}",
                customer=Customer(
                    id=customer,
                    attributes={"plan": rng.choice(["free", "pro", "enterprise"])},
                ),
                score=rng.randint(0, 10),
                comment=rng.choice(COMMENTS),
                responded_at=at,
                received_at=at,
            )
        )
    return events


async def produce(bootstrap: str, events: list[ResponseReceived]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for event in events:
            m = encode(event, source="/ingest/sources/bench", time=event.received_at)
            futures.append(
                await producer.send(
                    Topic.RESPONSES.value, m.value, key=m.key, headers=list(m.headers)
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def wait_scored(dsn: str, distinct: int, started: float) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    reached: dict[str, float] = {}
    try:
        while len(reached) < 2:
            if time.perf_counter() - started > 900:
                raise TimeoutError(f"not done within 15 minutes: {reached}")
            processed = await conn.fetchval("SELECT count(*) FROM scoring.inbox")
            if "scored" not in reached and processed >= distinct:
                reached["scored"] = time.perf_counter() - started
            if "scored" in reached and not await conn.fetchval(
                "SELECT count(*) FROM scoring.outbox"
            ):
                reached["published"] = time.perf_counter() - started
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return reached


async def copy_year(dsn: str, n: int) -> None:
    """n responses over the year before YEAR_END, straight into scoring.responses."""
    rng = random.Random(7)
    rows = []
    for i in range(n):
        score = rng.randint(0, 10)
        at = YEAR_END - timedelta(seconds=rng.randint(0, 365 * 24 * 3600))
        comment = rng.random() < 0.6
        themes = rng.sample(THEMES, rng.choice([0, 1, 1, 1, 2])) if comment else None
        rows.append(
            (
                uuid.UUID(int=i + 1),
                rng.choice(["web", "app", "email", "shop"]),
                f"survey-{rng.randint(1, 10)}",
                f"c{rng.randint(0, n // 4)}",
                score,
                segment_of(score).value,
                "…" if comment else None,
                at,
                at,
                1,
                None if themes is None else sorted(themes),
                json.dumps(
                    {
                        "plan": rng.choice(["free", "pro", "enterprise"]),
                        "region": rng.choice(["eu", "us", "apac", "latam"]),
                    }
                ),
            )
        )
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "responses",
            schema_name="scoring",
            records=rows,
            columns=[
                "response_id",
                "source",
                "survey_id",
                "customer_id",
                "score",
                "segment",
                "comment",
                "responded_at",
                "scored_at",
                "revision",
                "themes",
                "attributes",
            ],
        )
        await conn.execute("ANALYZE scoring.responses")
    finally:
        await conn.close()


QUERIES = {
    "GET /v1/nps (monthly, all time)": ("/v1/nps", {}),
    "GET /v1/nps (daily, one year)": (
        "/v1/nps",
        {"grain": "day", "from": "2025-11-25", "to": "2026-11-24"},
    ),
    "GET /v1/nps (weekly, by survey)": ("/v1/nps", {"grain": "week", "group_by": "survey"}),
    "GET /v1/nps (weekly, plan=pro)": ("/v1/nps", {"grain": "week", "attribute": "plan:pro"}),
    "GET /v1/nps/compare (two months)": (
        "/v1/nps/compare",
        {
            "a_from": "2026-09-01",
            "a_to": "2026-09-30",
            "b_from": "2026-10-01",
            "b_to": "2026-10-31",
        },
    ),
    "GET /v1/themes (monthly, one year)": ("/v1/themes", {"from": "2025-11-25"}),
    # Two dimensions: counted from the responses (a scan), not read from the figures.
    "GET /v1/nps (source=web, by theme)": (
        "/v1/nps",
        {"grain": "month", "source": "web", "group_by": "theme"},
    ),
    "GET /v1/nps (plan=pro, by region, 1 month)": (
        "/v1/nps",
        {
            "attribute": "plan:pro",
            "group_by": "attribute:region",
            "from": "2026-10-01",
            "to": "2026-10-31",
        },
    ),
}


def time_queries(url: str, repeat: int, token: str) -> None:
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=30, headers=bearer) as client:
        for name, (path, params) in QUERIES.items():
            client.get(path, params=params).raise_for_status()  # warm up
            latencies = []
            # Scans are timed 10 times: each reads a year of responses.
            for _ in range(repeat if "by theme" not in name and "region" not in name else 10):
                started = time.perf_counter()
                client.get(path, params=params).raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
            q = statistics.quantiles(latencies, n=100)
            print(f"  {name:<38} p50 {q[49]:6.1f} ms   p99 {q[98]:6.1f} ms")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process `pid` has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def handled_batches(metrics_url: str) -> int:
    """How many batches of nps.responses.v1 scoring's consumer has handled (its metrics)."""
    for line in httpx.get(metrics_url, timeout=5).text.splitlines():
        if line.startswith("npsloop_handler_duration_seconds_count") and "nps.responses.v1" in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def throughput(tmp: Path, env: dict[str, str], dsn: str, bootstrap: str, n: int) -> None:
    """Scoring running and ready; then n events arrive as fast as the broker takes them.
    Besides the rate, the scoring process's own CPU per event (user + system, from ready until
    every `ResponseScored` is published): on a shared machine the rate swings with the others'
    load, the CPU per event much less."""
    port = free_port()
    scoring = ServiceProcess(
        name="scoring", port=port, env={**env, "SCORING_PORT": str(port)},
        log_path=tmp / "scoring.log",
    )  # fmt: skip
    scoring.start()
    try:
        scoring.wait_ready(timeout=90)
        events = make_events(n, uuid.uuid4().hex[:6])
        distinct = len({e.event_id() for e in events})
        assert scoring.process is not None
        load = os.getloadavg()[0]
        cpu_before = cpu_seconds(scoring.process.pid)
        started = time.perf_counter()
        asyncio.run(produce(bootstrap, events))
        produced = time.perf_counter() - started
        stages = asyncio.run(wait_scored(dsn, distinct, started))
        cpu = cpu_seconds(scoring.process.pid) - cpu_before
        batches = handled_batches(scoring.metrics_url)
    finally:
        scoring.stop()
    print(
        f"events:    {n:,} ({distinct:,} distinct; ~10% updates), on the topic in {produced:.1f} s"
    )
    print(
        f"scored:    all after {stages['scored']:.1f} s → {distinct / stages['scored']:,.0f} events/s"
    )
    print(f"published: every ResponseScored after {stages['published']:.1f} s")
    print(
        f"batches:   {batches:,} handled, {distinct / max(batches, 1):,.0f} events each on average"
    )
    print(
        f"scoring's CPU: {cpu:.2f} s → {cpu / distinct * 1000:.3f} ms per event "
        f"(load average {load:.2f} at the start)"
    )


class Stages:
    """CPU seconds (`time.process_time`) and wall seconds (`time.perf_counter`) spent inside
    named calls; a call inside another counts in the inner one only. A name ending in "in"
    takes its caller's: "SQL in" inside "claim" counts as "SQL in claim"."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self._stack: list[tuple[str, float, float]] = []

    def clear(self) -> None:
        self.cpu.clear()
        self.wall.clear()

    def _enter(self, name: str) -> str:
        if name.endswith(" in"):
            name = f"{name} {self._stack[-1][0] if self._stack else 'other'}"
        self._stack.append((name, 0.0, 0.0))
        return name

    def _leave(self, name: str, started: tuple[float, float]) -> None:
        spent = time.process_time() - started[0]
        waited = time.perf_counter() - started[1]
        _, inner, inner_wall = self._stack.pop()
        self.cpu[name] = self.cpu.get(name, 0.0) + spent - inner
        self.wall[name] = self.wall.get(name, 0.0) + waited - inner_wall
        if self._stack:
            outer, its_inner, its_inner_wall = self._stack[-1]
            self._stack[-1] = (outer, its_inner + spent, its_inner_wall + waited)

    def sync(self, name: str, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            named = self._enter(name)
            started = time.process_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._leave(named, started)

        return timed

    def coro(self, name: str, fn: Any) -> Any:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            named = self._enter(name)
            started = time.process_time(), time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self._leave(named, started)

        return timed


def handler(env: dict[str, str], n: int, batch: int) -> None:
    """Scoring's consumer handler and outbox relay in this process, over batches of `batch`."""
    os.environ.update(env)
    asyncio.run(_handler(n, batch))


def _instrument(stages: Stages) -> None:
    """Count the CPU of each stage of the consumer's handler and the relay in `stages`."""
    repo = ScoringRepository
    for name in ("claim", "known", "store", "publish_later"):
        setattr(repo, name, stages.coro(name, getattr(repo, name)))
    ResponseReceived.derive_event_id = stages.sync(  # type: ignore[method-assign]
        "event ids", ResponseReceived.derive_event_id
    )
    # SQL statements (SQLAlchemy and asyncpg, the round trip's own CPU) count apart from
    # the repository method that runs them; so do the commit and the broker's sends.
    AsyncSession.execute = stages.coro("SQL in", AsyncSession.execute)  # type: ignore[method-assign]
    AsyncSession.scalar = stages.coro("SQL in", AsyncSession.scalar)  # type: ignore[method-assign]
    AsyncSessionTransaction.__aexit__ = stages.coro(  # type: ignore[method-assign]
        "commit", AsyncSessionTransaction.__aexit__
    )
    # Since the kit's unit of work begins its session when first used, it commits with the
    # session's `commit`, or, when every statement ran on the driver connection, without it.
    AsyncSession.commit = stages.coro("commit", AsyncSession.commit)  # type: ignore[method-assign]
    if hasattr(kit_db, "_commit_driver"):
        kit_db._commit_driver = stages.coro("commit", kit_db._commit_driver)
    Publisher.send_many = stages.coro("broker sends", Publisher.send_many)  # type: ignore[method-assign]
    # The figures' deltas: `count` per response (trees before issue #20's fifth session), or
    # `count_days` per response and `rolled_up` once per batch.
    for name in ("count", "count_days", "rolled_up"):
        if hasattr(scoring_handler, name):
            setattr(
                scoring_handler,
                name,
                stages.sync("figures' deltas", getattr(scoring_handler, name)),
            )


def _records(n: int) -> list[ConsumerRecord[bytes, bytes]]:
    records = []
    for offset, event in enumerate(make_events(n, uuid.uuid4().hex[:6])):
        m = encode(event, source="/ingest/sources/bench", time=event.received_at)
        records.append(
            ConsumerRecord(
                Topic.RESPONSES.value, 0, offset, 0, 0, m.key, m.value, None,
                len(m.key), len(m.value), tuple(m.headers),
            )
        )  # fmt: skip
    return records


def _inbound(records: list[ConsumerRecord[bytes, bytes]]) -> list[Inbound]:
    return [Inbound(r, decode(r.headers, r.value)) for r in records]


async def _handler(n: int, batch: int) -> None:
    settings = ScoringSettings()
    if hasattr(kit_outbox, "use_headers"):  # as the service's Infrastructure.with_outbox does
        kit_outbox.use_headers(tables.outbox, settings.database.outbox_headers)
    stages = Stages()
    _instrument(stages)
    classifier = KeywordThemeClassifier(load_taxonomy(settings.themes_file))
    classifier.themes_of = stages.sync("themes", classifier.themes_of)  # type: ignore[method-assign]
    engine = create_engine(settings.database, application_name="bench-scoring-handler")
    sessions = session_factory(engine)
    publisher = Publisher(settings.kafka, client_id="bench-scoring-handler")
    await publisher.start()
    relay = OutboxRelay(sessions=sessions, table=tables.outbox, send_many=publisher.send_many)
    handle = stages.coro(
        "handler",
        responses_handler(
            sessions=sessions, relay=relay, clock=SystemClock(), classifier=classifier,
            timezone=settings.timezone,
        ),
    )  # fmt: skip
    publish = stages.coro("relay", relay.publish_pending)
    decode_batch = stages.sync("decode", _inbound)
    records = _records(n)
    try:
        # A first batch warms up the connection pool and SQLAlchemy's statement cache.
        await handle(_inbound(records[:batch]))
        while await relay.publish_pending():
            pass
        # The events this bench holds (all of them, encoded) out of the collector's reach, as
        # the service's own start-up objects are (`nps_kit.service.serve` freezes them): else
        # each full collection walks them, and its cost lands on whichever stage set it off.
        gc.collect()
        gc.freeze()
        stages.clear()
        load = os.getloadavg()[0]
        started, cpu_started = time.perf_counter(), time.process_time()
        for i in range(batch, len(records), batch):
            await handle(decode_batch(records[i : i + batch]))
            while await publish():
                pass
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        await publisher.stop()
        await engine.dispose()
    done = len(records) - batch
    print(f"handler: {done:,} events in batches of {batch}, in process (load average {load:.2f})")
    print(f"  {done / wall:,.0f} events/s; CPU {cpu * 1000 / done:.3f} ms per event")
    print(f"  {'stage':<24} {'CPU per event':>15} {'':>7}   wall per event (the wait beside it)")
    for name, spent in sorted(stages.cpu.items(), key=lambda kv: -kv[1]):
        waited = stages.wall.get(name, 0.0)
        print(
            f"  {name:<24} {spent * 1e6 / done:12.1f} µs ({spent / cpu:5.1%})"
            f"   {waited * 1e6 / done:8.1f} µs ({waited / wall:5.1%})"
        )


def figures(
    tmp: Path, env: dict[str, str], postgres_url: str, n: int, repeat: int, *, token: str
) -> None:
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    year_db = "bench_year"
    asyncio.run(_execute(dsn, f"CREATE DATABASE {year_db}"))
    year_url = postgres_url.rsplit("/", 1)[0] + f"/{year_db}"
    year_env = {**env, "DATABASE_URL": year_url}
    migrate("scoring", year_env)
    year_dsn = year_url.replace("postgresql+asyncpg://", "postgresql://")
    started = time.perf_counter()
    asyncio.run(copy_year(year_dsn, n))
    print(f"setup:     {n:,} responses COPYed in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "nps_scoring", "rebuild-figures"],
        env={**os.environ, **year_env}, check=True,
    )  # fmt: skip
    rebuilt = time.perf_counter() - started
    rows = asyncio.run(_count(year_dsn))
    print(
        f"rebuild:   figures of {n:,} responses in {rebuilt:.1f} s "
        f"({n / rebuilt:,.0f} responses/s; {rows:,} figure rows)"
    )
    port = free_port()
    scoring = ServiceProcess(
        name="scoring", port=port, env={**year_env, "SCORING_PORT": str(port)},
        log_path=tmp / "scoring-year.log",
    )  # fmt: skip
    scoring.start()
    try:
        scoring.wait_ready(timeout=90)
        print(f"latency over a year of {n:,} responses ({repeat} sequential requests each):")
        time_queries(scoring.url, repeat, token)
    finally:
        scoring.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500, help="the handler part's batch size")
    parser.add_argument(
        "--only", choices=["throughput", "handler", "figures"], help="run one part only"
    )
    parser.add_argument("--broker", choices=["tansu", "apache-kafka"], default="tansu")
    args = parser.parse_args()

    tmp = scratch_dir("npsloop-bench-scoring-")
    broker = new_broker(args.broker, tmp)
    postgres = EmbeddedPostgres(data_dir=tmp / "pg", port=free_port())
    idp = ServedIdentityProvider(key_file=tmp / "idp" / "key.pem", port=free_port())
    broker.start()
    idp.start()
    try:
        postgres.start()
        idempotence = args.broker == "apache-kafka"
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers, enable_idempotence=idempotence
        )
        asyncio.run(ensure_topics(kafka, ALL_TOPICS, partitions=3))
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "KAFKA_ENABLE_IDEMPOTENCE": str(idempotence).lower(),
            "DATABASE_URL": postgres.url,
            "AUTH_ISSUER": idp.issuer,
            "LOG_LEVEL": "WARNING",
        }
        migrate("scoring", env)
        dsn = postgres.url.replace("postgresql+asyncpg://", "postgresql://")
        if args.only in (None, "throughput"):
            throughput(tmp, env, dsn, broker.bootstrap_servers, args.events)
        if args.only == "handler":
            handler(env, args.events, args.batch)
        if args.only in (None, "figures"):
            token = idp.provider.person_token("analyst@example.com")  # a viewer
            figures(tmp, env, postgres.url, args.responses, args.repeat, token=token)
    finally:
        idp.stop()
        postgres.stop()
        broker.stop()


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM scoring.figures"))
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
