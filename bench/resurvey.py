"""Re-surveys at scale: the sweeper asking N closed cases' customers again, and their answers
linked back to the cases.

Starts an embedded PostgreSQL, migrates followup's schema, and generates (server-side) N
closed detractor cases whose re-survey timer is due now; a tenth of their customers answered
again since the case closed and another tenth are on the do-not-contact list (both are
skipped, with the reason on the timeline). Then it measures:
- asking again with two sweepers side by side (as two replicas would): each re-survey writes
  its timeline entry, its `followup.resurveys` row and its event in the outbox;
- the customers' answers (9, promoters now) through `open_cases` in batches of 500: each is
  attached to the closed case as the re-survey's answer (and opens the promoter's automated
  case), which costs the opening path one more query per batch (timed on its own too).
With `--webhook NAME` the policy also has `resurvey_webhook: NAME`: each re-survey also plans
the survey tool's call (an action row and a second outbox event). CPU per timer is this
process's (`time.process_time`, the two sweepers' Python), PostgreSQL's apart.

    .venv/bin/python bench/resurvey.py --cases 10000 [--webhook survey_tool]
"""

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from nps_events import Customer, ResponseScored, Segment
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.entrypoints.sweeper import Sweeper
from nps_followup.handlers import PolicyInForce, open_cases
from nps_kit.clock import SystemClock
from nps_kit.db import session_factory, unit_of_work
from nps_kit.devstack import EmbeddedPostgres, free_port, scratch_dir
from nps_kit.logging import configure_logging
from nps_kit.migrations import upgrade
from nps_kit.settings import LogSettings

CASES = """
INSERT INTO followup.cases (case_id, response_id, source, survey_id, customer_id, customer_email,
    segment, score, comment, status, opened_at, due_at, first_contact_at, resolved_at,
    closed_at, rule, team, owner)
SELECT gen_random_uuid(), gen_random_uuid(), 'bench', 'bench', 'c' || i, 'c' || i || '@example.com',
    'detractor', i % 7, 'bench', 'closed', CAST(:now AS timestamptz) - interval '35 days',
    CAST(:now AS timestamptz) - interval '33 days', CAST(:now AS timestamptz) - interval '34 days',
    CAST(:now AS timestamptz) - interval '31 days', CAST(:now AS timestamptz) - interval '30 days',
    'detractor', 'customer-success', 'member' || (i % 20) || '@example.com'
FROM generate_series(1, CAST(:n AS integer)) AS i
"""

TIMERS = """
INSERT INTO followup.timers (timer_id, case_id, kind, fire_at, state)
SELECT gen_random_uuid(), c.case_id, 'resurvey', CAST(:now AS timestamptz) - interval '1 minute',
    'pending'
FROM followup.cases c
"""

# A tenth answered again since their case closed (the response the case was opened for is
# recorded too, for everyone: what the consumer keeps for `policy simulate`).
ANSWERS = """
INSERT INTO followup.scored_responses (response_id, customer_id, source, survey_id, segment,
    score, revision, responded_at, received_at, backfill, has_email, has_phone)
SELECT gen_random_uuid(), 'c' || i, 'bench', 'bench', 'passive', 7, 1,
    CAST(:now AS timestamptz) - make_interval(days => CASE WHEN i % 10 = 0 THEN 2 ELSE 35 END),
    CAST(:now AS timestamptz) - interval '2 days', false, true, false
FROM generate_series(1, CAST(:n AS integer)) AS i
"""

OPTED_OUT = """
INSERT INTO followup.do_not_contact (customer_id, scope, source, reason, at)
SELECT 'c' || i, 'all', 'bench', 'unsubscribed', CAST(:now AS timestamptz) - interval '3 days'
FROM generate_series(1, CAST(:n AS integer)) AS i WHERE i % 10 = 5
"""


async def timed(what: str, statement: str, engine: Any, **params: object) -> None:
    started = time.perf_counter()
    async with engine.begin() as conn:
        result = await conn.execute(text(statement), params)
    print(f"  {what}: {result.rowcount:,} rows in {time.perf_counter() - started:.1f} s")


async def count(engine: Any, statement: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(statement)) or 0)


async def run(url: str, n: int, policy: PolicyInForce, *, webhook: bool) -> None:
    engine = create_async_engine(url, pool_size=8)
    now = datetime.now(UTC)
    print(f"generating {n:,} closed cases with their re-survey due …")
    for what, statement in (
        ("cases", CASES),
        ("timers", TIMERS),
        ("scored responses", ANSWERS),
        ("do not contact", OPTED_OUT),
    ):
        await timed(what, statement, engine, now=now, n=n)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))

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

    started, cpu = time.perf_counter(), time.process_time()
    fired = await asyncio.gather(*(drain(s) for s in sweepers))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    requested = await count(engine, "SELECT count(*) FROM followup.resurveys")
    skipped = await count(
        engine, "SELECT count(*) FROM followup.timeline WHERE kind = 'resurvey_skipped'"
    )
    queued = await count(engine, "SELECT count(*) FROM followup.outbox")
    calls = await count(engine, "SELECT count(*) FROM followup.actions WHERE channel = 'webhook'")
    print(
        f"\nasked again: {sum(fired):,} timers with 2 sweepers {fired} in {elapsed:.1f} s "
        f"({sum(fired) / elapsed:,.0f} timers/s, {cpu / sum(fired) * 1e6:.0f} µs of this "
        f"process's CPU per timer); requested {requested:,}, skipped {skipped:,}, events "
        f"queued {queued:,}, survey tool calls planned {calls:,}"
    )
    expected_calls = requested if webhook else 0
    assert (requested, skipped, queued, calls) == (
        n - 2 * (n // 10),
        2 * (n // 10),
        requested + expected_calls,
        expected_calls,
    )

    async with engine.connect() as conn:
        customers = (
            (await conn.execute(text("SELECT customer_id FROM followup.resurveys"))).scalars().all()
        )
    async with engine.connect() as conn:
        case_ids = (
            (await conn.execute(text("SELECT case_id FROM followup.resurveys LIMIT 500")))
            .scalars()
            .all()
        )
    lookups = []
    for _ in range(20):
        async with sessions() as session:
            started = time.perf_counter()
            await FollowupRepository(session).awaiting_resurvey_answer(case_ids)
            lookups.append(time.perf_counter() - started)
    print(
        "the opening path's extra query (re-surveys awaiting an answer, 500 cases): median "
        f"{sorted(lookups)[10] * 1000:.1f} ms"
    )

    answered = datetime.now(UTC)
    batches = [customers[i : i + 500] for i in range(0, len(customers), 500)]
    times = []
    for batch in batches:
        responses = [
            ResponseScored(
                response_id=uuid.uuid4(),
                source="bench",
                survey_id="bench",
                customer=Customer(id=c, email=f"{c}@example.com"),
                score=9,
                segment=Segment.PROMOTER,
                responded_at=answered,
                scored_at=answered,
                received_event_id=uuid.uuid4(),
            )
            for c in batch
        ]
        started = time.perf_counter()
        async with unit_of_work(sessions) as session:
            await open_cases(
                FollowupRepository(session), responses, now=datetime.now(UTC), policy=policy
            )
        times.append(time.perf_counter() - started)
    linked = await count(
        engine, "SELECT count(*) FROM followup.resurveys WHERE answered_at IS NOT NULL"
    )
    recovered = await count(engine, "SELECT count(*) FROM followup.cases WHERE recovered")
    total = sum(times)
    print(
        f"answers linked: {linked:,} in {len(batches)} batches of ≤500 in {total:.1f} s "
        f"({len(customers) / total:,.0f} answers/s; median batch "
        f"{sorted(times)[len(times) // 2] * 1000:.0f} ms); cases recovered {recovered:,}"
    )
    assert linked == recovered == len(customers)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--webhook", help="resurvey_webhook: the survey tool's endpoint name")
    args = parser.parse_args()
    configure_logging(LogSettings(level="WARNING", format="console"), service="bench")
    webhook = f"resurvey_webhook: {args.webhook}\n" if args.webhook else ""
    policy_model = parse_policy(default_policy_text() + "resurvey_after: 30 days\n" + webhook)
    policy = PolicyInForce(policy=policy_model, holidays_for=holidays_for(policy_model))
    tmp = scratch_dir("bench-resurvey-")
    postgres = EmbeddedPostgres(data_dir=tmp / "pg", port=free_port())
    postgres.start()
    try:
        upgrade("nps_followup", postgres.url)
        asyncio.run(run(postgres.url, args.cases, policy, webhook=bool(args.webhook)))
    finally:
        postgres.stop()
    print(f"\n(run id {uuid.uuid4().hex[:6]})")


if __name__ == "__main__":
    main()
