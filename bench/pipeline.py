"""End-to-end throughput and the time to the first action, on this machine.

Starts the embedded broker, PostgreSQL and SMTP sink and the four services as processes,
posts detractor responses to ingest, and measures
- ingest: accepted requests per second and latency percentiles (202 = acknowledged by the broker);
- the pipeline: seconds until every response is scored, has its case, and has its email in
  the SMTP sink (`.eml` files, the owners' assignment notices included), and until every
  customer has their acknowledgement (each email matched to its response by the customer
  address the bench chose), and until every detractor's ticket is in the helpdesk (the tests'
  fake Zendesk, in a process of its own: the default policy's third action; `--helpdesk none`
  leaves notify without one, as every run before the fifth session on issue #20 did, and each
  ticket action then fails at once, for want of a channel);
- the first action: from each post to its acknowledgement email in the sink (the file's mtime),
  and to its case's commit in followup's table, as percentiles;
- each consumer's batches over the run, from the services' own Prometheus metrics
  (`npsloop_handler_duration_seconds`, `npsloop_events_consumed_total`): how many, their mean
  size, their mean time and the share of the run the handler was busy — a stage that is far
  behind while its handler is busy a small share of the run waits between batches;
- CPU per response of each process (ingest, scoring, followup, notify, console, PostgreSQL
  with every backend but the watcher's, the broker, the SMTP sink, the fake helpdesk, the
  bench itself: client
  and watcher, and the watcher's PostgreSQL backend on its own line), from /proc over the
  whole run, and each service's resident memory idle and after the run.

Each stage's time comes from its own records, read once after the run: the commit time of
the n-th row in scoring.responses, followup.cases and notify.dispatches (`sent`; and of the
tickets among them: "ticketed") — the bench
runs PostgreSQL with `track_commit_timestamp=on` — and the mtime of the n-th message file. The
watcher only tells when the run is over (it looks every WATCH seconds), so its pace changes
no figure but the run's wall time, by up to WATCH. `--pg-statements` loads pg_stat_statements
and prints where PostgreSQL's time went, per response (statements, WAL, commits).

The SMTP sink runs in a process of its own: Postfix's `smtp-sink` when installed (0.1–0.7 ms of
CPU per message), else aiosmtpd (~0.6–0.8 ms; bench/sinks.py). `--sink in-process` puts
aiosmtpd back in a thread of the bench, as before the third session on issue #20: it then
shares the bench's GIL, and each SMTP answer waits on the bench's client and watcher.

Two modes:

    .venv/bin/python bench/pipeline.py --responses 2000 --concurrency 32   # as fast as it goes
    .venv/bin/python bench/pipeline.py --rate 100 --duration 60            # paced: 6,000 at 100/s
    .venv/bin/python bench/pipeline.py --broker apache-kafka     # one Apache Kafka node instead

The paced mode sends the i-th response at i / rate seconds (open loop: a late answer does not
delay the next post) over `--concurrency` connections, and reports how late the client
itself was against that schedule: if its lag grows, the bench measures itself.

`--broker apache-kafka` runs the broker as the dev stack's `NPSLOOP_BROKER=apache-kafka` does
(one KRaft node, idempotent producers; Java and Maven) instead of the embedded Tansu.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from sinks import default_sink, start_fake_provider, start_mail_sink
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from nps_kit.devstack import EmbeddedPostgres, MailSink, free_port, new_broker, scratch_dir
from nps_kit.devstack.idp import ServedIdentityProvider
from nps_kit.devstack.process import stop_process
from nps_kit.devstack.services import SERVICES, ServiceProcess, prepare, start_all

TOKEN = "bench-token"
TICK = os.sysconf("SC_CLK_TCK")
WATCH = 0.5  # seconds between the watcher's looks: only how soon it sees the run is over


# --- what each process costs, from /proc --------------------------------------------------


def _stat(pid: int) -> list[str]:
    # "pid (comm) state …": comm may hold spaces or parentheses, so split at the last ')'.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """utime + stime of `pid`; with its children: those it has reaped (cutime + cstime) and
    those still running (PostgreSQL's backends: a backend that exits during the run is
    counted in the postmaster's cutime)."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    child = _stat(int(entry.name))
                except (FileNotFoundError, ProcessLookupError):
                    continue
                if int(child[1]) == pid:
                    ticks += int(child[11]) + int(child[12])
    return ticks / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


WATCHER_BACKEND = "watcher's backend"
NOT_THE_SYSTEM = ("bench", "mail sink", "helpdesk fake", WATCHER_BACKEND)


@dataclass
class Processes:
    """The pids to account: the services, the broker, PostgreSQL (postmaster + backends),
    and this process (the client and the watcher; the SMTP sink too with `--sink-in-process`)."""

    pids: dict[str, int]
    postgres: int
    watcher_backend: int | None = None  # the bench's own PostgreSQL backend, once connected

    def cpu(self) -> dict[str, float]:
        out = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        postgres = cpu_seconds(self.postgres, with_children=True)
        if self.watcher_backend is not None:
            out[WATCHER_BACKEND] = cpu_seconds(self.watcher_backend)
            postgres -= out[WATCHER_BACKEND]
        out["postgres"] = postgres
        return out

    def rss(self) -> dict[str, float]:
        return {name: rss_mb(pid) for name, pid in self.pids.items() if name not in NOT_THE_SYSTEM}


# --- the client ---------------------------------------------------------------------------


def _request(host: str, run: str, i: int, answered: str) -> bytes:
    body = json.dumps(
        {
            "response_id": f"{run}-{i}",
            "survey_id": "bench",
            "customer": {"id": f"{run}-c{i}", "email": f"{run}-c{i}@example.com"},
            "score": i % 7,
            "comment": "bench",
            "responded_at": answered,
        }
    ).encode()
    return (
        f"POST /v1/responses HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass
class Posted:
    latencies: list[float] = field(default_factory=list)
    sent_at: dict[int, float] = field(default_factory=dict)  # wall clock, per response
    lag: list[float] = field(default_factory=list)  # paced: how late each post left


async def post_all(
    host: str,
    port: int,
    n: int,
    concurrency: int,
    run: str,
    *,
    rate: float | None = None,
    posted: Posted | None = None,
) -> Posted:
    """POST n responses over `concurrency` keep-alive connections: as fast as they answer,
    or (`rate`) the i-th at i / rate seconds. A minimal HTTP/1.1 client: httpx's async pool
    tops out near 150 req/s here and would measure itself, not ingest. `posted` fills as
    the posts leave (the watcher reads it during a paced run)."""
    posted = posted if posted is not None else Posted()
    # Answered now: followup does not act on answers older than its window.
    answered = datetime.now(UTC).isoformat()
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    if rate is None:
        for i in range(n):
            queue.put_nowait((i, 0.0))

    async def schedule() -> None:
        assert rate is not None
        start = loop.time()
        for i in range(n):
            due = start + i / rate
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            queue.put_nowait((i, due))

    async def sender(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                if rate is None and queue.empty():
                    return
                i, due = await queue.get()
                if i < 0:
                    return
                request = _request(host, run, i, answered)
                started = time.perf_counter()
                if rate is not None:
                    posted.lag.append(loop.time() - due)
                posted.sent_at[i] = time.time()
                writer.write(request)
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                posted.latencies.append(time.perf_counter() - started)
                if b" 202 " not in status:
                    raise RuntimeError(f"ingest answered {status!r}")
        finally:
            writer.close()

    # Every connection open before the first post, so that the schedule starts on time.
    connections = await asyncio.gather(
        *(asyncio.open_connection(host, port) for _ in range(concurrency))
    )
    senders = [asyncio.create_task(sender(*connection)) for connection in connections]
    if rate is not None:
        await schedule()
        for _ in senders:
            queue.put_nowait((-1, 0.0))
    await asyncio.gather(*senders)
    return posted


# --- the watcher --------------------------------------------------------------------------


@dataclass
class Watched:
    stages: dict[str, float]  # seconds after the first post
    acknowledged: dict[int, float]  # response → wall clock its acknowledgement reached the sink
    visible: dict[int, float]  # response → wall clock its case was committed (paced mode)
    unstamped: int  # rows whose commit time PostgreSQL no longer knows (frozen): 0 expected


class Watcher:
    """Tells when the run is over, then reads when each stage was reached from the stages'
    own records: the commit time of each row in scoring.responses, followup.cases and
    notify.dispatches (`sent`) — PostgreSQL runs with `track_commit_timestamp` — and the mtime
    of each message file in the sink. The times are as precise as those records (a commit's
    timestamp is taken just before its WAL flush; a file's mtime is its last byte), whatever
    the watcher's pace: it only looks every WATCH seconds at the sink's new files (`os.listdir`
    against the names already read, each file read once it holds its `To:`) and, once every
    email is there, counts the three tables' rows.

    Before the fourth session on issue #20 it counted the three tables and scanned the whole
    sink every 0.1 s and took the stage times from when it saw them: 0.75–0.83 ms of CPU per
    response in the bench, and its backend's in "postgres"."""

    def __init__(self, database_url: str, mail_dir: Path, run: str, *, tickets: bool) -> None:
        self.database_url = database_url
        self.tickets = tickets  # each journey's ticket is sent too (a helpdesk is there)
        self.run = run
        self.mail_dir = mail_dir
        self.customer = re.compile(rb"^To:[^\n]*?" + re.escape(run.encode()) + rb"-c(\d+)@", re.M)
        self.files: dict[str, int | None] = {}  # file → its customer's response (None: staff)
        self.acknowledgements = 0
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None
        self.backend_pid: int | None = None

    async def open(self) -> None:
        """Connect before the first post: SQLAlchemy's first connection costs a few hundred
        ms of CPU, which would otherwise hold the client's event loop as the schedule starts.
        The connection stays open for the run: its backend's CPU is reported on its own."""
        self._engine = create_async_engine(self.database_url)
        self._conn = await self._engine.connect()
        self.backend_pid = await self._conn.scalar(text("SELECT pg_backend_pid()"))
        await self._conn.commit()

    @property
    def connection(self) -> AsyncConnection:
        assert self._conn is not None, "open() first"
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        if self._engine is not None:
            await self._engine.dispose()

    def read_mail(self) -> None:
        """Each new message file: aiosmtpd's `*.eml` (written whole, then renamed) or
        smtp-sink's (written as the message comes: a file without a customer's `To:` yet is
        read again at the next look, until it is a few seconds old)."""
        now = time.time()
        for name in os.listdir(self.mail_dir):
            if name in self.files or name.endswith(".tmp"):
                continue
            path = self.mail_dir / name
            with open(path, "rb") as f:
                head = f.read(8192)
            match = self.customer.search(head)
            if match is None and now - path.stat().st_mtime < 3:
                continue
            self.files[name] = None if match is None else int(match.group(1))
            if match is not None:
                self.acknowledgements += 1

    async def watch(self, n: int, started: float, sending: asyncio.Task[Posted] | None) -> None:
        """Returns once every response is scored, has its case, its dispatch `sent`, its
        ticket in the helpdesk (when there is one), and its email and acknowledgement in the
        sink (and, paced, every post has left)."""
        conn = self._conn
        assert conn is not None, "open() first"
        while True:
            if time.perf_counter() - started > 1800:
                raise TimeoutError(f"not done within 30 minutes: {len(self.files)} emails")
            self.read_mail()
            if (
                len(self.files) >= n
                and self.acknowledgements >= n
                and (sending is None or sending.done())
            ):
                tickets = (
                    "(SELECT count(*) FROM notify.dispatches WHERE channel = 'ticket' "
                    "AND state = 'sent')"
                    if self.tickets
                    else "CAST(:n AS bigint)"
                )
                counts = (
                    await conn.execute(
                        text(
                            "SELECT (SELECT count(*) FROM scoring.responses), "  # noqa: S608 - constants
                            "(SELECT count(*) FROM followup.cases), "
                            "(SELECT count(*) FROM notify.dispatches WHERE state = 'sent'), "
                            f"{tickets}"
                        ),
                        {"n": n},
                    )
                ).one()
                await conn.commit()
                if min(counts) >= n:
                    return
            await asyncio.sleep(WATCH)

    async def results(self, n: int, started_wall: float) -> Watched:
        """The stage times, from the records (read once, after the run's CPU is taken)."""
        conn = self._conn
        assert conn is not None, "open() first"
        stamped = "extract(epoch FROM pg_xact_commit_timestamp(xmin))"
        tables = {
            "scored": "scoring.responses",
            "cases opened": "followup.cases",
            "dispatched": "notify.dispatches WHERE state = 'sent'",
        }
        if self.tickets:
            tables["ticketed"] = "notify.dispatches WHERE channel = 'ticket' AND state = 'sent'"
        stages: dict[str, float] = {}
        unstamped = 0
        for stage, table in tables.items():
            at, missing = (
                await conn.execute(
                    text(
                        f"SELECT (SELECT {stamped} FROM {table} ORDER BY 1 OFFSET :k LIMIT 1), "  # noqa: S608
                        f"(SELECT count(*) FROM {table}{' AND' if 'WHERE' in table else ' WHERE'} "
                        "pg_xact_commit_timestamp(xmin) IS NULL)"
                    ),
                    {"k": n - 1},
                )
            ).one()
            unstamped += missing
            stages[stage] = float(at) - started_wall
        visible: dict[int, float] = {}
        rows = await conn.execute(text(f"SELECT customer_id, {stamped} FROM followup.cases"))  # noqa: S608
        prefix = f"{self.run}-c"
        for customer_id, at in rows:
            if customer_id.startswith(prefix) and at is not None:
                visible[int(customer_id[len(prefix) :])] = float(at)
        await conn.commit()
        # Every file's last mtime, once: a file read while still being written had an early one.
        received = {name: (self.mail_dir / name).stat().st_mtime for name in self.files}
        emails = sorted(received.values())
        stages["emailed"] = emails[n - 1] - started_wall
        acknowledged: dict[int, float] = {}
        for name, i in self.files.items():
            if i is not None:
                acknowledged[i] = min(received[name], acknowledged.get(i, received[name]))
        stages["acknowledged"] = sorted(acknowledged.values())[n - 1] - started_wall
        return Watched(
            dict(sorted(stages.items(), key=lambda kv: kv[1])), acknowledged, visible, unstamped
        )


# --- PostgreSQL's statements (--pg-statements) ----------------------------------------------


class Statements:
    """What PostgreSQL spent its time on during the run, per journey: pg_stat_statements
    (loaded by `--pg-statements` only: it costs PostgreSQL some CPU of its own), the WAL
    written (`pg_current_wal_lsn()`, `pg_stat_wal`) and the commits (`pg_stat_database`).
    A statement's time is its execution's wall time in its backend (lock and I/O waits
    included), not its CPU."""

    SHOWN = 30

    def __init__(self) -> None:
        self._before: tuple[Any, ...] = ()

    async def start(self, conn: AsyncConnection) -> None:
        await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        await conn.execute(text("SELECT pg_stat_statements_reset()"))
        self._before = await self._totals(conn)
        await conn.commit()

    @staticmethod
    async def _totals(conn: AsyncConnection) -> tuple[Any, ...]:
        return tuple(
            (
                await conn.execute(
                    text(
                        "SELECT pg_current_wal_lsn(), w.wal_records, w.wal_fpi, w.wal_bytes, "
                        "d.xact_commit, d.xact_rollback "
                        "FROM pg_stat_wal w, pg_stat_database d "
                        "WHERE d.datname = current_database()"
                    )
                )
            ).one()
        )

    async def report(self, conn: AsyncConnection, n: int) -> list[str]:
        await conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        after = await self._totals(conn)
        lsn = await conn.scalar(
            text("SELECT pg_wal_lsn_diff(:a, :b)"), {"a": after[0], "b": self._before[0]}
        )
        records, fpi, wal_bytes, commits, rollbacks = (
            a - b for a, b in zip(after[1:], self._before[1:], strict=True)
        )
        rows = (
            await conn.execute(
                text(
                    "SELECT query, calls, total_exec_time, rows, wal_bytes "
                    "FROM pg_stat_statements ORDER BY total_exec_time DESC"
                )
            )
        ).all()
        # The kit's tables, each service's apart (pg_stat_statements merges a statement run on
        # tables of the same name in several schemas: PostgreSQL 18 jumbles a table by name).
        tables = (
            await conn.execute(
                text(
                    "SELECT schemaname || '.' || relname AS name, n_tup_ins, n_tup_del, "
                    "n_live_tup, n_dead_tup, autovacuum_count, "
                    "pg_relation_size(relid) AS heap, "
                    "pg_indexes_size(relid) AS indexes "
                    "FROM pg_stat_user_tables WHERE relname IN ('inbox', 'outbox') "
                    "ORDER BY relname, schemaname"
                )
            )
        ).all()
        await conn.commit()
        total_ms = sum(r.total_exec_time for r in rows)
        lines = [
            f"PostgreSQL, per response: {float(lsn) / n:,.0f} WAL bytes (LSN; pg_stat_wal: "
            f"{float(wal_bytes) / n:,.0f} bytes, {records / n:.1f} records, {fpi / n:.2f} "
            f"full pages), {commits / n:.2f} commits, {rollbacks / n:.2f} rollbacks, "
            f"{total_ms / n:.3f} ms in statements",
            f"  {'calls':>6} {'calls/resp':>10} {'total ms':>9} {'ms/resp':>8} {'rows/resp':>9} "
            f"{'WAL B/resp':>10}  statement",
        ]
        for r in rows[: self.SHOWN]:
            query = " ".join(r.query.split())
            lines.append(
                f"  {r.calls:6} {r.calls / n:10.3f} {r.total_exec_time:9.0f} {r.total_exec_time / n:8.4f} "
                f"{r.rows / n:9.2f} {float(r.wal_bytes) / n:10.0f}  {query[:150]}"
            )
        lines.append(
            "  the kit's tables at the end: inserted/resp, deleted/resp, live, dead, "
            "autovacuums, heap kB, indexes kB"
        )
        lines.extend(
            f"    {t.name:18} {t.n_tup_ins / n:6.2f} {t.n_tup_del / n:6.2f} {t.n_live_tup:8} "
            f"{t.n_dead_tup:8} {t.autovacuum_count:4} {t.heap // 1024:8} {t.indexes // 1024:8}"
            for t in tables
        )
        return lines


# --- the consumers' batches, from the services' metrics ---------------------------------


@dataclass
class Batches:
    """Per service and topic: batches handled, events processed, seconds in the handler."""

    counts: dict[tuple[str, str], tuple[float, float, float]]

    @classmethod
    def scrape(cls, services: dict[str, ServiceProcess]) -> "Batches":
        counts: dict[tuple[str, str], tuple[float, float, float]] = {}
        for name, service in services.items():
            try:
                body = httpx.get(service.metrics_url, timeout=5).text
            except httpx.HTTPError:
                continue
            batches: dict[str, float] = {}
            seconds: dict[str, float] = {}
            events: dict[str, float] = {}
            for family in text_string_to_metric_families(body):
                for sample in family.samples:
                    topic = sample.labels.get("topic", "")
                    if sample.name == "npsloop_handler_duration_seconds_count":
                        batches[topic] = sample.value
                    elif sample.name == "npsloop_handler_duration_seconds_sum":
                        seconds[topic] = sample.value
                    elif (
                        sample.name == "npsloop_events_consumed_total"
                        and sample.labels.get("outcome") == "processed"
                    ):
                        events[topic] = sample.value
            for topic, n in batches.items():
                counts[(name, topic)] = (n, events.get(topic, 0.0), seconds.get(topic, 0.0))
        return cls(counts)

    def report(self, before: "Batches", wall: float) -> None:
        print("consumer batches:    (service, topic: batches, mean size, mean time, busy share)")
        for key, (n, events, seconds) in sorted(self.counts.items()):
            n0, events0, seconds0 = before.counts.get(key, (0.0, 0.0, 0.0))
            batches = n - n0
            if batches <= 0:
                continue
            size = (events - events0) / batches
            busy = (seconds - seconds0) / wall
            mean_ms = (seconds - seconds0) / batches * 1000
            print(
                f"  {key[0]:<9}{key[1]:<22}{batches:7,.0f} batches, {size:6.1f} events, "
                f"{mean_ms:7.1f} ms, {busy:4.0%} of the run"
            )


# --- more than one process of a stage ------------------------------------------------------

SCALABLE = ("scoring", "followup", "notify")


def _replicas(parser: argparse.ArgumentParser, given: list[str]) -> dict[str, int]:
    """`SERVICE=N` options as {service: N}."""
    replicas: dict[str, int] = {}
    for item in given:
        name, _, count = item.partition("=")
        if name not in SCALABLE or not count.isdigit() or not 1 <= int(count) <= 3:
            parser.error(f"--replicas {item}: one of {', '.join(SCALABLE)}, =1 to =3")
        replicas[name] = int(count)
    return replicas


def _start_replicas(
    services: dict[str, ServiceProcess], replicas: dict[str, int], *, log_dir: Path
) -> dict[str, ServiceProcess]:
    """The extra processes, each with the first one's settings and a port of its own; ready
    (in its consumer group) before the run starts."""
    extra: dict[str, ServiceProcess] = {}
    for name, count in replicas.items():
        for k in range(2, count + 1):
            port = free_port()
            extra[f"{name}-{k}"] = ServiceProcess(
                name=name,
                port=port,
                env={**services[name].env, f"{name.upper()}_PORT": str(port)},
                log_path=log_dir / f"{name}-{k}.log",
            )
    try:
        for service in extra.values():
            service.start()
        for service in extra.values():
            service.wait_ready(timeout=90)
    except BaseException:
        for service in extra.values():
            service.stop()
        raise
    return extra


# --- the report ---------------------------------------------------------------------------


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    q = statistics.quantiles(values, n=100)
    return f"p50 {q[49]:.2f} s, p95 {q[94]:.2f} s, p99 {q[98]:.2f} s, max {max(values):.2f} s"


def report_cpu(before: dict[str, float], after: dict[str, float], n: int, wall: float) -> None:
    spent = {name: after[name] - before[name] for name in after}
    total = sum(v for name, v in spent.items() if name not in NOT_THE_SYSTEM)
    print(f"CPU per response:    (ms; over {wall:.1f} s, {n} responses)")
    for name, seconds in spent.items():
        share = seconds / wall * 100
        print(f"  {name:<18}{seconds / n * 1000:7.2f} ms   ({share:.0f}% of a core)")
    print(f"  {'all but bench/sinks':<18}{total / n * 1000:7.2f} ms")


@dataclass
class Measured:
    posted: Posted
    watched: Watched
    accepted: float  # seconds until ingest accepted the last post
    wall: float  # seconds until the watcher saw the run over
    cpu_before: dict[str, float]
    cpu_after: dict[str, float]
    statements: list[str]  # --pg-statements: its report


async def _measure(
    host: str,
    port: int,
    args: argparse.Namespace,
    run: str,
    *,
    watcher: Watcher,
    processes: Processes,
    statements: Statements | None,
) -> Measured:
    await watcher.open()
    processes.watcher_backend = watcher.backend_pid
    try:
        if statements is not None:
            await statements.start(watcher.connection)
        cpu_before = processes.cpu()
        started_wall = time.time()
        started = time.perf_counter()
        if args.rate is None:
            posted = await post_all(host, port, args.responses, args.concurrency, run)
            accepted = time.perf_counter() - started
            await watcher.watch(args.responses, started, None)
        else:
            n = int(args.rate * args.duration)
            posted = Posted()
            sending = asyncio.create_task(
                post_all(host, port, n, args.concurrency, run, rate=args.rate, posted=posted)
            )
            watching = asyncio.create_task(watcher.watch(n, started, sending))
            await sending
            accepted = time.perf_counter() - started
            await watching
        wall = time.perf_counter() - started
        cpu_after = processes.cpu()
        watched = await watcher.results(len(posted.sent_at), started_wall)
        statements_report = (
            await statements.report(watcher.connection, len(posted.sent_at))
            if statements is not None
            else []
        )
    finally:
        await watcher.close()
    return Measured(posted, watched, accepted, wall, cpu_before, cpu_after, statements_report)


def main() -> None:  # noqa: PLR0912, PLR0915 - one straight script
    parser = argparse.ArgumentParser()
    parser.add_argument("--responses", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, help="paced mode: responses per second")
    parser.add_argument("--duration", type=float, default=60, help="paced mode: seconds")
    parser.add_argument("--broker", choices=["tansu", "apache-kafka"], default="tansu")
    parser.add_argument("--idle", type=float, default=5, help="seconds of idle CPU sampled")
    parser.add_argument(
        "--sink",
        choices=["smtp-sink", "aiosmtpd", "in-process"],
        default=default_sink(),
        help="the SMTP sink: Postfix's smtp-sink (the default when installed), aiosmtpd in a "
        "process of its own, or aiosmtpd in a thread of this process (as before the third "
        "session on issue #20)",
    )
    parser.add_argument(
        "--helpdesk",
        choices=["zendesk", "none"],
        default="zendesk",
        help="where notify sends the default policy's tickets: the tests' fake Zendesk in a "
        "process of its own (the default), or nowhere (each ticket action then fails at once "
        "for want of a channel, as every run before the fifth session on issue #20)",
    )
    parser.add_argument(
        "--pg-statements",
        action="store_true",
        help="load pg_stat_statements and print, per response, PostgreSQL's statements "
        "(calls, time, rows, WAL), WAL bytes and commits; PostgreSQL's CPU is then higher",
    )
    parser.add_argument(
        "--replicas",
        action="append",
        default=[],
        metavar="SERVICE=N",
        help="run N processes of scoring, followup or notify (one consumer group: the topics "
        "have 3 partitions, so up to 3 share the work), as the manifests scale a stage on lag; "
        "each extra process gets its own line in the figures (notify-2, ...)",
    )
    args = parser.parse_args()
    replicas = _replicas(parser, args.replicas)

    tmp = scratch_dir("npsloop-bench-")
    broker = new_broker(args.broker, tmp)
    # Commit timestamps: the stages' times (Watcher). pg_stat_statements only when asked.
    pg_settings = {"track_commit_timestamp": "on"}
    if args.pg_statements:
        pg_settings["shared_preload_libraries"] = "pg_stat_statements"
    postgres = EmbeddedPostgres(data_dir=tmp / "pg", port=free_port(), settings=pg_settings)
    mail = MailSink(directory=tmp / "mail", port=free_port())
    idp = ServedIdentityProvider(key_file=tmp / "idp" / "key.pem", port=free_port())
    services: dict[str, ServiceProcess] = {}
    sink: subprocess.Popen[bytes] | None = None
    helpdesk: subprocess.Popen[bytes] | None = None
    broker.start()
    postgres.start()
    if args.sink == "in-process":
        mail.start()
    else:
        sink = start_mail_sink(mail.directory, mail.port, args.sink)
    idp.start()
    try:
        helpdesk_env = {}
        if args.helpdesk == "zendesk":
            helpdesk, helpdesk_url = start_fake_provider("fake_zendesk", "FakeZendesk")
            helpdesk_env = {
                "ZENDESK_BASE_URL": helpdesk_url,
                "ZENDESK_EMAIL": "agent@example.com",  # the fake's defaults
                "ZENDESK_API_TOKEN": "zendesk-api-token",
                # Notify's own pace for Zendesk (3/s by default, as the plans' limits) would
                # measure the limit, not notify.
                "ZENDESK_RATE_PER_SECOND": "1000000",
            }
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "KAFKA_ENABLE_IDEMPOTENCE": "true" if args.broker == "apache-kafka" else "false",
            "DATABASE_URL": postgres.url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(mail.port),
            "AUTH_ISSUER": idp.issuer,
            # The console refuses to start without a key for its sessions (unused here).
            "CONSOLE_SESSION_KEYS": Fernet.generate_key().decode(),
            "INGEST_API_TOKENS": json.dumps({"bench": TOKEN}),
            "LOG_LEVEL": "WARNING",
            **helpdesk_env,
        }
        prepare(env, partitions=3)
        services = start_all(
            env, ports={name: free_port() for name in SERVICES}, log_dir=tmp, ready_timeout=90
        )
        services.update(_start_replicas(services, replicas, log_dir=tmp))
        pids = {name: s.process.pid for name, s in services.items() if s.process is not None}
        assert broker.pid is not None
        assert postgres.pid is not None
        pids["broker"] = broker.pid
        pids["bench"] = os.getpid()
        if sink is not None:
            pids["mail sink"] = sink.pid
        if helpdesk is not None:
            pids["helpdesk fake"] = helpdesk.pid
        processes = Processes(pids=pids, postgres=postgres.pid)
        rss_idle = processes.rss()
        idle_before = processes.cpu()
        time.sleep(args.idle)
        idle_after = processes.cpu()

        run = uuid.uuid4().hex[:6]
        watcher = Watcher(postgres.url, mail.directory, run, tickets=helpdesk is not None)
        batches_before = Batches.scrape(services)
        measured = asyncio.run(
            _measure(
                "127.0.0.1",
                services["ingest"].port,
                args,
                run,
                watcher=watcher,
                processes=processes,
                statements=Statements() if args.pg_statements else None,
            )
        )
        posted, watched, accepted, wall = (
            measured.posted,
            measured.watched,
            measured.accepted,
            measured.wall,
        )
        rss_after = processes.rss()
        batches_after = Batches.scrape(services)
        n = len(posted.sent_at)

        mode = (
            f"paced at {args.rate:g}/s for {args.duration:g} s"
            if args.rate is not None
            else f"concurrency {args.concurrency}"
        )
        load = os.getloadavg()
        print(f"responses:           {n} ({mode}, {args.broker}, SMTP sink {args.sink})")
        print(f"load average:        {load[0]:.1f} / {load[1]:.1f} (1 / 5 min, at the end)")
        q = statistics.quantiles(posted.latencies, n=100)
        print(
            f"ingest:              {n / accepted:,.0f} req/s accepted; "
            f"latency p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms"
        )
        if posted.lag:
            lag = statistics.quantiles(posted.lag, n=100)
            print(
                f"client lag:          p99 {lag[98] * 1000:.1f} ms, max {max(posted.lag) * 1000:.1f} ms"
                " behind its schedule"
            )
        for stage, at in watched.stages.items():
            print(f"{stage + ':':<21}{at:.1f} s after the first post")
        if args.rate is None:  # paced, the rate is the one asked for
            print(
                f"end to end:          {n / watched.stages['emailed']:,.0f} responses/s (post to email)"
            )
            print(
                f"end to end, acks:    {n / watched.stages['acknowledged']:,.0f} responses/s "
                "(post to every customer's acknowledgement)"
            )
        first_action = [watched.acknowledged[i] - posted.sent_at[i] for i in posted.sent_at]
        print(f"first action:        {percentiles(first_action)} (post to acknowledgement email)")
        if watched.visible:
            visible = [
                watched.visible[i] - sent
                for i, sent in posted.sent_at.items()
                if i in watched.visible
            ]
            print(f"case visible:        {percentiles(visible)} (post to the case's commit)")
        if watched.unstamped:
            print(f"                     {watched.unstamped} rows without a commit time (frozen)")
        idle_s = max(args.idle, 1e-9)
        print(
            "idle CPU:            "
            + ", ".join(
                f"{name} {(idle_after[name] - idle_before[name]) / idle_s * 1000:.0f}"
                for name in idle_after
            )
            + f" ms/s (over {args.idle:g} s before the run)"
        )
        batches_after.report(batches_before, wall)
        report_cpu(measured.cpu_before, measured.cpu_after, n, wall)
        print(
            "RSS idle / after:    "
            + ", ".join(f"{name} {rss_idle[name]:.0f}/{rss_after[name]:.0f}" for name in rss_idle)
            + " MB"
        )
        for line in measured.statements:
            print(line)
    finally:
        for service in services.values():
            service.stop()
        idp.stop()
        mail.stop()
        stop_process(sink, sig=signal.SIGTERM, timeout=10)
        stop_process(helpdesk, sig=signal.SIGTERM, timeout=10)
        postgres.stop()
        broker.stop()


if __name__ == "__main__":
    main()
