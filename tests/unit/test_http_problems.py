"""The kit's app answers a JSON route's wrong media type with 415, not 422, and ingest's body
limit names the request it refuses (issue #18)."""

from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from nps_ingest.entrypoints.hot_routes import BodyLimit
from nps_kit.http import PROBLEM_JSON, create_app


class Body(BaseModel):
    score: int


def _client() -> TestClient:
    app = create_app(title="t", description="t", version="0", readiness={})

    @app.post("/v1/things")
    async def add_thing(body: Body) -> dict[str, int]:
        return {"score": body.score}

    return TestClient(BodyLimit(app, max_bytes=1024))


def test_a_json_route_sent_another_media_type_is_415_saying_which() -> None:
    answer = _client().post(
        "/v1/things", content=b'{"score": 3}', headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code == 415
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.headers["accept"] == "application/json"
    assert answer.json()["detail"] == "The body must be application/json, not text/plain."
    assert answer.json()["instance"] == "/v1/things"


def test_json_media_types_are_still_validated_as_usual() -> None:
    client = _client()
    good = client.post(
        "/v1/things",
        content=b'{"score": 3}',
        headers={"Content-Type": "application/merge-patch+json; charset=utf-8"},
    )
    assert good.status_code == 200
    bad = client.post("/v1/things", json={"score": "three"})
    assert bad.status_code == 422


def test_the_415_is_documented_where_a_json_body_is_read() -> None:
    app = create_app(title="t", description="t", version="0", readiness={})

    @app.post("/v1/things")
    async def add_thing(body: Body) -> dict[str, int]:
        return {"score": body.score}

    responses = app.openapi()["paths"]["/v1/things"]["post"]["responses"]
    assert list(responses["415"]["content"]) == [PROBLEM_JSON]


def test_a_body_too_large_is_413_naming_the_request() -> None:
    answer = _client().post(
        "/v1/things", content=b"x" * 2048, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.json()["instance"] == "/v1/things"


def test_a_pattern_mismatch_names_the_field_without_echoing_the_regex() -> None:
    class Contact(BaseModel):
        phone: str = Field(pattern=r"^\+[1-9][0-9]{6,14}$")

    app = create_app(title="t", description="t", version="0", readiness={})

    @app.post("/v1/contacts")
    async def add_contact(body: Contact) -> dict[str, str]:
        return {"phone": body.phone}

    answer = TestClient(app).post("/v1/contacts", json={"phone": "call me"})
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert error["field"] == "phone"
    assert "[0-9]" not in error["message"]
    assert "[0-9]" not in answer.json()["detail"]
    assert error["message"].startswith("is not in the expected format")
