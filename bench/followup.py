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
"""

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine

from nps_events import Customer, ResponseScored, Segment
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import load_policy
from nps_followup.adapters.repository import FollowupRepository, due_timers_query
from nps_followup.domain.access import CaseScope
from nps_followup.domain.cases import CaseStatus
from nps_followup.entrypoints.sweeper import Sweeper
from nps_followup.handlers import PolicyInForce, figures, get_case, list_cases, open_cases
from nps_kit.clock import SystemClock
from nps_kit.db import session_factory, unit_of_work
from nps_kit.devstack import EmbeddedPostgres, free_port
from nps_kit.logging import configure_logging
from nps_kit.migrations import upgrade
from nps_kit.settings import LogSettings

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


async def run(url: str, n: int, due: int, policy: PolicyInForce) -> None:
    engine = create_async_engine(url, pool_size=8)
    await generate(engine, n, due)
    await explain(engine)
    await escalate(engine, due, policy)
    await api(engine)
    await opening(engine, policy)
    await engine.dispose()


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


async def escalate(engine: Any, due: int, policy: PolicyInForce) -> None:
    sessions = session_factory(engine)
    sweepers = [
        Sweeper(
            sessions=sessions,
            relay=None,
            clock=SystemClock(),
            policy=policy,
            interval=0.05,
            batch_size=500,
        )
        for _ in range(2)
    ]

    async def drain(sweeper: Sweeper) -> int:
        total = 0
        while fired := await sweeper.sweep_once():
            total += fired
        return total

    started = time.perf_counter()
    fired = await asyncio.gather(*(drain(s) for s in sweepers))
    elapsed = time.perf_counter() - started
    print(
        f"\nescalated {sum(fired):,} due cases with 2 sweepers {fired}: {elapsed:.1f} s "
        f"({sum(fired) / elapsed:,.0f} timers/s)"
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
            owner=f"member{i % 20}@example.com",
        ),
        100,
    )
    active = [CaseStatus.OPEN, CaseStatus.CONTACTED]
    for page in (1, 20):
        await latency(
            f"GET /v1/cases?sort=urgency&status=open&status=contacted (the console's queue, "
            f"page {page} of 26)",
            lambda repo, i, page=page: list_cases(
                repo,
                customer_id=None,
                status=active,
                limit=26,
                offset=(page - 1) * 25,
                urgent_first_at=datetime.now(UTC),
            ),
            100,
        )
    await latency(
        "the same, an agent's team scope",
        lambda repo, i: list_cases(
            repo,
            customer_id=None,
            status=active,
            limit=26,
            offset=0,
            scope=CaseScope(teams=frozenset({"customer-success"}), person="member1@example.com"),
            urgent_first_at=datetime.now(UTC),
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


async def opening(engine: Any, policy: PolicyInForce) -> None:
    """The consumer's use case on top of the 1M cases: responses per second by batch size
    (the runner hands it what one `getmany` returned for a partition)."""
    sessions = session_factory(engine)
    print("\nopening cases (open_cases, one transaction per batch; scores 0–10 evenly):")
    for size in (1, 10, 100, 500):
        batches = max(2, 2000 // size)
        started = time.perf_counter()
        for b in range(batches):
            batch = [_scored(f"open{size}-{b}", i) for i in range(size)]
            async with unit_of_work(sessions) as session:
                await open_cases(
                    FollowupRepository(session), batch, now=datetime.now(UTC), policy=policy
                )
        rate = batches * size / (time.perf_counter() - started)
        print(f"  batches of {size}: {rate:,.0f} responses/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    args = parser.parse_args()
    configure_logging(LogSettings(level="WARNING", format="console"), service="bench")
    policy_model = load_policy(None)
    policy = PolicyInForce(policy=policy_model, holidays_for=holidays_for(policy_model))
    tmp = Path(tempfile.mkdtemp(prefix="bench-followup-"))
    postgres = EmbeddedPostgres(data_dir=tmp / "pg", port=free_port())
    postgres.start()
    try:
        upgrade("nps_followup", postgres.url)
        asyncio.run(run(postgres.url, args.cases, args.due, policy))
    finally:
        postgres.stop()
    print(f"\n(run id {uuid.uuid4().hex[:6]}, data in {tmp})")


if __name__ == "__main__":
    main()
