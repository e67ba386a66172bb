"""Followup at scale: the sweeper and the case API with 1,000,000 open cases.

Starts an embedded PostgreSQL, migrates followup's schema, and generates (server-side) N open
detractor cases, each with an acknowledgement and a ticket action and its three ladder timers
(reminder, escalation, second level) pending in the coming weeks; for D of them the
escalation is due now. Then it measures:
- the due-now query's plan (EXPLAIN ANALYZE): it must be an index scan of the partial index;
- escalating the D due cases with two sweepers side by side (as two replicas would), each
  escalation writing its timeline entry, staff notification, ticket priority raise and events;
- the case API's queries: one case with its actions and timeline, a list by owner, the
  closed-loop figures by team.

    .venv/bin/python bench/followup.py --cases 1000000 --due 10000

Around the escalations it prints what the server did per timer (WAL records and full-page
images, pages read, evicted and written out by the backends, checkpoints; PostgreSQL 18's
`pg_stat_wal`, `pg_stat_io`, `pg_stat_checkpointer`). `--pg-setting NAME=VALUE` (repeatable)
runs the server with those parameters, `--checkpoint` checkpoints just before the escalations
(every page they change then goes to WAL whole), `--sweepers N` and `--sweep-batch N` change
the sweepers, and `--waits` samples the backends' wait events (and, with `--pg-setting
shared_preload_libraries=pg_stat_statements`, lists the sweep's statements with their pages):

    SIZED="--pg-setting shared_buffers=4GB --pg-setting max_wal_size=8GB --pg-setting checkpoint_timeout=15min"
    .venv/bin/python bench/followup.py --only writes --cases 1000000 --due 10000 --checkpoint $SIZED

`--only queue` measures the console's queue instead (pages by cursor and by offset, filters,
the customer search, and page 20's plan) at N open or contacted cases:

    .venv/bin/python bench/followup.py --only queue --cases 50000

`--only writes` measures only what the sweeper and the consumer write (the escalations,
`open_cases`, and notify's results for the actions those cases requested, in batches of 1 and
of 500; no API queries), with the CPU per item of this process (`time.process_time`) and of
the PostgreSQL server (its processes' utime + stime from /proc), and the statements per batch
by kind (SQLAlchemy's `before_cursor_execute`; BEGIN and COMMIT are not counted); `--profile
DIR` also writes a cProfile of each (escalations, opening batches of 1 and of 500, results)
into DIR:

    .venv/bin/python bench/followup.py --only writes --cases 100000 --due 5000 --profile /tmp/p

`--only paths` measures one statement of 500 rows (shaped as notify's results) through the
ORM session and on the transaction's asyncpg connection, alternating (`--repeat` each):

    .venv/bin/python bench/followup.py --only paths --repeat 100

`--only opening` measures only `open_cases` on an empty schema, in `--batches` batches of
`--size` responses (scores 0–10 evenly, each batch built just before it, outside the timing)
after two batches to warm up, with what start-up built frozen (`gc.freeze()`) as the services
do, and the collector's thresholds as `nps-followup serve` sets them (where the tree measured
has `nps_kit.service.tune_collector`, or before the sixth session on issue #20
`bootstrap.tune_collector`): the CPU per response of this process and of PostgreSQL over
many batches, where `--only writes` times four batches of 500, and the garbage collections
in the measured batches with their CPU per response:

    .venv/bin/python bench/followup.py --only opening --batches 30 --size 500

`DATABASE_OUTBOX_HEADERS=compact` in the environment stores the outbox's headers compact, as
the service does with it; with `--wal`, also what those batches wrote to WAL by table and index (pg_walinspect);
with `--pg-setting shared_preload_libraries=pg_stat_statements` (and `--pg-setting
pg_stat_statements.track=all` for the foreign keys' checks), their statements per response. Every
run prints the WAL written per response, timer and result (`pg_current_wal_lsn()`), a figure
the machine's load does not move; `--index-usage` ends any run with the scans of each of
followup's indexes (`pg_stat_user_indexes`) and the HOT updates (`pg_stat_user_tables`).

`--only figures` measures the dashboard's closed-loop figures at N cases opened over the past
year (by team, by owner, both as two concurrent calls as the console asked before, both in one
GROUPING SETS pass as it asks now), and prints the one pass's plan:

    .venv/bin/python bench/followup.py --only figures --cases 50000
"""

import argparse
import asyncio
import collections
import contextlib
import cProfile
import gc
import os
import re
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine

from nps_events import (
    ActionResultReported,
    ActionStatus,
    Channel,
    Customer,
    ResponseScored,
    Segment,
)
from nps_followup import bootstrap
from nps_followup.adapters import tables as followup_tables
from nps_followup.adapters import timer_store
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.figures import closed_loop_figures
from nps_followup.adapters.policy_file import load_policy
from nps_followup.adapters.repository import FollowupRepository, due_timers_query
from nps_followup.domain.access import CaseScope
from nps_followup.domain.cases import CaseStatus
from nps_followup.domain.queue import QueueFilter
from nps_followup.entrypoints.sweeper import Sweeper
from nps_followup.handlers import (
    PolicyInForce,
    business_time_left,
    business_time_runs_until,
    figures,
    get_case,
    list_cases,
    open_cases,
    queue_page,
    record_action_results,
)
from nps_kit import outbox as kit_outbox
from nps_kit import service
from nps_kit.clock import SystemClock
from nps_kit.db import driver_fetch, session_factory, unit_of_work
from nps_kit.devstack import EmbeddedPostgres, free_port, scratch_dir
from nps_kit.logging import configure_logging
from nps_kit.migrations import upgrade
from nps_kit.settings import DatabaseSettings, LogSettings

GENERATE = """
INSERT INTO followup.cases (case_id, response_id, source, survey_id, customer_id, customer_email,
    segment, score, comment, status, opened_at, due_at, remind_at, second_level_at, rule, team,
    owner)
SELECT gen_random_uuid(), gen_random_uuid(), 'bench', 'bench', 'c' || i, 'c' || i || '@example.com',
    'detractor', i % 7, 'bench', 'open', CAST(:now AS timestamptz) - make_interval(mins => i % 4320),
    CAST(:now AS timestamptz) + make_interval(hours => 48 + i % 720),
    CAST(:now AS timestamptz) + make_interval(hours => 44 + i % 720),
    CAST(:now AS timestamptz) + make_interval(hours => 56 + i % 720), 'detractor', 'customer-success',
    'member' || (i % 20) || '@example.com'
FROM generate_series(1, CAST(:n AS integer)) AS i
"""

ACTIONS = """
INSERT INTO followup.actions (action_id, case_id, channel, template, priority, state,
    requested_at, updated_at)
SELECT gen_random_uuid(), c.case_id, a.channel, a.template, a.priority, 'sent', c.opened_at,
    c.opened_at
FROM followup.cases c,
    (VALUES ('email', 'detractor_acknowledgement', NULL), ('ticket', NULL, 'high'))
        AS a(channel, template, priority)
"""

TIMERS = """
INSERT INTO followup.timers (timer_id, case_id, kind, fire_at, state)
SELECT gen_random_uuid(), c.case_id, t.kind,
    CASE WHEN t.kind = 'reminder' THEN c.remind_at
         WHEN t.kind = 'escalation' THEN c.due_at ELSE c.second_level_at END,
    'pending'
FROM followup.cases c, (VALUES ('reminder'), ('escalation'), ('second_level')) AS t(kind)
"""

# D cases breach now: their reminder fired long ago, their escalation is due.
DUE = """
WITH due AS (SELECT case_id FROM followup.cases ORDER BY case_id LIMIT CAST(:d AS integer))
UPDATE followup.timers t SET
    fire_at = CASE WHEN t.kind = 'escalation' THEN CAST(:now AS timestamptz) - interval '1 minute' ELSE t.fire_at END,
    state = CASE WHEN t.kind = 'reminder' THEN 'fired' ELSE t.state END
FROM due WHERE t.case_id = due.case_id
"""


async def timed(what: str, statement: str, engine: Any, **params: object) -> None:
    started = time.perf_counter()
    async with engine.begin() as conn:
        result = await conn.execute(text(statement), params)
    print(f"  {what}: {result.rowcount:,} rows in {time.perf_counter() - started:.1f} s")


@contextlib.contextmanager
def profiled(profile: Path | None, name: str) -> Any:
    """cProfile the block into `profile/name.prof` (nothing without `profile`)."""
    if profile is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profile.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(profile / f"{name}.prof")


INTROSPECTION = "asyncpg's type look-ups"


class Statements:
    """Counts the statements an engine sends, by kind (`INSERT followup.cases`, `SELECT
    followup.actions`, …): those through the session from SQLAlchemy's `before_cursor_execute`
    event, those on the transaction's asyncpg connection (the kit's inbox and outbox,
    followup's hot statements) from asyncpg's query logger on each connection while it is
    checked out (BEGIN, COMMIT and ROLLBACK not counted). Counting costs this process CPU
    (more for the statements on the driver connection), so the timed loops count their last
    batch only (`on` before it), on connections that have met every type."""

    _WRITE = re.compile(r"^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+([\w.]+)", re.I)
    _READ = re.compile(r"^\s*SELECT\b.*?\bFROM\s+([\w.]+)", re.I | re.S)
    _CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")

    def __init__(self, engine: Any) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.engine = engine.sync_engine
        self.counting = False
        pool = engine.sync_engine.pool
        event.listen(pool, "checkout", self._checkout)
        event.listen(pool, "checkin", self._checkin)
        self.on()

    def on(self) -> None:
        if not self.counting:
            event.listen(self.engine, "before_cursor_execute", self._seen)
            self.counting = True

    def off(self) -> None:
        """Stop counting (from the next transaction on the driver connection's side)."""
        if self.counting:
            event.remove(self.engine, "before_cursor_execute", self._seen)
            self.counting = False

    #: The bench's own look at the server around the escalations (not the sweeper's).
    _PROBE = re.compile(r"pg_stat|pg_current_wal|^\s*(SHOW|CHECKPOINT|CREATE EXTENSION)", re.I)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not self._PROBE.search(statement):
            self.counts[self.kind(statement)] += 1

    def _on_driver(self, record: Any) -> None:
        if not record.query.lstrip().upper().startswith(self._CONTROL):
            self.counts[self.kind(record.query)] += 1

    def _checkout(self, dbapi_connection: Any, *_: Any) -> None:
        if self.counting:
            dbapi_connection.driver_connection.add_query_logger(self._on_driver)

    def _checkin(self, dbapi_connection: Any, *_: Any) -> None:
        if dbapi_connection is not None:  # (asyncpg discards a logger it does not have)
            dbapi_connection.driver_connection.remove_query_logger(self._on_driver)

    @classmethod
    def kind(cls, statement: str) -> str:
        if "pg_catalog" in statement or "set_config('jit'" in statement:
            # asyncpg learning a type it has not met on this connection: once per connection.
            return INTROSPECTION
        if statement.lstrip().upper().startswith("WITH"):
            tables = re.findall(r"INSERT INTO\s+([\w.]+)", statement, re.I)
            if not tables:  # a read in parts (`cases_of_batch`)
                read = dict.fromkeys(re.findall(r"FROM ([\w.]+)", statement))
                return f"SELECT {'+'.join(read)}"
            return f"INSERT {'+'.join(tables)}"
        if write := cls._WRITE.match(statement):
            return f"{write.group(1).split()[0].upper()} {write.group(2)}"
        if read := cls._READ.match(statement):
            return f"SELECT {read.group(1)}"
        return statement.split(None, 1)[0]

    async def take(self) -> collections.Counter[str]:
        """The counts since the last `take` (asyncpg hands its loggers each statement with
        `call_soon`: one turn of the loop delivers the last ones)."""
        await asyncio.sleep(0)
        counts, self.counts = self.counts, collections.Counter()
        return counts

    @staticmethod
    def split(counts: collections.Counter[str], batches: int) -> str:
        """Per batch, by kind; asyncpg's type look-ups (once per connection) shown, not
        counted in the total."""
        total = sum(n for k, n in counts.items() if k != INTROSPECTION)
        kinds = ", ".join(f"{k} {n / batches:g}" for k, n in sorted(counts.items()))
        return f"{total / batches:.1f} statements per batch ({kinds})"


async def run(
    url: str,
    n: int,
    due: int,
    policy: PolicyInForce,
    *,
    api_queries: bool = True,
    profile: Path | None = None,
    freeze: bool = False,
    sweepers: int = 2,
    batch_size: int = 500,
    waits: bool = False,
    checkpoint: bool = False,
    opening_too: bool = True,
) -> None:
    engine = create_async_engine(url, pool_size=max(8, sweepers + 2))
    await generate(engine, n, due)
    await explain(engine)
    if freeze:
        gc.collect()
        gc.freeze()
    print(f"  {rss()}, gc thresholds {gc.get_threshold()}, frozen {gc.get_freeze_count():,}")
    statements = Statements(engine)
    with profiled(profile, "escalations"):
        await escalate(
            engine,
            due,
            policy,
            sweepers=sweepers,
            batch_size=batch_size,
            waits=waits,
            checkpoint=checkpoint,
        )
    batches = max(1, -(-due // batch_size))
    print(f"  {Statements.split(await statements.take(), batches)} (about)")
    if api_queries:
        await api(engine)
    if opening_too:
        opened = await opening(engine, policy, statements, profile=profile)
        await action_results(engine, opened, statements, profile=profile)
    await engine.dispose()
    print(f"\n{rss()}")


def rss() -> str:
    """This process's resident memory now and at its peak (VmRSS, VmHWM), from /proc."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return f"RSS {status['VmRSS'].strip()} (peak {status['VmHWM'].strip()})"


async def generate(engine: Any, n: int, due: int) -> None:
    now = datetime.now(UTC)
    print(f"generating {n:,} open cases …")
    await timed("cases", GENERATE, engine, now=now, n=n)
    await timed("actions", ACTIONS, engine)
    await timed("timers", TIMERS, engine)
    await timed(f"{due:,} escalations due now", DUE, engine, now=now, d=due)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        started = time.perf_counter()
        await conn.execute(text("VACUUM ANALYZE"))
        print(f"  vacuum analyze: {time.perf_counter() - started:.1f} s")
        pending = await conn.scalar(
            text("SELECT count(*) FROM followup.timers WHERE state = 'pending'")
        )
        print(f"  pending timers: {pending:,}")
        size = await conn.scalar(text("SELECT pg_database_size(current_database())"))
        print(f"  database: {size / 2**30:.2f} GB")


async def explain(engine: Any) -> None:
    query = due_timers_query(datetime.now(UTC), 500).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    async with engine.connect() as conn:
        plan = (await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {query}"))).scalars().all()
        await conn.rollback()
    print("\ndue-now query (500 per sweep):\n  " + "\n  ".join(plan))
    # An index scan (or a bitmap index scan) of the partial index; never a scan of the table.
    assert any("ix_timers_pending_fire_at" in line for line in plan), plan
    assert not any("Seq Scan" in line for line in plan), plan
    claim = getattr(timer_store, "_CLAIM", None)  # trees before it claimed, then updated
    if claim is None:
        return
    # As asyncpg runs it: prepared, with its generic plan forced (the plan cache's choice
    # after five runs when it is no worse) and with a custom one.
    prepared = re.sub(r":now\b", "$1", re.sub(r":limit\b", "$2", claim.text))
    for mode in ("force_custom_plan", "force_generic_plan"):
        async with engine.connect() as conn:
            await conn.execute(text(f"SET plan_cache_mode = {mode}"))
            await conn.exec_driver_sql(f"PREPARE claim(timestamptz, bigint) AS {prepared}")
            explained = await conn.exec_driver_sql("EXPLAIN EXECUTE claim(now(), 500)")
            plan = explained.scalars().all()
            await conn.exec_driver_sql("DEALLOCATE claim")
            await conn.rollback()
        print(f"\nthe sweeper's claim ({mode}):\n  " + "\n  ".join(plan))
        # The due timers from the partial index, then updated by their ctid (no table scan).
        assert any("ix_timers_pending_fire_at" in line for line in plan), plan
        assert any("Tid Scan" in line for line in plan), plan
        assert not any("Seq Scan" in line for line in plan), plan


#: The server's counters a sweep moves, read before and after the escalations (PostgreSQL 18:
#: `pg_stat_wal`, `pg_stat_io`, `pg_stat_checkpointer`, `pg_statio_user_tables`).
SERVER_COUNTERS = """
SELECT 'WAL records', wal_records FROM pg_stat_wal
UNION ALL SELECT 'WAL full-page images', wal_fpi FROM pg_stat_wal
UNION ALL SELECT 'WAL buffers full', wal_buffers_full FROM pg_stat_wal
UNION ALL SELECT 'WAL writes (all processes)', sum(writes) FROM pg_stat_io WHERE object = 'wal'
UNION ALL SELECT 'WAL fsyncs (all processes)', sum(fsyncs) FROM pg_stat_io WHERE object = 'wal'
UNION ALL SELECT 'WAL fsyncs by client backends', sum(fsyncs) FROM pg_stat_io
    WHERE object = 'wal' AND backend_type = 'client backend'
UNION ALL SELECT 'WAL fsync ms by client backends', sum(fsync_time)::bigint FROM pg_stat_io
    WHERE object = 'wal' AND backend_type = 'client backend'
UNION ALL SELECT 'WAL write ms by client backends', sum(write_time)::bigint FROM pg_stat_io
    WHERE object = 'wal' AND backend_type = 'client backend'
UNION ALL SELECT 'pages read by client backends', sum(reads) FROM pg_stat_io
    WHERE object = 'relation' AND backend_type = 'client backend'
UNION ALL SELECT 'page read ms by client backends', sum(read_time)::bigint FROM pg_stat_io
    WHERE object = 'relation' AND backend_type = 'client backend'
UNION ALL SELECT 'pages evicted by client backends', sum(evictions) FROM pg_stat_io
    WHERE object = 'relation' AND backend_type = 'client backend'
UNION ALL SELECT 'dirty pages written by client backends', sum(writes) FROM pg_stat_io
    WHERE object = 'relation' AND backend_type = 'client backend'
UNION ALL SELECT 'pages written by the checkpointer', buffers_written FROM pg_stat_checkpointer
UNION ALL SELECT 'checkpoints (timed + requested)', num_timed + num_requested
    FROM pg_stat_checkpointer
UNION ALL SELECT 'pages written by the bgwriter', buffers_clean FROM pg_stat_bgwriter
UNION ALL SELECT 'heap pages read (followup)', sum(heap_blks_read) FROM pg_statio_user_tables
    WHERE schemaname = 'followup'
UNION ALL SELECT 'heap pages hit (followup)', sum(heap_blks_hit) FROM pg_statio_user_tables
    WHERE schemaname = 'followup'
UNION ALL SELECT 'index pages read (followup)', sum(idx_blks_read) FROM pg_statio_user_tables
    WHERE schemaname = 'followup'
UNION ALL SELECT 'index pages hit (followup)', sum(idx_blks_hit) FROM pg_statio_user_tables
    WHERE schemaname = 'followup'
"""

#: What a client backend is doing, sampled by `--waits` (the sampler's own backend left out).
WAITS = """
SELECT backend_type, state, wait_event_type, wait_event FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND (backend_type <> 'client backend' OR state <> 'idle')
"""

#: The escalations' statements by time in PostgreSQL (`--waits` with pg_stat_statements loaded).
TOP_STATEMENTS = """
SELECT calls, total_exec_time, shared_blks_hit, shared_blks_read, shared_blks_dirtied,
    shared_blks_written, wal_fpi, wal_bytes, regexp_replace(query, '\\s+', ' ', 'g')
FROM pg_stat_statements
WHERE query !~* '^\\s*(BEGIN|COMMIT)' AND query !~ '(pg_stat|pg_current_wal|SHOW )'
ORDER BY total_exec_time DESC LIMIT 12
"""


async def server_counters(engine: Any) -> dict[str, int]:
    """`SERVER_COUNTERS` now, once the backends have reported what they did: an idle backend
    flushes its statistics within a second."""
    await asyncio.sleep(1.1)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_stat_force_next_flush()"))
        return {k: int(v or 0) for k, v in (await conn.execute(text(SERVER_COUNTERS))).all()}


async def sample_waits(engine: Any, into: collections.Counter[str], every: float) -> None:
    """Count what each non-idle backend is doing every `every` s until cancelled: a client
    backend by its state (`active`, or `idle in transaction`: waiting for this process) and
    wait event (none: on CPU), a background process by its type and wait event."""
    async with engine.connect() as conn:
        while True:
            for kind, state, wait_type, wait in (await conn.execute(text(WAITS))).all():
                who = state if kind == "client backend" else kind
                into[f"{who}: {wait_type + ':' + wait if wait else 'CPU'}"] += 1
            into["(samples)"] += 1
            await conn.commit()
            await asyncio.sleep(every)


async def statements_loaded(engine: Any) -> bool:
    async with engine.connect() as conn:
        preload = await conn.scalar(text("SHOW shared_preload_libraries"))
        if "pg_stat_statements" not in (preload or ""):
            return False
        await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        await conn.execute(text("SELECT pg_stat_statements_reset()"))
        await conn.commit()
    return True


async def escalate(
    engine: Any,
    due: int,
    policy: PolicyInForce,
    *,
    sweepers: int = 2,
    batch_size: int = 500,
    waits: bool = False,
    checkpoint: bool = False,
) -> None:
    sessions = session_factory(engine)
    sweeping = [
        Sweeper(
            sessions=sessions,
            relay=None,
            clock=SystemClock(),
            policy=policy,
            interval=0.05,
            batch_size=batch_size,
        )
        for _ in range(sweepers)
    ]

    async def drain(sweeper: Sweeper) -> int:
        total = 0
        while fired := await sweeper.sweep_once():
            total += fired
        return total

    by_statement = waits and await statements_loaded(engine)
    if checkpoint:
        # Every page's first change from here on writes its full image to WAL, as just after
        # any checkpoint: the escalations' WAL whatever the generation's checkpoints were.
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("CHECKPOINT"))
    counters = await server_counters(engine)
    sampled: collections.Counter[str] = collections.Counter()
    sampler = asyncio.create_task(sample_waits(engine, sampled, 0.01)) if waits else None
    wal = await wal_now(engine)
    started, cpu, pg = time.perf_counter(), time.process_time(), pg_now()
    fired = await asyncio.gather(*(drain(s) for s in sweeping))
    elapsed, cpu, pg = time.perf_counter() - started, time.process_time() - cpu, pg_now() - pg
    wal = await wal_now(engine) - wal
    if sampler is not None:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    print(
        f"\nescalated {sum(fired):,} due cases with {sweepers} sweepers of {batch_size} "
        f"{fired}: {elapsed:.1f} s ({sum(fired) / elapsed:,.0f} timers/s; "
        f"{cpu_per_item(cpu, pg, sum(fired), 'timer')}; "
        f"WAL {wal / max(1, sum(fired)) / 1024:.1f} KB per timer; {load()})"
    )
    after = await server_counters(engine)
    per = max(1, sum(fired))
    print("  the server during the escalations (per timer):")
    for name, value in after.items():
        print(f"    {name:40} {value - counters[name]:>12,} ({(value - counters[name]) / per:.2f})")
    if waits:
        samples = sampled.pop("(samples)", 1)
        print(
            f"  what the backends were doing ({samples} samples every 10 ms; sampling adds "
            "to both CPU figures): mean backends per sample"
        )
        for what, n in sampled.most_common(16):
            print(f"    {what:60} {n / samples:.2f}")
    if by_statement:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(TOP_STATEMENTS))).all()
        print(
            "  statements by time in PostgreSQL (pg_stat_statements): calls, ms, "
            "pages hit / read / dirtied / written, FPIs, WAL KB"
        )
        for calls, ms, hit, read, dirtied, written, fpi, wal_bytes, query in rows:
            print(
                f"    {calls:>5} {ms:>8.0f} {hit:>8} {read:>7} {dirtied:>7} {written:>7} "
                f"{fpi:>6} {int(wal_bytes) // 1024:>7}  {query[:90]}"
            )
    async with engine.connect() as conn:
        escalated = await conn.scalar(
            text("SELECT count(*) FROM followup.cases WHERE escalation_level = 1")
        )
        queued = await conn.scalar(text("SELECT count(*) FROM followup.outbox"))
    print(f"  cases at escalation level 1: {escalated:,}; events queued: {queued:,}")
    assert escalated == due, escalated


async def api(engine: Any) -> None:
    sessions = session_factory(engine)
    async with engine.connect() as conn:
        ids = (
            (
                await conn.execute(
                    text("SELECT case_id FROM followup.cases TABLESAMPLE SYSTEM (1) LIMIT 200")
                )
            )
            .scalars()
            .all()
        )

    async def latency(what: str, call: object, repeat: int) -> None:
        samples = []
        for i in range(repeat):
            async with sessions() as session:
                repo = FollowupRepository(session)
                started = time.perf_counter()
                await call(repo, i)  # type: ignore[operator]
                samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        print(
            f"  {what}: p50 {statistics.median(samples):.1f} ms, "
            f"p99 {samples[int(len(samples) * 0.99) - 1]:.1f} ms ({repeat} calls)"
        )

    print("\ncase API queries:")
    await latency(
        "GET /v1/cases/{id} (case + actions + timeline)",
        lambda repo, i: get_case(repo, ids[i % len(ids)]),
        200,
    )
    await latency(
        "GET /v1/cases?owner=… (50 newest)",
        lambda repo, i: list_cases(
            repo,
            customer_id=None,
            status=None,
            limit=50,
            offset=0,
            filters=QueueFilter(owner=f"member{i % 20}@example.com"),
        ),
        100,
    )
    active = QueueFilter(statuses=(CaseStatus.OPEN, CaseStatus.CONTACTED))
    for page in (1, 20):
        await latency(
            f"GET /v1/cases?sort=urgency&status=open&status=contacted (the console's queue, "
            f"page {page} of 25, by offset)",
            lambda repo, i, page=page: queue_page(
                repo,
                filters=active,
                scope=None,
                cursor=None,
                limit=25,
                offset=(page - 1) * 25,
                now=datetime.now(UTC),
            ),
            100,
        )
    await latency(
        "the same, page 1, an agent's team scope",
        lambda repo, i: queue_page(
            repo,
            filters=active,
            scope=CaseScope(teams=frozenset({"customer-success"}), person="member1@example.com"),
            cursor=None,
            limit=25,
            now=datetime.now(UTC),
        ),
        100,
    )
    await latency(
        "GET /v1/cases?customer_id=…",
        lambda repo, i: list_cases(
            repo, customer_id=f"c{i * 997 + 1}", status=None, limit=50, offset=0
        ),
        200,
    )
    await latency(
        "GET /v1/figures?group_by=team (whole table)",
        lambda repo, i: figures(repo, group_by="team", start=None, end=None, now=datetime.now(UTC)),
        3,
    )


def _scored(run: str, i: int) -> ResponseScored:
    now = datetime.now(UTC)
    return ResponseScored(
        response_id=uuid.uuid4(),
        source="bench",
        survey_id="bench",
        customer=Customer(id=f"{run}-{i}", email=f"{run}-{i}@example.com"),
        score=i % 11,
        segment=Segment.DETRACTOR
        if i % 11 <= 6
        else Segment.PASSIVE
        if i % 11 <= 8
        else Segment.PROMOTER,
        responded_at=now,
        scored_at=now,
        received_event_id=uuid.uuid4(),
    )


def postgres_cpu(data_dir: Path) -> float:
    """CPU seconds (user + system) of the PostgreSQL server so far: its postmaster and every
    process it started (backends, WAL writer, checkpointer), from /proc."""
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the name: state, ppid, …; utime and stime are fields 14 and 15 of stat(5).
        if int(stat.parent.name) == postmaster or int(fields[1]) == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


#: The PostgreSQL data directory the bench measures (for `postgres_cpu`).
PG_DATA: list[Path] = []


class Collections:
    """The garbage collector's collections while `counting(True)`: how many of each
    generation, and their CPU (`time.process_time` around each, from `gc.callbacks`)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.cpu = [0.0, 0.0, 0.0]
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.count[info["generation"]] += 1
            self.cpu[info["generation"]] += time.process_time() - self._started

    @contextlib.contextmanager
    def counting(self, on: bool) -> Any:
        if not on:
            yield
            return
        gc.callbacks.append(self._callback)
        try:
            yield
        finally:
            gc.callbacks.remove(self._callback)

    def summary(self, items: int, what: str) -> str:
        per = " ".join(f"gen{g} {self.count[g]} ({self.cpu[g] * 1000:.0f} ms)" for g in range(3))
        return f"{per}; {sum(self.cpu) * 1000 / max(1, items):.4f} ms of CPU per {what}"


def cpu_per_item(bench_cpu: float, pg_cpu: float, items: int, what: str) -> str:
    return (
        f"CPU per {what}: this process {bench_cpu * 1000 / max(1, items):.3f} ms, "
        f"PostgreSQL {pg_cpu * 1000 / max(1, items):.3f} ms"
    )


def pg_now() -> float:
    return postgres_cpu(PG_DATA[0]) if PG_DATA else 0.0


async def wal_now(engine: Any) -> int:
    """The server's WAL position in bytes (`pg_current_wal_lsn()`): what a step wrote to WAL,
    the same on a quiet machine and a busy one."""
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")))


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


async def opening(
    engine: Any, policy: PolicyInForce, statements: Statements, *, profile: Path | None = None
) -> list[uuid.UUID]:
    """The consumer's use case on top of the 1M cases: responses per second by batch size
    (the runner hands it what one `getmany` returned for a partition), the CPU per response
    of this process and of PostgreSQL, and the statements per batch (building the batch's
    events is left out of all three). Returns the actions of the cases opened now (their
    acknowledgements are due at once)."""
    sessions = session_factory(engine)
    print("\nopening cases (open_cases, one transaction per batch; scores 0–10 evenly):")
    planned: list[uuid.UUID] = []
    for size in (1, 10, 100, 500):
        batches = max(2, 2000 // size)
        prepared = [[_scored(f"open{size}-{b}", i) for i in range(size)] for b in range(batches)]
        statements.off()
        await statements.take()
        with profiled(profile if size in (1, 500) else None, f"opening-{size}"):
            wal = await wal_now(engine)
            started, cpu, pg = time.perf_counter(), time.process_time(), pg_now()
            for i, batch in enumerate(prepared):
                if i == len(prepared) - 1:
                    statements.on()
                async with unit_of_work(sessions) as session:
                    opened = await open_cases(
                        FollowupRepository(session), batch, now=datetime.now(UTC), policy=policy
                    )
                planned += [a.action_id for c in opened for a in c.actions]
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            pg, wal = pg_now() - pg, await wal_now(engine) - wal
        print(
            f"  batches of {size}: {batches * size / elapsed:,.0f} responses/s; "
            f"{cpu_per_item(cpu, pg, batches * size, 'response')}; "
            f"WAL {wal / (batches * size) / 1024:.2f} KB per response; {load()}\n"
            f"    {Statements.split(await statements.take(), 1)}"
        )
    # A detractor alone (what a steady stream of detractors brings): its statements.
    async with unit_of_work(sessions) as session:
        await open_cases(
            FollowupRepository(session),
            [_scored("one-detractor", 0)],
            now=datetime.now(UTC),
            policy=policy,
        )
    print(f"  one detractor alone: {Statements.split(await statements.take(), 1)}")
    return planned


WAL_BY_RELATION = """
SELECT coalesce(c.relname, b.relfilenode::text), count(*),
    sum(b.block_data_length), sum(b.block_fpi_length)
FROM pg_get_wal_block_info(CAST(:start AS pg_lsn), pg_current_wal_lsn()) b
LEFT JOIN pg_class c ON c.relfilenode = b.relfilenode AND b.relfilenode <> 0
GROUP BY 1 ORDER BY sum(b.block_data_length) + sum(b.block_fpi_length) DESC LIMIT 25
"""


async def wal_by_relation(engine: Any, start: int, n: int) -> None:
    """What the measured batches wrote to WAL, by relation (table or index): block data and
    full-page images per response (pg_walinspect; the records' own headers left out)."""
    async with engine.connect() as conn:
        # asyncpg takes a pg_lsn as its byte position.
        rows = (await conn.execute(text(WAL_BY_RELATION), {"start": start})).all()
    print("WAL per response by relation (bytes of block data, of full-page images):")
    for name, blocks, data, fpi in rows:
        print(f"  {name:40} {blocks / n:6.2f} blocks {data / n:8.0f} B {fpi / n:8.0f} B")


async def opening_only(
    url: str, batches: int, size: int, policy: PolicyInForce, *, by_relation: bool = False
) -> None:
    """`open_cases` alone, `batches` batches of `size` after two to warm up (`--only opening`)."""
    engine = create_async_engine(url, pool_size=4)
    if by_relation:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_walinspect"))
    sessions = session_factory(engine)
    by_statement = False
    gc.freeze()
    # The collector as `nps-followup serve` sets it, where the code measured has a say (a
    # tree before the fifth session on issue #20 leaves Python's defaults).
    tune = getattr(service, "tune_collector", None) or getattr(bootstrap, "tune_collector", None)
    if tune is not None:
        tune()
    collections = Collections()
    cpu = elapsed = 0.0
    pg, wal = pg_now(), 0
    started_wal = 0
    for b in range(batches + 2):
        batch = [_scored(f"only{b}", i) for i in range(size)]
        if b == 2:
            cpu = elapsed = 0.0
            # With pg_stat_statements preloaded (`--pg-setting
            # shared_preload_libraries=pg_stat_statements`), the measured batches' statements.
            by_statement = await statements_loaded(engine)
            pg, wal = pg_now(), await wal_now(engine)
            started_wal = wal
        started, cpu_started = time.perf_counter(), time.process_time()
        with collections.counting(b >= 2):
            async with unit_of_work(sessions) as session:
                await open_cases(
                    FollowupRepository(session), batch, now=datetime.now(UTC), policy=policy
                )
        elapsed += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
    pg = pg_now() - pg
    wal = await wal_now(engine) - wal
    n = batches * size
    print(
        f"open_cases, {batches} batches of {size} (scores 0–10 evenly): {n / elapsed:,.0f} "
        f"responses/s; {cpu_per_item(cpu, pg, n, 'response')}; WAL {wal / n / 1024:.2f} KB "
        f"per response; {load()}"
    )
    print(f"  collector {gc.get_threshold()}: {collections.summary(n, 'response')}")
    if by_relation:
        await wal_by_relation(engine, started_wal, n)
    if by_statement:
        await statements_per_item(engine, n, "response")
    await engine.dispose()


#: Statements by time in PostgreSQL, with their rows and WAL (`statements_per_item`).
STATEMENTS_PER_ITEM = """
SELECT calls, total_exec_time, total_plan_time, rows, wal_records, wal_bytes,
    regexp_replace(query, '\\s+', ' ', 'g')
FROM pg_stat_statements
WHERE query !~* '^\\s*(BEGIN|COMMIT)' AND query !~ '(pg_stat|pg_current_wal|SHOW |pg_walinspect)'
ORDER BY total_exec_time DESC LIMIT 16
"""


async def statements_per_item(engine: Any, n: int, what: str) -> None:
    """The statements the measured batches ran (pg_stat_statements), per `what`: calls,
    execution and planning time, rows, WAL records and bytes."""
    await asyncio.sleep(1.1)  # an idle backend reports its statistics within a second
    async with engine.connect() as conn:
        rows = (await conn.execute(text(STATEMENTS_PER_ITEM))).all()
    print(
        f"statements (pg_stat_statements), per {what}: calls, µs executing, µs planning, rows, "
        "WAL records, WAL bytes"
    )
    for calls, ms, plan_ms, count, records, wal_bytes, query in rows:
        print(
            f"  {calls:>6} {ms * 1000 / n:7.1f} {plan_ms * 1000 / n:6.1f} {count / n:6.2f} "
            f"{records / n:6.2f} {int(wal_bytes) / n:7.0f}  {query[:110]}"
        )


async def action_results(
    engine: Any,
    planned: list[uuid.UUID],
    statements: Statements,
    *,
    profile: Path | None = None,
) -> None:
    """notify's outcomes for the actions of the cases opened above (`record_action_results`,
    one transaction per batch), as the consumer runner hands them: in batches of 1 and of
    500; CPU per result and statements per batch."""
    sessions = session_factory(engine)
    print(f"\naction results (record_action_results; {len(planned):,} actions):")
    results = [
        ActionResultReported(
            action_id=action_id,
            case_id=uuid.uuid4(),
            customer_id="bench",
            channel=Channel.EMAIL,
            status=ActionStatus.SENT,
            provider_message_id=f"<{action_id}@bench>",
            occurred_at=datetime.now(UTC),
        )
        for action_id in planned
    ]
    half = min(len(results) // 2, 1000)
    for size, chunk in ((1, results[:half]), (500, results[half:])):
        batches = [chunk[i : i + size] for i in range(0, len(chunk), size)]
        if not batches:
            continue
        statements.off()
        await statements.take()
        with profiled(profile, f"results-{size}"):
            wal = await wal_now(engine)
            started, cpu, pg = time.perf_counter(), time.process_time(), pg_now()
            for i, batch in enumerate(batches):
                if i == len(batches) - 1:
                    statements.on()
                async with unit_of_work(sessions) as session:
                    unknown = await record_action_results(
                        FollowupRepository(session), batch, now=datetime.now(UTC)
                    )
                assert not unknown, unknown
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            pg, wal = pg_now() - pg, await wal_now(engine) - wal
        print(
            f"  batches of {size}: {len(chunk) / elapsed:,.0f} results/s; "
            f"{cpu_per_item(cpu, pg, len(chunk), 'result')}; "
            f"WAL {wal / len(chunk) / 1024:.2f} KB per result; {load()}\n"
            f"    {Statements.split(await statements.take(), 1)}"
        )


QUEUE_CASES = """
INSERT INTO followup.cases (case_id, response_id, source, survey_id, customer_id, customer_email,
    customer_name, segment, score, comment, themes, status, opened_at, due_at, first_contact_at,
    resolved_at, closed_at, rule, team, owner)
SELECT gen_random_uuid(), gen_random_uuid(),
    (ARRAY['delighted', 'typeform', 'hubspot', 'api', 'qualtrics'])[1 + i % 5], 'bench',
    'q' || i, 'q' || i || '@example.com', 'Customer ' || i,
    CASE WHEN i % 10 < 8 THEN 'detractor' ELSE 'passive' END,
    CASE WHEN i % 10 < 8 THEN i % 7 ELSE 7 + i % 2 END, 'bench',
    CASE i % 4 WHEN 0 THEN ARRAY['price'] WHEN 1 THEN ARRAY['delivery', 'support']
        WHEN 2 THEN ARRAY[]::varchar[] ELSE ARRAY['onboarding'] END,
    s.status, CAST(:now AS timestamptz) - make_interval(mins => i % 4320),
    CAST(:now AS timestamptz) + make_interval(hours => i % 96 - 24),
    CASE WHEN s.status <> 'open' THEN CAST(:now AS timestamptz) - interval '1 hour' END,
    CASE WHEN s.status = 'closed' THEN CAST(:now AS timestamptz) - interval '1 hour' END,
    CASE WHEN s.status = 'closed' THEN CAST(:now AS timestamptz) - interval '1 hour' END,
    'detractor', 'customer-success', 'member' || (i % 20) || '@example.com'
FROM generate_series(1, CAST(:n AS integer)) AS i,
    LATERAL (SELECT CASE WHEN i <= CAST(:active AS integer)
        THEN (CASE WHEN i % 5 = 0 THEN 'contacted' ELSE 'open' END) ELSE 'closed' END AS status) s
"""


async def queue(url: str, active: int, closed: int, repeat: int, policy: PolicyInForce) -> None:
    """The console's queue at `active` open or contacted cases (and `closed` finished ones):
    page 1, page 20 by cursor and by offset, filtered pages, the customer search; each the
    handler and the API's rendering of the 25 cases (business time left in the team's
    calendar), no HTTP."""
    engine = create_async_engine(url, pool_size=4)
    now = datetime.now(UTC)
    print(f"generating {active:,} open or contacted cases and {closed:,} closed ones …")
    await timed("cases", QUEUE_CASES, engine, now=now, n=active + closed, active=active)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE followup.cases"))
    sessions = session_factory(engine)
    statuses = (CaseStatus.OPEN, CaseStatus.CONTACTED)

    async def page(filters: QueueFilter, cursor: str | None, offset: int = 0) -> Any:
        async with sessions() as session:
            found = await queue_page(
                FollowupRepository(session),
                filters=filters,
                scope=None,
                cursor=cursor,
                limit=25,
                offset=offset,
                now=datetime.now(UTC),
            )
        for case in found.cases:  # what the API adds to each case
            business_time_left(case, policy=policy, now=now)
            business_time_runs_until(case, policy=policy, now=now)
        return found

    async def cursor_of(filters: QueueFilter, number: int) -> str | None:
        cursor = None
        for _ in range(number - 1):
            cursor = (await page(filters, cursor)).next_cursor
        return cursor

    async def latency(what: str, filters: QueueFilter, number: int, *, by: str = "cursor") -> None:
        cursor = await cursor_of(filters, number) if by == "cursor" else None
        offset = (number - 1) * 25 if by == "offset" else 0
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            found = await page(filters, cursor, offset)
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
        print(
            f"  | {what} | {len(found.cases)} | {statistics.median(samples):.1f} ms "
            f"| {p95:.1f} ms |"
        )

    everything = QueueFilter(statuses=statuses)
    print(f"\nthe queue, 25 a page ({repeat} calls each):")
    print("  | page | cases | p50 | p95 |\n  |---|---:|---:|---:|")
    await latency("page 1", everything, 1)
    await latency("page 20, by cursor", everything, 20)
    await latency("page 20, by offset (before the cursor)", everything, 20, by="offset")
    await latency("page 200, by cursor", everything, 200)
    narrow = QueueFilter(statuses=statuses, segments=("detractor",), score_max=3, themes=("price",))
    await latency("detractor, score 0–3, theme price: page 1", narrow, 1)
    await latency("the same, page 20", narrow, 20)
    await latency(
        "source typeform, owner member3: page 1",
        QueueFilter(statuses=statuses, sources=("typeform",), owner="member3@example.com"),
        1,
    )
    await latency(
        "customer search `customer 4242`",
        QueueFilter(statuses=statuses, customer="customer 4242"),
        1,
    )
    await latency("customer search `q123@`", QueueFilter(statuses=statuses, customer="q123@"), 1)

    await explain_page(engine, everything, await cursor_of(everything, 20), full=True)
    await explain_page(engine, narrow, None)
    await explain_page(
        engine,
        QueueFilter(statuses=statuses, sources=("typeform",), owner="member3@example.com"),
        None,
    )
    await explain_page(engine, QueueFilter(statuses=statuses, customer="customer 4242"), None)
    await engine.dispose()


async def explain_page(
    engine: Any, filters: QueueFilter, cursor: str | None, *, full: bool = False
) -> None:
    """The plan of a page after `cursor`: range scans of the partial index of active cases,
    no sort of the whole queue."""
    captured: list[Any] = []

    class Capture:
        async def execute(self, statement: Any) -> Any:
            captured.append(statement)
            raise LookupError

    with contextlib.suppress(LookupError):
        await queue_page(
            FollowupRepository(Capture()),  # type: ignore[arg-type]
            filters=filters,
            scope=None,
            cursor=cursor,
            limit=25,
            now=datetime.now(UTC),
        )
    sql = captured[0].compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    async with engine.connect() as conn:
        plan = (await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))).scalars().all()
    if full:
        print("\npage 20's plan:\n  " + "\n  ".join(plan))
        assert any("ix_cases_active_queue" in line for line in plan), plan
        assert not any("Seq Scan" in line for line in plan), plan
        return
    shown = [line.strip() for line in plan if "Scan" in line or "Execution Time" in line]
    print(f"\n{filters}, first page's plan:\n  " + "\n  ".join(shown))


#: N cases opened over the year before now: four teams, 40 owners, four in five contacted
#: (within 0–96 hours), three in five of those resolved (within 0–10 days), a 48-hour deadline.
FIGURE_CASES = """
INSERT INTO followup.cases (case_id, response_id, source, survey_id, customer_id, segment, score,
    status, opened_at, due_at, first_contact_at, resolved_at, rule, team, owner, latest_score,
    recovered)
SELECT gen_random_uuid(), gen_random_uuid(),
    (ARRAY['delighted', 'typeform', 'hubspot', 'api'])[1 + i % 4], 'bench', 'f' || i,
    CASE WHEN i % 10 < 8 THEN 'detractor' ELSE 'passive' END, i % 9,
    CASE WHEN t.contact IS NULL THEN 'open' WHEN t.resolve IS NULL THEN 'contacted'
        WHEN i % 3 = 0 THEN 'resolved' ELSE 'closed' END,
    t.opened, t.opened + interval '48 hours', t.opened + t.contact,
    t.opened + t.contact + t.resolve, 'detractor',
    (ARRAY['customer-success', 'enterprise', 'emea', 'apac'])[1 + i % 4],
    'member' || (i % 40) || '@example.com',
    CASE WHEN i % 7 = 0 THEN i % 11 END, i % 7 = 0 AND i % 11 >= 9
FROM generate_series(1, CAST(:n AS integer)) AS i,
    LATERAL (SELECT CAST(:now AS timestamptz) - make_interval(secs => (CAST(i AS bigint) * 7919) % 31536000) AS opened,
        CASE WHEN i % 5 <> 0 THEN make_interval(secs => (CAST(i AS bigint) * 104729) % 345600) END AS contact,
        CASE WHEN i % 5 <> 0 AND i % 5 <> 1 AND i % 5 <> 2 OR i % 10 = 1
            THEN make_interval(secs => (CAST(i AS bigint) * 15485863) % 864000) END AS resolve) t
"""


async def figures_at_scale(url: str, n: int, repeat: int) -> None:
    """The 365-day dashboard's closed-loop figures at `n` cases, no HTTP."""
    engine = create_async_engine(url, pool_size=4)
    now = datetime.now(UTC)
    print(f"generating {n:,} cases opened over the past year …")
    await timed("cases", FIGURE_CASES, engine, now=now, n=n)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE followup.cases"))
    sessions = session_factory(engine)
    start = now - timedelta(days=365)

    async def one(group_by: list[str]) -> None:
        async with sessions() as session:
            await figures(
                FollowupRepository(session), group_by=group_by, start=start, end=now, now=now
            )

    async def latency(what: str, calls: list[list[str]]) -> None:
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            await asyncio.gather(*(one(g) for g in calls))
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
        print(f"  {what}: p50 {statistics.median(samples):.1f} ms, p95 {p95:.1f} ms")

    print(f"\nthe 365-day figures, {repeat} calls each:")
    await latency("by team", [["team"]])
    await latency("by owner", [["owner"]])
    await latency(
        "by team and by owner, two passes at once (the console before)", [["team"], ["owner"]]
    )
    await latency(
        "by team and by owner, one GROUPING SETS pass (the console now)", [["team", "owner"]]
    )

    async def in_turn() -> None:
        await one(["team"])
        await one(["owner"])

    turns = []
    for _ in range(repeat):
        started = time.perf_counter()
        await in_turn()
        turns.append((time.perf_counter() - started) * 1000)
    print(
        "  by team, then by owner, one after the other (the work of two passes): "
        f"p50 {statistics.median(turns):.1f} ms"
    )
    async with sessions() as session:
        captured: list[Any] = []

        class Capture:
            def __init__(self, real: Any) -> None:
                self.real = real

            async def execute(self, statement: Any) -> Any:
                captured.append(statement)
                return await self.real.execute(statement)

        await closed_loop_figures(
            Capture(session),  # type: ignore[arg-type]
            groupings=["team", "owner"],
            start=start,
            end=now,
            now=now,
        )
        sql = captured[0].compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        plan = (await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))).scalars().all()
    print("\nthe one pass's plan:\n  " + "\n  ".join(plan))
    await engine.dispose()


_PATHS_UPDATE = text(
    "UPDATE scratch AS x SET state = u.state, reason = u.reason, at = CAST(:at AS timestamptz) "
    "FROM unnest(CAST(:id AS uuid[]), CAST(:state AS text[]), CAST(:reason AS text[])) "
    "AS u(id, state, reason) WHERE x.id = u.id RETURNING x.id"
)


async def paths(url: str, repeat: int) -> None:
    """One statement shaped as notify's results (`UPDATE … FROM unnest(…) RETURNING` of 500
    rows) through the ORM session and on the transaction's asyncpg connection (followup's
    `nps_kit.db.driver_fetch`), alternating, `repeat` transactions each after ten to warm up:
    this process's CPU per transaction; then the first statement on a new connection."""
    engine = create_async_engine(url, pool_size=2)
    ids = [uuid.uuid4() for _ in range(500)]
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TABLE scratch (id uuid PRIMARY KEY, state text, reason text, at timestamptz)"
            )
        )
        await conn.execute(
            text("INSERT INTO scratch SELECT unnest(CAST(:id AS uuid[]))"), {"id": ids}
        )
    params = {"id": ids, "state": ["sent"] * 500, "reason": [None] * 500, "at": datetime.now(UTC)}

    async def through_session(sessions: Any) -> None:
        async with unit_of_work(sessions) as session:
            set((await session.execute(_PATHS_UPDATE, params)).scalars())

    async def on_driver(sessions: Any) -> None:
        async with unit_of_work(sessions) as session:
            {row[0] for row in await driver_fetch(session, _PATHS_UPDATE, params)}

    sessions = session_factory(engine)
    print(f"\none UPDATE … FROM unnest(…) RETURNING of 500 rows, {repeat} transactions each:")
    for name, way in [("session", through_session), ("driver", on_driver)] * 3:
        for _ in range(10):
            await way(sessions)
        cpu = time.process_time()
        for _ in range(repeat):
            await way(sessions)
        per = (time.process_time() - cpu) * 1000 / repeat
        print(f"  {name}: {per:.3f} ms of this process per transaction; {load()}")
    for name, way in [("session", through_session), ("driver", on_driver)] * 2:
        fresh = create_async_engine(url, pool_size=1)
        async with fresh.connect() as conn:
            await conn.execute(text("SELECT 1"))
        cpu = time.process_time()
        await way(session_factory(fresh))
        print(f"  {name}, first on a new connection: {(time.process_time() - cpu) * 1000:.3f} ms")
        await fresh.dispose()
    await engine.dispose()


INDEX_USAGE = """
SELECT i.relname, i.indexrelname, i.idx_scan, pg_relation_size(i.indexrelid)
FROM pg_stat_user_indexes i WHERE i.schemaname = 'followup' AND i.relname IN
    ('cases', 'actions', 'timers', 'timeline')
ORDER BY i.relname, i.indexrelname
"""

TABLE_UPDATES = """
SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
WHERE schemaname = 'followup' AND relname IN ('cases', 'actions', 'timers', 'timeline')
ORDER BY relname
"""


async def index_usage(url: str) -> None:
    """Which of followup's indexes the run scanned (`pg_stat_user_indexes.idx_scan`, counted
    since the schema was created, the generation's statements included) and how many updates
    were HOT (no index written: `pg_stat_user_tables.n_tup_hot_upd`), `--index-usage`."""
    engine = create_async_engine(url, pool_size=1)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_stat_force_next_flush()"))
        indexes = (await conn.execute(text(INDEX_USAGE))).all()
        tables = (await conn.execute(text(TABLE_UPDATES))).all()
    await engine.dispose()
    print("\nindex scans (pg_stat_user_indexes):")
    for table, index, scans, size in indexes:
        print(f"  {table:9} {index:40} {scans:>10,} scans  {size / 2**20:8.1f} MB")
    print("rows written (pg_stat_user_tables): inserted, updated, of them HOT:")
    for table, inserted, updated, hot in tables:
        print(f"  {table:9} {inserted:>10,} {updated:>10,} {hot:>10,}")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument(
        "--only",
        choices=["queue", "figures", "writes", "escalations", "paths", "opening"],
        help="queue: only the console's queue, at --cases open or contacted cases; figures: "
        "only the dashboard's closed-loop figures, at --cases cases over a year; writes: only "
        "the escalations and opening cases (no API queries); escalations: only the escalations; paths: one statement of 500 rows "
        "through the session and on the driver connection, alternating; opening: only "
        "open_cases, --batches batches of --size",
    )
    parser.add_argument("--batches", type=int, default=30, help="--only opening: batches")
    parser.add_argument("--size", type=int, default=500, help="--only opening: batch size")
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of the escalations and of opening here"
    )
    parser.add_argument("--closed", type=int, default=100_000, help="--only queue: finished")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument(
        "--wal",
        action="store_true",
        help="--only opening: what the batches wrote to WAL, by table and index (pg_walinspect)",
    )
    parser.add_argument(
        "--index-usage",
        action="store_true",
        help="at the end, print the scans of followup's indexes and the HOT updates",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once the tables are generated, as the services do after start-up",
    )
    parser.add_argument(
        "--gc-threshold", type=int, help="the collector's first threshold (gc.set_threshold)"
    )
    parser.add_argument("--sweepers", type=int, default=2, help="sweepers side by side")
    parser.add_argument(
        "--sweep-batch", type=int, default=500, help="timers per sweep (`sweep_batch_size`)"
    )
    parser.add_argument(
        "--waits",
        action="store_true",
        help="sample the backends' wait events every 10 ms during the escalations; with "
        "--pg-setting shared_preload_libraries=pg_stat_statements, also the escalations' "
        "statements with their pages and WAL",
    )
    parser.add_argument(
        "--checkpoint",
        action="store_true",
        help="a CHECKPOINT just before the escalations (every page they change writes its "
        "full image to WAL, as after any checkpoint)",
    )
    parser.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a server parameter for the bench's PostgreSQL (repeat for more), e.g. "
        "shared_buffers=4GB; the defaults otherwise",
    )
    return parser.parse_args()


def main() -> None:
    args = arguments()
    settings = dict(setting.split("=", 1) for setting in args.pg_setting)
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    configure_logging(LogSettings(level="WARNING", format="console"), service="bench")
    # The outbox's headers stored as the service would store them (`DATABASE_OUTBOX_HEADERS`,
    # JSON unless told; trees before the setting have JSON only).
    headers = DatabaseSettings().outbox_headers
    if hasattr(kit_outbox, "use_headers"):
        kit_outbox.use_headers(followup_tables.outbox, headers)
    print(f"outbox headers: {headers if hasattr(kit_outbox, 'use_headers') else 'json'}")
    policy_model = load_policy(None)
    policy = PolicyInForce(policy=policy_model, holidays_for=holidays_for(policy_model))
    tmp = scratch_dir("bench-followup-")
    postgres = EmbeddedPostgres(data_dir=tmp / "pg", port=free_port(), settings=settings)
    postgres.start()
    print(f"server settings: {settings or 'the defaults'}")
    PG_DATA.append(postgres.data_dir)
    try:
        upgrade("nps_followup", postgres.url)
        if args.only == "figures":
            asyncio.run(figures_at_scale(postgres.url, args.cases, min(args.repeat, 50)))
        elif args.only == "queue":
            asyncio.run(queue(postgres.url, args.cases, args.closed, args.repeat, policy))
        elif args.only == "paths":
            asyncio.run(paths(postgres.url, args.repeat))
        elif args.only == "opening":
            asyncio.run(
                opening_only(postgres.url, args.batches, args.size, policy, by_relation=args.wal)
            )
        else:
            asyncio.run(
                run(
                    postgres.url,
                    args.cases,
                    args.due,
                    policy,
                    api_queries=args.only not in ("writes", "escalations"),
                    profile=args.profile,
                    freeze=args.gc_freeze,
                    sweepers=args.sweepers,
                    batch_size=args.sweep_batch,
                    waits=args.waits,
                    checkpoint=args.checkpoint,
                    opening_too=args.only != "escalations",
                )
            )
        if args.index_usage:
            time.sleep(1)  # the engines' backends report their statistics as they exit
            asyncio.run(index_usage(postgres.url))
    finally:
        postgres.stop()
    print(f"\n(run id {uuid.uuid4().hex[:6]})")


if __name__ == "__main__":
    main()
