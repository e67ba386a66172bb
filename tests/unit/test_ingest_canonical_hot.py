"""`POST /v1/responses` is served ahead of FastAPI (`ResponseIntake.hot`); what a sender gets
back must not depend on it: every answer, good or bad, is the one FastAPI's declared route
gives for the same request (status, problem, headers), and the same event is published."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nps_ingest.bootstrap import ADAPTERS
from nps_ingest.entrypoints.api import http_app
from nps_ingest.entrypoints.hot_routes import HotRoutes
from nps_kit.clock import FrozenClock
from nps_kit.messaging import PublishError
from tests.support.fake_publisher import FakePublisher
from tests.unit.test_ingest_api import AUTH, BODY, NOW, SOURCES

JSON = {"Content-Type": "application/json"}


def _body(**change: Any) -> bytes:
    return json.dumps({**BODY, **change}).encode()


CASES: dict[str, tuple[dict[str, str], bytes]] = {
    "accepted": ({**AUTH, **JSON}, _body()),
    "accepted, charset and a +json type": (
        {**AUTH, "Content-Type": "application/vnd.shop+json; charset=utf-8"},
        _body(),
    ),
    "no token": (JSON, _body()),
    "a wrong token": ({"Authorization": "Bearer nope", **JSON}, _body()),
    "not a bearer token": ({"Authorization": "Basic dTpw", **JSON}, _body()),
    "malformed JSON, before the token is looked at": (JSON, b'{"score": 3,'),
    "not UTF-8": ({**AUTH, **JSON}, b'{"comment": "\xff"}'),
    "no body": ({**AUTH, **JSON}, b""),
    "no content type": (AUTH, _body()),
    "another media type": ({**AUTH, "Content-Type": "text/plain"}, _body()),
    "a JSON array": ({**AUTH, **JSON}, b"[1, 2]"),
    "invalid fields": ({**AUTH, **JSON}, _body(score=11, customer={"id": ""}, extra=1)),
    "a score as a string": ({**AUTH, **JSON}, _body(score="7")),
    "a NUL in the comment": ({**AUTH, **JSON}, _body(comment="bad\u0000byte")),
    "a time without offset": ({**AUTH, **JSON}, _body(responded_at="2026-11-24T10:00:00")),
    "a comment over the limit": ({**AUTH, **JSON}, _body(comment="x" * 50)),
}


def _apps(publisher: FakePublisher) -> tuple[TestClient, TestClient]:
    app = http_app(
        sources=SOURCES,
        adapters=ADAPTERS,
        fetchers={},
        publisher=publisher,
        clock=FrozenClock(NOW),
        publish_timeout=0.2,
        comment_limit=20,
        max_body_bytes=64 * 1024,
    )
    assert isinstance(app, HotRoutes)
    hot = TestClient(app, raise_server_exceptions=False)
    declared = TestClient(app.app, raise_server_exceptions=False)  # FastAPI's route alone
    return hot, declared


def _answer(client: TestClient, headers: dict[str, str], body: bytes) -> tuple[Any, ...]:
    answer = client.post("/v1/responses", content=body, headers=headers)
    kept = ("content-type", "www-authenticate", "accept", "retry-after")
    return answer.status_code, {k: answer.headers.get(k) for k in kept}, answer.json()


@pytest.mark.parametrize("case", list(CASES))
def test_the_hot_route_answers_as_the_declared_route(case: str) -> None:
    headers, body = CASES[case]
    hot_publisher, declared_publisher = FakePublisher(), FakePublisher()
    hot, _ = _apps(hot_publisher)
    _, declared = _apps(declared_publisher)
    assert _answer(hot, headers, body) == _answer(declared, headers, body)
    assert hot_publisher.published == declared_publisher.published


def test_the_hot_route_serves_the_canonical_api_and_publishes_once() -> None:
    publisher = FakePublisher()
    hot, _ = _apps(publisher)
    status, _, answer = _answer(hot, {**AUTH, **JSON}, _body())
    [event] = publisher.published
    assert (status, answer["event_id"]) == (202, str(event.event_id()))


def test_the_broker_away_is_503_on_the_hot_route_too() -> None:
    publisher = FakePublisher(failure=PublishError("broker did not acknowledge"))
    hot, declared = _apps(publisher)
    answers = [_answer(c, {**AUTH, **JSON}, _body()) for c in (hot, declared)]
    assert answers[0] == answers[1]
    assert answers[0][0] == 503
