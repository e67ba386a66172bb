"""Followup's do-not-contact list through its API, against the real database and really signed
tokens: an admin takes a customer off the list one scope at a time, and taking off what is
not there is a 404 that names it (the access rules are test_api_access.py's)."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from nps_followup.entrypoints import api as followup_api
from nps_kit.access import Access
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory
from nps_kit.http import PROBLEM_JSON, create_app
from tests.integration.test_api_access import ADMIN, AGENT, POLICY
from tests.support.infra import Infra

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def followup(sessions: SessionFactory, access: Access) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(title="followup", description="", version="test", readiness={})
    app.include_router(
        followup_api.router(sessions=sessions, clock=FrozenClock(NOW), policy=POLICY, access=access)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://f"
    ) as client:
        yield client


async def _scopes(followup: httpx.AsyncClient, infra: Infra, customer: str) -> list[str]:
    answer = await followup.get(f"/v1/do-not-contact/{customer}", headers=infra.bearer(AGENT))
    assert answer.status_code == 200, answer.text
    return sorted(e["scope"] for e in answer.json()["entries"])


async def test_removing_one_scope_leaves_the_customers_other_scopes_on_the_list(
    followup: httpx.AsyncClient, infra: Infra
) -> None:
    customer = f"dnc-{uuid.uuid4().hex[:8]}"
    for scope in ("email", "sms"):
        put = await followup.put(
            f"/v1/do-not-contact/{customer}/{scope}",
            json={"reason": "asked on the phone"},
            headers=infra.bearer(ADMIN),
        )
        assert put.status_code == 204, put.text
    assert await _scopes(followup, infra, customer) == ["email", "sms"]

    removed = await followup.delete(
        f"/v1/do-not-contact/{customer}/email", headers=infra.bearer(ADMIN)
    )

    assert removed.status_code == 204, removed.text
    assert await _scopes(followup, infra, customer) == ["sms"]


async def test_removing_a_scope_the_customer_is_not_on_is_404_naming_it(
    followup: httpx.AsyncClient, infra: Infra
) -> None:
    customer = f"dnc-{uuid.uuid4().hex[:8]}"
    await followup.put(
        f"/v1/do-not-contact/{customer}/sms", json={"reason": None}, headers=infra.bearer(ADMIN)
    )
    once = await followup.delete(f"/v1/do-not-contact/{customer}/sms", headers=infra.bearer(ADMIN))
    assert once.status_code == 204, once.text

    again = await followup.delete(f"/v1/do-not-contact/{customer}/sms", headers=infra.bearer(ADMIN))
    never = await followup.delete(
        f"/v1/do-not-contact/{customer}/email", headers=infra.bearer(ADMIN)
    )

    for answer, scope in ((again, "sms"), (never, "email")):
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert answer.json()["detail"] == f"{customer} is not on the list for {scope}."
    assert await _scopes(followup, infra, customer) == []
