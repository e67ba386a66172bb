"""`nps-followup policy simulate` over a year of responses: target 100,000 in under 30 s.

Starts an embedded PostgreSQL, migrates followup's schema, generates (server-side) N stored
scored responses spread over 2026 (a third detractors, a quarter passives, the rest
promoters; customers answering about twice a year; one in ten with a phone number, half of
those consenting to SMS; a few on the do-not-contact list), then times the whole command's
work as `nps-followup policy simulate` does it (`bootstrap.simulate`: read the period in a
read-only transaction, replay the proposed policy and the policy in force), and the reading
and one policy's replay apart.

    .venv/bin/python bench/simulate.py --responses 100000

First, what keeping the record costs the consumer: `record_scored` of batches of 500 inside
their transaction, beside `apply_policy` of batches of 500.

The proposed policy is the shipped default with a 1-business-day contact deadline and an SMS
to every detractor after the email.
"""

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from nps_events import Customer, ResponseScored, Segment
from nps_followup import bootstrap
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, load_policy, parse_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.config import FollowupSettings
from nps_followup.domain.simulation import StoredResponse, simulate
from nps_followup.entrypoints.simulation import to_table
from nps_followup.handlers import PolicyInForce, apply_policy
from nps_kit.db import SessionFactory, session_factory, unit_of_work
from nps_kit.devstack import EmbeddedPostgres, free_port, scratch_dir
from nps_kit.logging import configure_logging
from nps_kit.migrations import upgrade
from nps_kit.settings import DatabaseSettings, LogSettings

GENERATE = """
INSERT INTO followup.scored_responses (response_id, customer_id, source, survey_id, segment,
    score, revision, responded_at, received_at, backfill, has_email, has_phone, timezone,
    attributes)
SELECT gen_random_uuid(), 'c' || (i % CAST(:customers AS integer)), 'bench', 's-' || (i % 3),
    CASE WHEN i % 12 < 4 THEN 'detractor' WHEN i % 12 < 7 THEN 'passive' ELSE 'promoter' END,
    CASE WHEN i % 12 < 4 THEN i % 7 WHEN i % 12 < 7 THEN 7 ELSE 10 END,
    1, t, t + make_interval(secs => 5 + i % 50), false, i % 50 <> 0, i % 10 = 0,
    CASE WHEN i % 4 = 0 THEN 'America/New_York' ELSE NULL END,
    jsonb_build_object('plan', CASE WHEN i % 5 = 0 THEN 'enterprise' ELSE 'team' END,
                       'sms_consent', CASE WHEN i % 20 = 0 THEN 'yes' ELSE 'no' END)
FROM generate_series(1, CAST(:n AS integer)) AS i,
    LATERAL (SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00'
                    + make_interval(secs => (i::float8 / :n) * 364 * 86400) AS t) AS at
"""

OPT_OUTS = """
INSERT INTO followup.do_not_contact (customer_id, scope, source, at)
SELECT 'c' || i, 'all', 'bench', now() FROM generate_series(0, CAST(:customers AS integer), 97) i
"""

PROPOSED = (
    default_policy_text()
    .replace("contact_within: 2 business days", "contact_within: 1 business day")
    .replace("remind_before: 4 business hours", "remind_before: 2 business hours")
    .replace(
        "      - kind: ticket\n",
        "      - kind: sms\n        template: detractor_sms\n        after: 1 hour\n"
        "      - kind: ticket\n",
    )
)


def _batch(tag: str, size: int = 500) -> list[ResponseScored]:
    now = datetime(2026, 11, 24, 10, tzinfo=UTC)
    scores = [(i * 7) % 11 for i in range(size)]
    return [
        ResponseScored(
            response_id=uuid.uuid4(),
            source="bench",
            survey_id="s",
            customer=Customer(
                id=f"{tag}-{i}", email=f"{tag}-{i}@example.com", attributes={"plan": "team"}
            ),
            score=score,
            segment=Segment.DETRACTOR
            if score <= 6
            else Segment.PASSIVE
            if score <= 8
            else Segment.PROMOTER,
            responded_at=now,
            scored_at=now,
            received_event_id=uuid.uuid4(),
        )
        for i, score in enumerate(scores)
    ]


async def record_cost(sessions: SessionFactory, batches: int = 10) -> None:
    """What keeping the record costs the consumer: `record_scored` of a batch of 500 inside
    its transaction, beside `apply_policy` of another batch of 500 (which includes it)."""
    policy = load_policy(None)
    in_force = PolicyInForce(policy=policy, holidays_for=holidays_for(policy))
    recording = applying = 0.0
    for k in range(batches):
        async with unit_of_work(sessions) as session:
            began = time.perf_counter()
            await FollowupRepository(session).record_scored(
                [StoredResponse.of(r, received_at=r.scored_at) for r in _batch(f"r{k}")]
            )
            recording += time.perf_counter() - began
        batch = _batch(f"a{k}")
        async with unit_of_work(sessions) as session:
            began = time.perf_counter()
            await apply_policy(
                FollowupRepository(session), batch, now=batch[0].scored_at, policy=in_force
            )
            applying += time.perf_counter() - began
    per = 1e6 / (batches * 500)
    print(
        f"consumer, batches of 500: record_scored {recording * per:.0f} µs per response; "
        f"apply_policy (including it) {applying * per:.0f} µs per response"
    )
    async with unit_of_work(sessions) as session:
        for table in ("scored_responses", "timeline", "timers", "actions", "cases", "outbox"):
            await session.execute(text(f"DELETE FROM followup.{table}"))  # noqa: S608


async def run(url: str, n: int, tmp: Path, args_repeat: int) -> None:
    engine = create_async_engine(url)
    sessions = session_factory(engine)
    await record_cost(sessions)
    began = time.perf_counter()
    async with unit_of_work(sessions) as session:
        await session.execute(text(GENERATE), {"n": n, "customers": n // 2})
        await session.execute(text(OPT_OUTS), {"customers": n // 2})
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE followup.scored_responses"))
    print(f"generated {n:,} stored responses in {time.perf_counter() - began:.1f} s")

    proposed = tmp / "proposed.yaml"
    proposed.write_text(PROPOSED)
    settings = FollowupSettings(database=DatabaseSettings(url=SecretStr(url)))
    start, end = date(2026, 1, 1), date(2026, 12, 31)

    began = time.perf_counter()
    async with unit_of_work(sessions) as session:
        repo = FollowupRepository(session)
        await repo.read_only()
        stored = await repo.scored_between(
            datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
        )
        opted_out = await repo.all_opt_outs()
    read = time.perf_counter() - began
    policy = parse_policy(PROPOSED)
    began, began_cpu = time.perf_counter(), time.process_time()
    simulate(stored, policy=policy, holidays_for=holidays_for(policy), opted_out=opted_out)
    one, one_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    print(
        f"read {len(stored):,} responses: {read:.2f} s; replay of one policy: {one:.2f} s "
        f"(CPU {one_cpu:.2f} s, {one_cpu / len(stored) * 1e6:.0f} µs per response)"
    )

    timings, cpu = [], []
    for _ in range(args_repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        result = await bootstrap.simulate(settings, proposed, start=start, end=end)
        timings.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    print(
        f"policy simulate, {result.proposed.responses:,} responses, two policies: wall "
        f"{', '.join(f'{t:.1f}' for t in timings)} s (median {statistics.median(timings):.1f} s); "
        f"this process's CPU {', '.join(f'{t:.1f}' for t in cpu)} s (PostgreSQL's apart)"
    )
    print()
    print(to_table(result)[:1600])
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    configure_logging(LogSettings(level="WARNING", format="console"), service="bench")
    tmp = scratch_dir("bench-simulate-")
    postgres = EmbeddedPostgres(data_dir=tmp / "pg", port=free_port())
    postgres.start()
    try:
        upgrade("nps_followup", postgres.url)
        asyncio.run(run(postgres.url, args.responses, tmp, args.repeat))
    finally:
        postgres.stop()
    print(f"\n(run id {uuid.uuid4().hex[:6]})")


if __name__ == "__main__":
    main()
