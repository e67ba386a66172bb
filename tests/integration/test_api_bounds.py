"""Scoring's, followup's and notify's HTTP APIs refuse what they cannot store or keep with a
problem naming the field, never a 500 (issue #12), against the real database."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.entrypoints import api as followup_api
from nps_followup.handlers import PolicyInForce
from nps_kit.access import Access
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory
from nps_kit.http import create_app
from nps_notify.adapters.helpdesk_webhooks import sign_jira, sign_zendesk
from nps_scoring.entrypoints import api as scoring_api
from tests.support.cases import detractor_case, footprint
from tests.support.helpdesk import helpdesk_app
from tests.support.infra import Infra

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
_POLICY = parse_policy(default_policy_text())
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))
ZENDESK_SECRET = "bounds-zendesk-secret"
JIRA_SECRET = "bounds-jira-secret"


def _client(app: object, base: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url=base,
        headers=headers,
    )


def _refused(answer: httpx.Response, status: int, field: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in answer.json()["errors"]] == [field], answer.text


# --- scoring ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def scoring(
    sessions: SessionFactory, access: Access, infra: Infra
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(title="scoring", description="", version="test", readiness={})
    app.include_router(
        scoring_api.router(sessions=sessions, timezone="UTC", labels={}, access=access)
    )
    async with _client(app, "http://scoring", infra.bearer("analyst@example.com")) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/nps", {"source": "web\x00"}, "source"),
        ("/v1/nps", {"survey_id": "s\x001"}, "survey_id"),
        ("/v1/nps", {"theme": "price\x00"}, "theme"),
        ("/v1/nps", {"attribute": "plan:pro\x00"}, "attribute"),
        (
            "/v1/nps/compare",
            {
                "a_from": "2026-01-01",
                "a_to": "2026-01-31",
                "b_from": "2026-02-01",
                "b_to": "2026-02-28",
                "source": "\x00",
            },
            "source",
        ),
    ],
)
async def test_a_nul_in_a_scoring_query_is_422_naming_it(
    scoring: httpx.AsyncClient, path: str, params: dict[str, str], field: str
) -> None:
    _refused(await scoring.get(path, params=params), 422, field)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/nps", {"from": "0001-01-01", "to": "0001-01-31", "grain": "week"}),
        ("/v1/nps", {"from": "9999-12-01", "to": "9999-12-31", "grain": "month"}),
        ("/v1/themes", {"from": "0001-01-01", "grain": "day"}),
        (
            "/v1/nps/compare",
            {
                "a_from": "0001-01-01",
                "a_to": "9999-12-31",
                "b_from": "9999-12-31",
                "b_to": "9999-12-31",
            },
        ),
    ],
)
async def test_the_first_and_last_days_there_are_are_answered(
    scoring: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    assert (await scoring.get(path, params=params)).status_code == 200


# --- followup ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def followup(
    sessions: SessionFactory, access: Access, infra: Infra
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(title="followup", description="", version="test", readiness={})
    app.include_router(
        followup_api.router(sessions=sessions, clock=FrozenClock(NOW), policy=POLICY, access=access)
    )
    # An admin: these tests are about what the API stores, not who may ask.
    async with _client(app, "http://followup", infra.bearer("admin@example.com")) as client:
        yield client


async def _detractor_case(sessions: SessionFactory) -> uuid.UUID:
    return (await detractor_case(sessions, POLICY, now=NOW, source="bounds")).case_id


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"customer_id": "c\x001"}, "customer_id"),
        ({"owner": "sam@example.com\x00"}, "owner"),
        ({"team": "cs\x00"}, "team"),
    ],
)
async def test_a_nul_in_a_followup_query_is_422_naming_it(
    followup: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    _refused(await followup.get("/v1/cases", params=params), 422, field)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "0001-01-01T00:00:00+14:00"}, "start"),
        ({"end": "9999-12-31T23:59:59-14:00"}, "end"),
        ({"start": "2026-11-01T00:00:00"}, "start"),
    ],
)
async def test_a_time_no_database_holds_is_422_naming_it(
    followup: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    _refused(await followup.get("/v1/figures", params=params), 422, field)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "0001-01-01T00:00:00+14:00"}, "from"),
        ({"to": "9999-12-31T23:59:59-14:00"}, "to"),
        ({"from": "2026-11-01T00:00:00"}, "from"),  # no offset: which day is meant?
        ({"from": "yesterday"}, "from"),
        ({"source": "web\x00"}, "source"),
        ({"survey_id": "s\x001"}, "survey_id"),
    ],
)
async def test_a_bad_impact_query_is_422_naming_it(
    followup: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    _refused(await followup.get("/v1/impact", params=params), 422, field)


async def test_the_impact_figures_answer_with_their_period_and_method(
    followup: httpx.AsyncClient,
) -> None:
    answer = await followup.get(
        "/v1/impact", params={"from": "2026-11-01T00:00:00+01:00", "to": "2026-12-01T00:00:00Z"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["from"], body["to"]) == ("2026-10-31T23:00:00Z", "2026-12-01T00:00:00Z")
    assert body["min_customers"] == 30
    assert "1.96" in body["method"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_a_nul_in_a_followup_path_is_422_naming_it(
    followup: httpx.AsyncClient, method: str
) -> None:
    path = "/v1/do-not-contact/c%001" + ("" if method == "GET" else "/email")
    body = {"json": {"reason": "asked"}} if method == "PUT" else {}
    _refused(await followup.request(method, path, **body), 422, "customer_id")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "owner",
    ["ok@team.example, outsider@example.org", "x@y.z,bob", "Sam <sam@example.com>", "sam\n"],
)
async def test_an_owner_is_one_address_and_a_list_changes_nothing(
    followup: httpx.AsyncClient, sessions: SessionFactory, owner: str
) -> None:
    case_id = await _detractor_case(sessions)
    before = await footprint(sessions, case_id)
    answer = await followup.post(f"/v1/cases/{case_id}/assign", json={"owner": owner})
    _refused(answer, 422, "owner")
    assert await footprint(sessions, case_id) == before


async def test_an_owner_that_is_one_address_is_assigned(
    followup: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    case_id = await _detractor_case(sessions)
    answer = await followup.post(f"/v1/cases/{case_id}/assign", json={"owner": "sam@example.com"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["owner"] == "sam@example.com"


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("contacts", {"channel": "phone", "outcome": "reached", "note": "a\x00b"}, "note"),
        ("contacts", {"channel": "ph\none", "outcome": "reached"}, "channel"),
        ("resolve", {"root_cause": "other\x00"}, "root_cause"),
        ("reopen", {"reason": "back\x1b[2J"}, "reason"),
    ],
)
async def test_a_control_character_in_a_case_body_is_422_naming_it(
    followup: httpx.AsyncClient,
    sessions: SessionFactory,
    route: str,
    body: dict[str, str],
    field: str,
) -> None:
    case_id = await _detractor_case(sessions)
    _refused(await followup.post(f"/v1/cases/{case_id}/{route}", json=body), 422, field)


async def test_a_note_may_span_lines(followup: httpx.AsyncClient, sessions: SessionFactory) -> None:
    case_id = await _detractor_case(sessions)
    note = "Called twice.\r\nShe wants\ta refund."
    answer = await followup.post(
        f"/v1/cases/{case_id}/contacts",
        json={"channel": "phone", "outcome": "reached", "note": note},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["timeline"][-1]["details"]["note"] == note


# --- notify -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def notify(sessions: SessionFactory) -> AsyncIterator[httpx.AsyncClient]:
    app = helpdesk_app(
        sessions, now=NOW, zendesk_secrets=[ZENDESK_SECRET], jira_secrets=[JIRA_SECRET]
    )
    async with _client(app, "http://notify") as client:
        yield client


def _jira(**changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "timestamp": 1795514400000,
        "webhookEvent": "jira:issue_updated",
        "issue": {"id": "10004", "key": "CS-4"},
        "changelog": {
            "items": [
                {"field": "status", "fieldId": "status", "fromString": "To Do", "toString": "Done"}
            ]
        },
    }
    event.update(changes)
    return event


async def _post_jira(notify: httpx.AsyncClient, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json", **sign_jira(body, secret=JIRA_SECRET)}
    return await notify.post("/v1/helpdesk/jira", content=body, headers=headers)


@pytest.mark.parametrize("stamp", [b"1e999", b"1e300", b"-1e30", b"99999999999999999999999"])
async def test_a_signed_jira_timestamp_that_is_no_time_is_422(
    notify: httpx.AsyncClient, stamp: bytes
) -> None:
    body = json.dumps(_jira()).encode().replace(b"1795514400000", stamp)
    _refused(await _post_jira(notify, body), 422, "timestamp")


async def test_a_signed_jira_key_with_a_nul_is_422(notify: httpx.AsyncClient) -> None:
    body = json.dumps(_jira(issue={"id": "10004", "key": "CS-4\x00"})).encode()
    _refused(await _post_jira(notify, body), 422, "issue.key")


async def test_a_signed_jira_body_nested_1000_deep_is_400(notify: httpx.AsyncClient) -> None:
    body = b'{"webhookEvent": "jira:issue_updated", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    answer = await _post_jira(notify, body)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("id",), "ev\x00t", "id"),
        (("detail", "id"), "35\x00436", "detail.id"),
        (("time",), "0001-01-01T00:00:00+14:00", "time"),
    ],
)
async def test_a_signed_zendesk_id_with_a_nul_or_a_time_out_of_range_is_422(
    notify: httpx.AsyncClient, path: tuple[str, ...], value: str, field: str
) -> None:
    event: dict[str, object] = {
        "type": "zen:event-type:ticket.status_changed",
        "id": "cbe4028c-7239-495d-b020-f22348516046",
        "time": "2026-11-24T12:00:00Z",
        "detail": {"id": "35436", "status": "SOLVED"},
        "event": {"current": "SOLVED", "previous": "OPEN"},
    }
    target: dict[str, object] = event
    for step in path[:-1]:
        target = target[step]  # type: ignore[assignment]
    target[path[-1]] = value
    body = json.dumps(event).encode()
    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "Content-Type": "application/json",
        **sign_zendesk(body, secret=ZENDESK_SECRET, timestamp=stamp),
    }
    _refused(await notify.post("/v1/helpdesk/zendesk", content=body, headers=headers), 422, field)
