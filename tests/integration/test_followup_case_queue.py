"""Followup's case queue as the console asks for it (GET /v1/cases?sort=urgency): breached
cases first, then by contact deadline; several statuses at once; the business hours left and
the transitions each case allows; the caller's team scoping kept."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from nps_events import Actor, ContactOutcome
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.queue import QueueFilter, Urgency, place_of
from nps_followup.entrypoints import api as followup_api
from nps_followup.handlers import PolicyInForce, record_contact
from nps_kit.access import Access
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.http import create_app
from tests.support.cases import detractor_case
from tests.support.infra import Infra

#: A Tuesday noon; the shipped policy's customer-success team works 9:00–17:00, Europe/London.
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
_POLICY = parse_policy(
    default_policy_text()
    .replace(
        "teams:\n",
        "teams:\n  enterprise:\n    lead: ent-lead@example.com\n    members: [erin@example.com]\n",
        1,
    )
    .replace(
        "rules:\n",
        "rules:\n  - name: enterprise-detractor\n"
        "    when: {segment: detractor, attributes: {plan: enterprise}}\n"
        "    case: {team: enterprise, owner: round_robin, contact_within: 2 business days}\n"
        "    actions: []\n",
        1,
    )
)
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))
AGENT = "alex@example.com"


@pytest.fixture(scope="module")
async def followup(sessions: SessionFactory, access: Access) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(title="followup", description="", version="test", readiness={})
    app.include_router(
        followup_api.router(sessions=sessions, clock=FrozenClock(NOW), policy=POLICY, access=access)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://followup"
    ) as client:
        yield client


async def _opened(sessions: SessionFactory, *, ago: timedelta, plan: str = "pro") -> uuid.UUID:
    case = await detractor_case(
        sessions, POLICY, now=NOW - ago, source="queue", attributes={"plan": plan}
    )
    return case.case_id


async def _everything(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every page of the list (other tests' cases share the database)."""
    items: list[dict[str, Any]] = []
    while True:
        page = await client.get(
            "/v1/cases", params={**params, "limit": 500, "offset": len(items)}, headers=headers
        )
        assert page.status_code == 200, page.text
        found = page.json()["items"]
        items += found
        if len(found) < 500:
            return items


async def test_the_queue_puts_breached_cases_first_then_the_soonest_deadline(
    followup: httpx.AsyncClient, sessions: SessionFactory, infra: Infra
) -> None:
    later = await _opened(sessions, ago=timedelta(hours=1))  # due 2 business days after
    breached = await _opened(sessions, ago=timedelta(days=10))
    sooner = await _opened(sessions, ago=timedelta(days=1))
    # Reached after its deadline: no longer breached, though its deadline is the earliest.
    contacted = await _opened(sessions, ago=timedelta(days=20))
    async with unit_of_work(sessions) as session:
        await record_contact(
            FollowupRepository(session),
            contacted,
            channel="phone",
            outcome=ContactOutcome.REACHED,
            note=None,
            actor=Actor.system("test"),
            now=NOW,
        )
    theirs = await _opened(sessions, ago=timedelta(days=30), plan="enterprise")

    items = await _everything(
        followup,
        infra.bearer(AGENT),
        sort="urgency",
        status=["open", "contacted"],
    )
    order = [i["case_id"] for i in items]
    mine = [str(c) for c in (breached, contacted, sooner, later)]
    assert [c for c in order if c in mine] == mine
    assert str(theirs) not in order, "another team's case leaked into an agent's queue"
    assert {i["status"] for i in items} == {"open", "contacted"}
    by_id = {i["case_id"]: i for i in items}
    assert by_id[str(breached)]["business_hours_left"] == 0
    assert by_id[str(later)]["business_hours_left"] == 15  # 16, of which one has gone
    assert by_id[str(later)]["business_seconds_left"] == 15 * 3600
    # Tuesday noon in London: the team's clock runs until 17:00, and a page may count down.
    assert by_id[str(later)]["business_time_runs_until"] == "2026-11-24T17:00:00Z"
    assert by_id[str(breached)]["business_time_runs_until"] is None
    assert by_id[str(later)]["transitions"] == ["assign", "contact", "resolve"]
    breached_first = [i for i in items if i["status"] == "open" and i["business_hours_left"] == 0]
    assert order[: len(breached_first)] == [i["case_id"] for i in breached_first]


async def test_newest_first_stays_the_default(
    followup: httpx.AsyncClient, sessions: SessionFactory, infra: Infra
) -> None:
    older = await _opened(sessions, ago=timedelta(days=2))
    newer = await _opened(sessions, ago=timedelta(minutes=5))
    items = await _everything(followup, infra.bearer(AGENT), status="open")
    order = [i["case_id"] for i in items if i["case_id"] in (str(older), str(newer))]
    assert order == [str(newer), str(older)]


async def test_an_unknown_sort_is_a_422_naming_the_field(
    followup: httpx.AsyncClient, infra: Infra
) -> None:
    answer = await followup.get("/v1/cases", params={"sort": "score"}, headers=infra.bearer(AGENT))
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "sort" in answer.text


# --- filters and cursor pages -------------------------------------------------------------


async def _walk(
    client: httpx.AsyncClient, headers: dict[str, str], *, between: Any = None, **params: Any
) -> list[list[str]]:
    """Every page of the queue by its cursors, calling `between(page_number)` after each."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query = {**params, "sort": "urgency", **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/v1/cases", params=query, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append([i["case_id"] for i in body["items"]])
        if between is not None:
            await between(len(pages))
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def _flat(pages: list[list[str]]) -> list[str]:
    return [case_id for page in pages for case_id in page]


async def test_the_queue_filters_by_segment_score_theme_and_customer(
    followup: httpx.AsyncClient, sessions: SessionFactory, infra: Infra
) -> None:
    source = f"filters-{uuid.uuid4().hex[:6]}"

    async def opened(**kwargs: Any) -> str:
        case = await detractor_case(sessions, POLICY, now=NOW, source=source, **kwargs)
        return str(case.case_id)

    low = await opened(score=1, themes=["price"], name="Grace Hopper", email="grace@navy.mil")
    mid = await opened(score=5, themes=["delivery", "support"], name="Alan Turing")
    passive = await opened(score=7, themes=[], name="Ada_Lovelace")
    percent = await opened(score=3, name="100% Brown", email="brown@example.com")
    headers = infra.bearer("admin@example.com", role="admin")

    async def found(**params: Any) -> set[str]:
        answer = await followup.get(
            "/v1/cases", params={"source": source, "sort": "urgency", **params}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        return {i["case_id"] for i in answer.json()["items"]}

    assert await found() == {low, mid, passive, percent}
    assert await found(segment="passive") == {passive}
    assert await found(segment=["passive", "detractor"]) == {low, mid, passive, percent}
    assert await found(score_min=3, score_max=6) == {mid, percent}
    assert await found(score_max=1) == {low}
    assert await found(theme="support") == {mid}
    assert await found(theme=["price", "support"]) == {low, mid}
    assert await found(customer="HOPPER") == {low}  # any case
    assert await found(customer="navy.m") == {low}  # the email address
    assert await found(customer=source) == {low, mid, passive, percent}  # the customer id
    assert await found(customer="a_l") == {passive}  # `_` is a character, not a wildcard
    assert await found(customer="0% b") == {percent}  # and so is `%`
    assert await found(customer="%") == {percent}
    assert await found(customer="ring grace") == set()  # never across name and email
    assert await found(segment="detractor", theme="price", customer="grace") == {low}
    answer = await followup.get(
        "/v1/cases", params={"sort": "urgency", "customer_id": source}, headers=headers
    )
    assert answer.json()["items"] == [], "customer_id is an exact id, not a search"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"segment": "angry"}, "segment"),
        ({"score_min": 11}, "score_min"),
        ({"score_max": -1}, "score_max"),
        ({"score_min": 7, "score_max": 3}, "score_min"),
        ({"theme": "Price!"}, "theme"),
        ({"status": "pending"}, "status"),
        ({"customer": "a\u0000b"}, "customer"),
        ({"cursor": "not-a-cursor", "sort": "urgency"}, "cursor"),
        ({"cursor": "eyJ2IjoxfQ", "sort": "urgency"}, "cursor"),  # {"v":1}
        ({"cursor": "x", "sort": "newest"}, "cursor"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_it(
    followup: httpx.AsyncClient, infra: Infra, params: dict[str, Any], field: str
) -> None:
    answer = await followup.get("/v1/cases", params=params, headers=infra.bearer(AGENT))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"].split(".")[0] for e in answer.json()["errors"]}


async def test_a_cursor_of_other_filters_is_refused(
    followup: httpx.AsyncClient, sessions: SessionFactory, infra: Infra
) -> None:
    source = f"other-{uuid.uuid4().hex[:6]}"
    for _ in range(2):
        await detractor_case(sessions, POLICY, now=NOW, source=source)
    headers = infra.bearer(AGENT)
    first = await followup.get(
        "/v1/cases", params={"source": source, "sort": "urgency", "limit": 1}, headers=headers
    )
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    answer = await followup.get(
        "/v1/cases",
        params={"source": source, "sort": "urgency", "limit": 1, "score_max": 5, "cursor": cursor},
        headers=headers,
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "cursor"


async def test_cursor_pages_skip_no_case_and_show_none_twice_while_cases_change(
    followup: httpx.AsyncClient, sessions: SessionFactory, infra: Infra
) -> None:
    """Paging the open-or-contacted queue three at a time while, between pages, a case
    already shown is reached (it leaves the breached group), one not yet shown is reached,
    and a new breached case opens (before the cursor: not shown in this walk)."""
    source = f"walk-{uuid.uuid4().hex[:6]}"
    ids = [
        (await detractor_case(sessions, POLICY, now=NOW - timedelta(days=d), source=source)).case_id
        for d in (9, 8, 7, 6, 1, 0, 0, 0)
    ]
    headers = infra.bearer(AGENT)
    params = {"source": source, "status": ["open", "contacted"], "limit": 3}
    expected = await _walk(followup, headers, **params)
    # Four breached (by deadline), then one due tomorrow, then three due on Thursday noon
    # (by case id).
    assert _flat(expected) == [str(i) for i in ids[:5]] + sorted(str(i) for i in ids[5:])
    assert [len(p) for p in expected] == [3, 3, 2]
    late_comer: list[uuid.UUID] = []

    async def reach(case_id: uuid.UUID) -> None:
        async with unit_of_work(sessions) as session:
            await record_contact(
                FollowupRepository(session),
                case_id,
                channel="phone",
                outcome=ContactOutcome.REACHED,
                note=None,
                actor=Actor.system("test"),
                now=NOW + timedelta(minutes=1),  # after the walk's first page
            )

    async def meanwhile(page: int) -> None:
        if page == 1:
            await reach(ids[0])  # shown on page 1
            await reach(ids[3])  # still ahead, on page 2
            case = await detractor_case(
                sessions, POLICY, now=NOW - timedelta(days=30), source=source
            )
            late_comer.append(case.case_id)

    walked = await _walk(followup, headers, between=meanwhile, **params)
    shown = _flat(walked)
    assert shown == _flat(expected), "the walk kept its order as of its first page"
    assert str(late_comer[0]) not in shown
    again = _flat(await _walk(followup, headers, **params))
    assert again[0] == str(late_comer[0]), "a new walk sees the new breached case first"
    assert len(again) == len(set(again)) == len(ids) + 1

    # The query's places are the domain's rule (`place_of`), before and after the contacts.
    for as_of in (NOW, NOW + timedelta(minutes=2)):
        async with sessions() as session:
            placed = await FollowupRepository(session).case_queue(
                filters=QueueFilter(sources=(source,)), scope=None, as_of=as_of, limit=50
            )
        assert len(placed) == len(ids) + 1
        assert [place for _, place in placed] == [place_of(case, as_of) for case, _ in placed]
        urgencies = [place.urgency for _, place in placed]
        assert urgencies == sorted(urgencies)
    assert [p.urgency for _, p in placed].count(Urgency.BREACHED) == 3, "two were reached"


async def test_previous_cursor_goes_back_to_the_same_page(
    followup: httpx.AsyncClient, sessions: SessionFactory, infra: Infra
) -> None:
    source = f"back-{uuid.uuid4().hex[:6]}"
    for d in (5, 4, 3, 2, 1):
        await detractor_case(sessions, POLICY, now=NOW - timedelta(days=d), source=source)
    headers = infra.bearer(AGENT)
    base = {"source": source, "sort": "urgency", "limit": 2}
    first = (await followup.get("/v1/cases", params=base, headers=headers)).json()
    assert first["previous_cursor"] is None
    second = (
        await followup.get(
            "/v1/cases", params={**base, "cursor": first["next_cursor"]}, headers=headers
        )
    ).json()
    back = (
        await followup.get(
            "/v1/cases", params={**base, "cursor": second["previous_cursor"]}, headers=headers
        )
    ).json()
    assert [i["case_id"] for i in back["items"]] == [i["case_id"] for i in first["items"]]
    assert back["previous_cursor"] is None
    assert back["next_cursor"] is not None
    third = (
        await followup.get(
            "/v1/cases", params={**base, "cursor": second["next_cursor"]}, headers=headers
        )
    ).json()
    assert len(third["items"]) == 1
    assert third["next_cursor"] is None
