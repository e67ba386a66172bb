"""The console's pages with many open cases, against a running dev stack (`make up`):
signs in as an agent through the dev identity provider, adds N open detractor cases to
followup's table (server-side, source `bench-console`, removed afterwards), and times the
queue (first and a later page), a case page (with the customer's score history: N answers
of that customer in scoring's table, also removed afterwards) and the dashboard as a lead
(this period against the previous one, themes, figures by team and by owner), each a whole
request as a browser makes it: console → followup and scoring → PostgreSQL, over loopback.

    make up
    .venv/bin/python bench/console.py --cases 50000
"""

import argparse
import asyncio
import html
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

GENERATE = """
INSERT INTO followup.cases (case_id, response_id, source, survey_id, customer_id, customer_email,
    customer_name, segment, score, comment, status, opened_at, due_at, remind_at, second_level_at,
    rule, team, owner)
SELECT gen_random_uuid(), gen_random_uuid(), 'bench-console', 'bench', 'bc' || i,
    'bc' || i || '@example.com', 'Customer ' || i, 'detractor', i % 7, 'Slow exports',
    CASE WHEN i % 5 = 0 THEN 'contacted' ELSE 'open' END,
    CAST(:now AS timestamptz) - make_interval(mins => i % 4320),
    CAST(:now AS timestamptz) + make_interval(hours => i % 96 - 24),
    CAST(:now AS timestamptz) + make_interval(hours => i % 96 - 28),
    CAST(:now AS timestamptz) + make_interval(hours => i % 96 + 8), 'detractor',
    'customer-success', CASE WHEN i % 2 = 0 THEN 'alex@example.com' ELSE 'sam@example.com' END
FROM generate_series(1, CAST(:n AS integer)) AS i
"""
REMOVE = "DELETE FROM followup.cases WHERE source = 'bench-console'"
#: The measured case's customer answered before: `history` responses over the past years.
HISTORY = """
INSERT INTO scoring.responses (response_id, source, survey_id, customer_id, score, segment,
    comment, responded_at, scored_at, themes, attributes)
SELECT gen_random_uuid(), 'bench-console', 'bench', :customer, i % 11,
    CASE WHEN i % 11 >= 9 THEN 'promoter' WHEN i % 11 >= 7 THEN 'passive' ELSE 'detractor' END,
    'Answer ' || i, CAST(:now AS timestamptz) - make_interval(days => i * 30),
    CAST(:now AS timestamptz) - make_interval(days => i * 30), ARRAY['speed'], '{}'::jsonb
FROM generate_series(1, CAST(:n AS integer)) AS i
"""
REMOVE_HISTORY = "DELETE FROM scoring.responses WHERE source = 'bench-console'"
#: A year of answers before now, generated server-side: four sources (`bench-console` among
#: them, so a source filter meets the cases above), ten surveys, scores 0–10 evenly, three in
#: five with a comment and 0–2 themes, `plan` and `region` attributes.
YEAR = """
INSERT INTO scoring.responses (response_id, source, survey_id, customer_id, score, segment,
    comment, responded_at, scored_at, themes, attributes)
SELECT gen_random_uuid(), (ARRAY['bench-console', 'bench-web', 'bench-app', 'bench-email'])[1 + i % 4],
    'survey-' || (1 + i % 10), 'by' || (i % 250000), s,
    CASE WHEN s >= 9 THEN 'promoter' WHEN s >= 7 THEN 'passive' ELSE 'detractor' END,
    CASE WHEN i % 5 < 3 THEN 'Answer ' || i END, at, at,
    CASE WHEN i % 5 < 2 THEN (ARRAY['price', 'support', 'delivery', 'performance', 'reliability',
        'onboarding', 'ease_of_use'])[1 + i % 7:1 + i % 7 + (i / 7) % 2]
        WHEN i % 5 = 2 THEN ARRAY[]::varchar[] END,
    jsonb_build_object('plan', (ARRAY['free', 'pro', 'enterprise'])[1 + i % 3],
        'region', (ARRAY['eu', 'us', 'apac', 'latam'])[1 + (i / 3) % 4])
FROM (
    SELECT i, CAST((CAST(i AS bigint) * 7919) % 11 AS integer) AS s,
        CAST(:now AS timestamptz) - make_interval(secs => (CAST(i AS bigint) * 104729) % 31536000) AS at
    FROM generate_series(1, CAST(:n AS integer)) AS i
) AS year
"""
REMOVE_YEAR = "DELETE FROM scoring.responses WHERE source LIKE 'bench-%' AND customer_id LIKE 'by%'"


async def sign_in(client: httpx.AsyncClient, person: str) -> None:
    started = await client.get("/sign-in")
    authorize = urlsplit(started.headers["location"])
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    async with httpx.AsyncClient() as browser:
        chosen = await browser.post(
            f"{authorize.scheme}://{authorize.netloc}{authorize.path}",
            data={**params, "user": person},
        )
    back = urlsplit(chosen.headers["location"])
    done = await client.get(f"{back.path}?{back.query}")
    assert done.status_code == 303, done.text


async def timed(client: httpx.AsyncClient, what: str, path: str, repeat: int) -> None:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = await client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    samples.sort()
    p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
    print(
        f"  {what}: p50 {statistics.median(samples):.1f} ms, p95 {p95:.1f} ms ({repeat} requests)"
    )


async def run(args: argparse.Namespace) -> None:
    engine = create_async_engine(args.database)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(REMOVE))
            await conn.execute(text(REMOVE_HISTORY))
            started = time.perf_counter()
            await conn.execute(text(GENERATE), {"now": datetime.now(UTC), "n": args.cases})
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE followup.cases"))
            active = await conn.scalar(
                text("SELECT count(*) FROM followup.cases WHERE status IN ('open', 'contacted')")
            )
            some, customer = (
                await conn.execute(
                    text(
                        "SELECT case_id, customer_id FROM followup.cases "
                        "WHERE source = 'bench-console' LIMIT 1"
                    )
                )
            ).one()
            await conn.execute(
                text(HISTORY), {"customer": customer, "now": datetime.now(UTC), "n": args.history}
            )
        print(
            f"{args.cases:,} cases added in {time.perf_counter() - started:.1f} s; {active:,} open or contacted"
        )
        if args.responses:
            await add_year(engine, args)
        async with httpx.AsyncClient(base_url=args.console, timeout=30) as client:
            await sign_in(client, args.person)
            print(f"as {args.person}:")
            await timed(client, "GET /cases (the queue, page 1)", "/cases", args.requests)
            page = "/cases"
            for _ in range(19):  # the "Next page" links, as a person follows them
                found = re.search(r'<a href="([^"]+)" rel="next"', (await client.get(page)).text)
                assert found, "no next page"
                page = html.unescape(found.group(1))
            await timed(client, "GET /cases?cursor=…&page=20", page, args.requests)
            await timed(
                client,
                "GET /cases?owner=… (filtered)",
                "/cases?owner=alex%40example.com",
                args.requests,
            )
            await timed(
                client,
                "GET /cases?customer=…&score_max=3 (search)",
                "/cases?customer=customer+4242&score_max=3",
                args.requests,
            )
            await timed(client, "GET /cases/{id}", f"/cases/{some}", args.requests)
        await time_dashboards(args)
        if args.apis:
            await time_apis(args, max(5, args.requests // 2))
    finally:
        if not args.keep:
            async with engine.begin() as conn:
                await conn.execute(text(REMOVE))
                await conn.execute(text(REMOVE_HISTORY))
                if args.responses:
                    await conn.execute(text(REMOVE_YEAR))
        await engine.dispose()
        if args.responses and not args.keep:
            rebuild_figures(args.database)


async def time_dashboards(args: argparse.Namespace) -> None:
    """The dashboard as a lead (who also gets the figures by owner), and the policy page."""
    async with httpx.AsyncClient(base_url=args.console, timeout=30) as client:
        await sign_in(client, args.lead)
        print(f"as {args.lead}:")
        dashboards = max(5, args.requests // 2)
        await timed(client, "GET /dashboard (30 days)", "/dashboard", dashboards)
        await timed(
            client,
            "GET /dashboard?days=7&team=…&segment=detractor",
            "/dashboard?days=7&team=customer-success&segment=detractor",
            dashboards,
        )
        await timed(client, "GET /dashboard?days=365", "/dashboard?days=365", dashboards)
        await timed(
            client,
            "GET /dashboard?days=30&source=bench-console",
            "/dashboard?days=30&source=bench-console",
            dashboards,
        )
        await timed(
            client,
            "GET /dashboard?days=365&source=bench-console&segment=detractor",
            "/dashboard?days=365&source=bench-console&segment=detractor",
            dashboards,
        )
        for what, path in (
            ("survey=survey-3 (30 days)", "/dashboard?days=30&survey=survey-3"),
            ("attribute=plan:pro (365 days)", "/dashboard?days=365&attribute=plan%3Apro"),
        ):
            await timed(client, f"GET /dashboard?{what}", path, dashboards)
        await timed(client, "GET /policy", "/policy", args.requests)


async def time_apis(args: argparse.Namespace, repeat: int) -> None:
    """The five calls of the lead's 365-day dashboard one by one, straight to the APIs with
    the lead's token from the dev identity provider: where the page's time goes."""
    token = args.token
    today = datetime.now(UTC).date()
    this_first, previous_first = today - timedelta(days=364), today - timedelta(days=729)
    start = datetime.combine(this_first, datetime.min.time(), UTC).isoformat()
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC).isoformat()
    calls: dict[str, tuple[str, str, dict[str, str | list[str]]]] = {
        "scoring GET /v1/nps?grain=month": (args.scoring, "/v1/nps", {"grain": "month"}),
        "scoring GET /v1/nps/compare": (
            args.scoring,
            "/v1/nps/compare",
            {
                "a_from": previous_first.isoformat(),
                "a_to": (this_first - timedelta(days=1)).isoformat(),
                "b_from": this_first.isoformat(),
                "b_to": today.isoformat(),
            },
        ),
        "scoring GET /v1/themes?grain=month": (
            args.scoring,
            "/v1/themes",
            {"grain": "month", "from": previous_first.isoformat(), "to": today.isoformat()},
        ),
        "followup GET /v1/figures?group_by=team": (
            args.followup,
            "/v1/figures",
            {"group_by": "team", "start": start, "end": end},
        ),
        "followup GET /v1/figures?group_by=owner": (
            args.followup,
            "/v1/figures",
            {"group_by": "owner", "start": start, "end": end},
        ),
        "followup GET /v1/figures?group_by=team&group_by=owner (what the console asks)": (
            args.followup,
            "/v1/figures",
            {"group_by": ["team", "owner"], "start": start, "end": end},
        ),
    }
    print("the 365-day dashboard's calls, one at a time:")
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        for what, (base, path, params) in calls.items():
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                answer = await api.get(f"{base}{path}", params=params)
                samples.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (what, answer.status_code, answer.text[:300])
            samples.sort()
            p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
            print(f"  {what}: p50 {statistics.median(samples):.1f} ms, p95 {p95:.1f} ms")


async def add_year(engine: AsyncEngine, args: argparse.Namespace) -> None:
    """A year of answers in scoring's table, and scoring's figures rebuilt from them."""
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text(REMOVE_YEAR))
        await conn.execute(text(YEAR), {"now": datetime.now(UTC), "n": args.responses})
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE scoring.responses"))
        total = await conn.scalar(text("SELECT count(*) FROM scoring.responses"))
    print(f"{args.responses:,} responses added in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    rebuild_figures(args.database)
    print(
        f"scoring's figures rebuilt over {total:,} responses in {time.perf_counter() - started:.1f} s"
    )


def rebuild_figures(database: str) -> None:
    """`nps-scoring rebuild-figures`, as an operator runs it, on the dev stack's database."""
    subprocess.run(
        [sys.executable, "-m", "nps_scoring", "rebuild-figures"],
        env={**os.environ, "DATABASE_URL": database, "LOG_LEVEL": "WARNING"},
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--console", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--database", default="postgresql+asyncpg://postgres@127.0.0.1:55432/npsloop"
    )
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--person", default="alex@example.com")
    parser.add_argument("--lead", default="cs-lead@example.com")
    parser.add_argument(
        "--responses", type=int, default=0, help="a year of answers in scoring (then removed)"
    )
    parser.add_argument("--scoring", default="http://127.0.0.1:8002")
    parser.add_argument("--followup", default="http://127.0.0.1:8003")
    parser.add_argument("--apis", action="store_true", help="also time the APIs one by one")
    parser.add_argument("--keep", action="store_true", help="leave the data in (for EXPLAIN)")
    parser.add_argument("--history", type=int, default=20, help="the customer's answers")
    args = parser.parse_args()
    # The lead's own token from the dev identity provider (`make token`), for --apis.
    args.token = (
        subprocess.run(
            [sys.executable, "-m", "nps_kit.devstack", "token", "--user", args.lead],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if args.apis
        else ""
    )
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
