"""The ingest API's contract with senders, against a fake of our own publisher port."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nps_events import Event, ResponseReceived
from nps_ingest.entrypoints.api import router
from nps_kit.clock import FrozenClock
from nps_kit.http import create_app
from nps_kit.messaging import PublishError

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
AUTH = {"Authorization": "Bearer t0ken"}
BODY: dict[str, Any] = {
    "response_id": "r-1",
    "survey_id": "s-1",
    "customer": {"id": "c-1", "email": "ada@example.com"},
    "score": 3,
    "comment": "slow",
    "responded_at": "2026-11-24T10:00:00Z",
}


class FakePublisher:
    def __init__(self, failure: Exception | None = None, delay: float = 0.0) -> None:
        self.published: list[Event] = []
        self.failure = failure
        self.delay = delay

    async def publish(self, event: Event, *, source: str, now: datetime) -> None:
        await asyncio.sleep(self.delay)
        if self.failure:
            raise self.failure
        self.published.append(event)


def _client(publisher: FakePublisher, timeout: float = 1.0) -> TestClient:
    app = create_app(title="t", description="t", version="0", readiness={})
    app.include_router(
        router(
            tokens=lambda: {"shop": "t0ken"},
            publisher=publisher,
            clock=FrozenClock(NOW),
            publish_timeout=timeout,
        )
    )
    return TestClient(app, raise_server_exceptions=False)


def test_accepted_response_answers_202_with_its_deterministic_event_id() -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post("/v1/responses", json=BODY, headers=AUTH)
    assert answer.status_code == 202
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    expected = str(ResponseReceived.derive_response_id("shop", "r-1"))
    assert answer.json() == {"event_id": str(event.event_id()), "response_id": expected}
    assert (event.source, event.score, event.customer.id, event.received_at) == (
        "shop",
        3,
        "c-1",
        NOW,
    )


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Send 'Authorization: Bearer <token>'."),
        ({"Authorization": "Basic dTpw"}, "Send 'Authorization: Bearer <token>'."),
        ({"Authorization": "Bearer wrong"}, "The token is not valid."),
    ],
)
def test_missing_or_wrong_token_is_401_and_nothing_is_published(
    headers: dict[str, str], detail: str
) -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post("/v1/responses", json=BODY, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["detail"] == detail
    assert publisher.published == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"score": 11}, "score"),
        ({"score": -1}, "score"),
        ({"score": "7"}, "score"),
        ({"customer": {"id": ""}}, "customer.id"),
        ({"customer": {"id": "c", "email": "not-an-email"}}, "customer.email"),
        ({"customer": {"id": "c", "phone": "0612"}}, "customer.phone"),
        ({"responded_at": "yesterday"}, "responded_at"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_response_is_422_problem_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post("/v1/responses", json={**BODY, **change}, headers=AUTH)
    assert answer.status_code == 422
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    assert problem["title"] == "Invalid request"
    assert field in [e["field"] for e in problem["errors"]]
    assert publisher.published == []


def test_missing_field_is_named() -> None:
    body = {k: v for k, v in BODY.items() if k != "survey_id"}
    answer = _client(FakePublisher()).post("/v1/responses", json=body, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json()["errors"] == [{"field": "survey_id", "message": "Field required"}]


def test_time_without_offset_is_422() -> None:
    answer = _client(FakePublisher()).post(
        "/v1/responses", json={**BODY, "responded_at": "2026-11-24T10:00:00"}, headers=AUTH
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "responded_at"


def test_malformed_json_is_400_problem() -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post(
        "/v1/responses",
        content=b'{"score": 3,',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "Malformed JSON"
    assert publisher.published == []


@pytest.mark.parametrize(
    "publisher",
    [FakePublisher(failure=PublishError("broker did not acknowledge")), FakePublisher(delay=5.0)],
    ids=["broker-error", "broker-timeout"],
)
def test_unreachable_broker_is_503_with_retry_after(publisher: FakePublisher) -> None:
    answer = _client(publisher, timeout=0.2).post("/v1/responses", json=BODY, headers=AUTH)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.headers["content-type"] == "application/problem+json"
    assert publisher.published == []


def test_unknown_route_is_404_problem() -> None:
    answer = _client(FakePublisher()).get("/v1/nothing")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
