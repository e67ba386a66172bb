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
