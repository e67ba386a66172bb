"""`GET /v1/impact` over a year of answers: what the impact figures cost to compute.

Starts an embedded PostgreSQL, migrates followup's schema, generates (server-side) N stored
scored responses spread over 2026 (a third detractors, a quarter passives, the rest
promoters, drawn at random: no follow-up has any effect here, so every comparison with the
holdout should come out inconclusive; customers answering about twice a year, to one of three
surveys), and what
followup would have recorded about them: a case for each detractor (seven in ten reached, at
a time spread over four days against a two-day deadline), an automated case with a sent email
for each passive and promoter, except a tenth of passives held out (set aside as `holdout`).
Then times the route's work (`impact_figures`: the one statement, then the grouping and
statistics in Python) over the whole year, and the two parts apart.

    .venv/bin/python bench/impact.py --responses 100000
"""

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from nps_followup.adapters.impact import ImpactReader
from nps_followup.domain.impact import against_holdout, impact
from nps_followup.handlers.impact import impact_figures
from nps_kit.db import session_factory, unit_of_work
from nps_kit.devstack import EmbeddedPostgres, free_port, scratch_dir
from nps_kit.logging import configure_logging
from nps_kit.migrations import upgrade
from nps_kit.settings import LogSettings

GENERATE = [
    """
INSERT INTO followup.scored_responses (response_id, customer_id, source, survey_id, segment,
    score, revision, responded_at, received_at, backfill, has_email, has_phone)
SELECT gen_random_uuid(), 'c' || (i % CAST(:customers AS integer)), 'bench',
    's-' || (i % CAST(:customers AS integer) % 3),
    CASE WHEN abs(hashtext(i::text)) % 12 < 4 THEN 'detractor'
         WHEN abs(hashtext(i::text)) % 12 < 7 THEN 'passive' ELSE 'promoter' END,
    5, 1, t, t + interval '5 seconds', false, true, false
FROM generate_series(1, CAST(:n AS integer)) AS i,
    LATERAL (SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00'
                    + make_interval(secs => (i::float8 / :n) * 364 * 86400) AS t) AS at
""",
    """
INSERT INTO followup.responses_not_acted_on (response_id, customer_id, source, survey_id,
    segment, score, responded_at, reason, rule, "window", recorded_at)
SELECT response_id, customer_id, source, survey_id, segment, score, responded_at, 'holdout',
    'passive', '7 days', received_at
FROM followup.scored_responses
WHERE segment = 'passive' AND abs(hashtext(customer_id)) % 10 = 0
""",
    """
INSERT INTO followup.cases (case_id, response_id, source, survey_id, customer_id, segment,
    score, status, opened_at, due_at, first_contact_at)
SELECT gen_random_uuid(), s.response_id, s.source, s.survey_id, s.customer_id, s.segment,
    s.score,
    CASE WHEN s.segment = 'detractor' THEN 'contacted' ELSE 'automated' END,
    s.received_at,
    CASE WHEN s.segment = 'detractor' THEN s.received_at + interval '2 days' END,
    CASE WHEN s.segment = 'detractor' AND abs(hashtext(s.response_id::text)) % 10 < 7
         THEN s.received_at + make_interval(hours => abs(hashtext(s.customer_id)) % 96) END
FROM followup.scored_responses s
WHERE NOT EXISTS (SELECT 1 FROM followup.responses_not_acted_on n
                  WHERE n.response_id = s.response_id)
""",
    """
INSERT INTO followup.actions (action_id, case_id, channel, template, state, requested_at,
    updated_at)
SELECT gen_random_uuid(), case_id, 'email', 'education', 'sent', opened_at,
    opened_at + interval '1 day'
FROM followup.cases WHERE status = 'automated'
""",
]
YEAR = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


async def run(url: str, n: int, repeat: int) -> None:
    engine = create_async_engine(url)
    sessions = session_factory(engine)
    began = time.perf_counter()
    async with unit_of_work(sessions) as session:
        for statement in GENERATE:
            await session.execute(text(statement), {"n": n, "customers": n // 2})
    async with engine.connect() as conn:
        for table in ("scored_responses", "cases", "actions", "responses_not_acted_on"):
            await conn.execute(text(f"ANALYZE followup.{table}"))
    print(
        f"generated {n:,} stored responses and their records in {time.perf_counter() - began:.1f} s"
    )

    reading, computing, whole = [], [], []
    for _ in range(repeat):
        async with sessions() as session:
            began = time.perf_counter()
            pairs = await ImpactReader(session).answer_pairs(
                start=YEAR[0], end=YEAR[1], source=None, survey_id=None
            )
            reading.append(time.perf_counter() - began)
        began = time.perf_counter()
        against_holdout(impact(pairs))
        computing.append(time.perf_counter() - began)
        async with sessions() as session:
            began = time.perf_counter()
            found = await impact_figures(ImpactReader(session), start=YEAR[0], end=YEAR[1])
            whole.append(time.perf_counter() - began)

    def said(values: list[float]) -> str:
        return f"{', '.join(f'{v:.2f}' for v in values)} s (median {statistics.median(values):.2f})"

    print(f"{len(pairs):,} answer pairs")
    print(f"reading the pairs (the statement and its rows): {said(reading)}")
    print(f"grouping and statistics: {said(computing)}")
    print(f"impact_figures (the route's work): {said(whole)}")
    for g in found.groups:
        e = g.estimate
        print(
            f"  {g.segment.value:9} {g.done.value:24} n={e.customers:6,} change {e.change:+6.1f} "
            f"± {e.margin or 0:4.1f} {'conclusive' if e.conclusive else e.reason}"
        )
    for c in found.against_holdout:
        print(
            f"  against holdout, {c.segment.value}: {c.effect.change:+.1f} ± {c.effect.margin:.1f}"
        )
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    configure_logging(LogSettings(level="WARNING", format="console"), service="bench")
    tmp = scratch_dir("bench-impact-")
    postgres = EmbeddedPostgres(data_dir=tmp / "pg", port=free_port())
    postgres.start()
    try:
        upgrade("nps_followup", postgres.url)
        asyncio.run(run(postgres.url, args.responses, args.repeat))
    finally:
        postgres.stop()
    print(f"\n(run id {uuid.uuid4().hex[:6]})")


if __name__ == "__main__":
    main()
