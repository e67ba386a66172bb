"""Scoring's read API over figures kept by the real handler in a fresh database."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from nps_kit.access import Access
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.http import create_app
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.adapters.taxonomy import load_taxonomy
from nps_scoring.domain.themes import KeywordThemeClassifier
from nps_scoring.entrypoints import api
from nps_scoring.handlers import score_responses
from tests.integration.test_scoring import response
from tests.support.infra import Infra

TAXONOMY = load_taxonomy()
THEMES = KeywordThemeClassifier(TAXONOMY)
MARCH = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday


@pytest.fixture(scope="module")
async def client(
    sessions: SessionFactory, access: Access, infra: Infra
) -> AsyncIterator[httpx.AsyncClient]:
    # February: 2 promoters, 2 detractors (NPS 0); March: 4 promoters, 1 passive, 1 detractor.
    plan = [
        # (customer, score, day offset from 2 March, comment, source, plan)
        ("a", 10, -20, "Fast delivery", "web", "pro"),
        ("b", 9, -19, None, "app", "free"),
        ("c", 2, -18, "Way too expensive", "web", "free"),
        ("d", 3, -17, "Support never answered", "web", "pro"),
        ("a", 10, 0, "Great", "web", "pro"),
        ("b", 9, 1, None, "app", "free"),
        ("c", 9, 2, "Support was helpful", "web", "free"),
        ("d", 1, 3, "Expensive and support was rude", "app", "pro"),
        ("e", 8, 9, "not slow", "web", "pro"),
        ("f", 10, 10, None, "web", "pro"),
    ]
    events = [
        response(
            f"api-{c}",
            f"api-{c}-{i}",
            score,
            days=days,
            comment=comment,
            source=source,
            attributes={"plan": plan_},
        ).model_copy(update={"responded_at": MARCH + timedelta(days=days)})
        for i, (c, score, days, comment, source, plan_) in enumerate(plan)
    ]
    async with unit_of_work(sessions) as session:
        await score_responses(ScoringRepository(session), events, now=MARCH, classifier=THEMES)
    app = create_app(title="t", description="t", version="0", readiness={})
    labels = {t.id: t.label for t in TAXONOMY.themes}
    app.include_router(api.router(sessions=sessions, timezone="UTC", labels=labels, access=access))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://scoring",
        headers=infra.bearer("analyst@example.com"),  # a viewer: figures hold no PII
    ) as client:
        yield client


async def test_nps_per_month_with_its_margin_of_error(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/nps", params={"grain": "month"})).json()
    assert (body["responses"], body["promoters"], body["detractors"]) == (10, 6, 3)
    assert body["nps"] == pytest.approx(30.0)
    # p = .6, d = .3: var = (.9 − .09)/10 = .081; MoE = 1.95996·√.081·100
    assert body["margin_of_error"] == pytest.approx(55.7817, abs=1e-3)
    assert body["response_rate"] is None
    assert [(s["period_start"], s["responses"], s["nps"]) for s in body["series"]] == [
        ("2026-02-01", 4, 0.0),
        ("2026-03-01", 6, pytest.approx(100 * 3 / 6)),
    ]


async def test_nps_filtered_by_a_customer_attribute_and_a_date_range(
    client: httpx.AsyncClient,
) -> None:
    body = (
        await client.get(
            "/v1/nps",
            params={"attribute": "plan:pro", "from": "2026-03-01", "to": "2026-03-31"},
        )
    ).json()
    # March, plan pro: a 10, d 1, e 8, f 10 → 2 promoters, 1 passive, 1 detractor
    assert (body["promoters"], body["passives"], body["detractors"]) == (2, 1, 1)
    assert body["filter"] == {"attribute:plan": "pro"}


async def test_nps_grouped_by_source(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/nps", params={"group_by": "source", "grain": "week"})).json()
    groups = {g["group"]: (g["responses"], g["nps"]) for g in body["groups"]}
    assert groups == {"app": (3, pytest.approx(100 / 3)), "web": (7, pytest.approx(100 * 2 / 7))}
    assert {s["group"] for s in body["series"]} == {"app", "web"}
    assert all(s["period_start"] for s in body["series"])


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"from": "2026-03-02", "to": "2026-03-01"}, 400),
        ({"attribute": "plan"}, 422),
        ({"grain": "year"}, 422),
        ({"group_by": "colour"}, 422),
    ],
)
async def test_questions_the_figures_cannot_answer_are_problems(
    client: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    answer = await client.get("/v1/nps", params=params)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_a_filter_and_a_group_on_different_dimensions_count_the_responses(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/v1/nps", params={"source": "web", "group_by": "theme"})).json()
    # web: a 10 "Fast delivery", c 2 "Way too expensive", d 3 "Support never answered",
    # a 10 "Great", c 9 "Support was helpful", e 8 "not slow", f 10 (no comment)
    assert (body["promoters"], body["passives"], body["detractors"]) == (4, 1, 2)
    groups = {g["group"]: (g["promoters"], g["passives"], g["detractors"]) for g in body["groups"]}
    assert groups == {
        "delivery": (1, 0, 0),
        "performance": (1, 0, 0),
        "price": (0, 0, 1),
        "support": (1, 0, 1),
        "unmatched": (1, 1, 0),
        "no_comment": (1, 0, 0),
    }
    two_filters = (
        await client.get("/v1/nps", params={"source": "web", "attribute": "plan:pro"})
    ).json()
    # web and pro: a 10, d 3, a 10, e 8, f 10
    assert (two_filters["promoters"], two_filters["passives"], two_filters["detractors"]) == (
        3,
        1,
        1,
    )


async def test_compare_two_months(client: httpx.AsyncClient) -> None:
    body = (
        await client.get(
            "/v1/nps/compare",
            params={
                "a_from": "2026-02-01",
                "a_to": "2026-02-28",
                "b_from": "2026-03-01",
                "b_to": "2026-03-31",
            },
        )
    ).json()
    # a: 2 P 2 D, NPS 0, var = 1/4; b: 4 P 1 N 1 D, NPS 50, var = (5/6 − 1/4)/6
    assert (body["a"]["nps"], body["b"]["nps"]) == (0.0, pytest.approx(50.0))
    assert body["difference"] == pytest.approx(50.0)
    assert body["standard_error"] == pytest.approx(100 * (0.25 + (5 / 6 - 0.25) / 6) ** 0.5)
    assert body["significant"] is False


async def test_theme_shares_among_segments(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/themes", params={"grain": "month"})).json()
    # Commented: 7 responses (3 without a comment): 3 promoters, 1 passive, 3 detractors.
    assert (body["commented"]["promoters"], body["commented"]["detractors"]) == (3, 3)
    themes = {t["theme"]: t for t in body["themes"]}
    assert themes["price"]["share_of_detractors"] == pytest.approx(200 / 3)
    assert themes["support"]["detractors"] == 2
    assert themes["support"]["share_of_promoters"] == pytest.approx(100 / 3)
    assert themes["support"]["label"] == "Customer support"
    # "Great" and "not slow" (negated) match nothing.
    assert themes["unmatched"]["responses"] == 2
    # Performance: "Fast delivery" only, not the passive's "not slow".
    assert (themes["performance"]["promoters"], themes["performance"]["passives"]) == (1, 0)
    assert [p["period_start"] for p in themes["support"]["trend"]] == ["2026-02-01", "2026-03-01"]
