"""The ingest API's contract with senders, against a fake of our own publisher port."""

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nps_events import ContactOptOut, ResponseReceived
from nps_ingest.bootstrap import ADAPTERS
from nps_ingest.domain.sources import Provider, Source
from nps_ingest.entrypoints.api import http_app
from nps_kit.clock import FrozenClock
from nps_kit.messaging import PublishError
from tests.support.fake_publisher import FakePublisher

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


SOURCES = {
    "shop": Source(name="shop", provider=Provider.CANONICAL, tokens=("t0ken", "n3w-t0ken")),
    "other": Source(name="other", provider=Provider.CANONICAL, tokens=("other-t0ken",)),
}


def _client(
    publisher: FakePublisher,
    timeout: float = 1.0,
    *,
    comment_limit: int = 10_000,
    docs: bool = False,
) -> TestClient:
    app = http_app(
        sources=SOURCES,
        adapters=ADAPTERS,
        fetchers={},
        publisher=publisher,
        clock=FrozenClock(NOW),
        publish_timeout=timeout,
        comment_limit=comment_limit,
        max_body_bytes=64 * 1024,
        docs=docs,
    )
    return TestClient(app, raise_server_exceptions=False)


def test_accepted_response_answers_202_with_its_deterministic_event_id() -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post("/v1/responses", json=BODY, headers=AUTH)
    assert answer.status_code == 202
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    expected = str(ResponseReceived.derive_response_id("shop", "r-1"))
    assert answer.json() == {
        "event_id": str(event.event_id()),
        "response_id": expected,
        "type": "response",
        "comment_truncated": False,
    }
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


def test_any_of_a_sources_tokens_is_accepted_during_a_rotation() -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post(
        "/v1/responses", json=BODY, headers={"Authorization": "Bearer n3w-t0ken"}
    )
    assert answer.status_code == 202
    assert publisher.published[0].source == "shop"  # type: ignore[attr-defined]


def test_a_token_identifies_only_its_own_source() -> None:
    publisher = FakePublisher()
    _client(publisher).post(
        "/v1/responses", json=BODY, headers={"Authorization": "Bearer other-t0ken"}
    )
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert event.source == "other"
    assert event.response_id != ResponseReceived.derive_response_id("shop", "r-1")


def test_long_comment_is_truncated_and_flagged_not_dropped() -> None:
    publisher = FakePublisher()
    long = "slow " * 100
    answer = _client(publisher, comment_limit=50).post(
        "/v1/responses", json={**BODY, "comment": long}, headers=AUTH
    )
    assert answer.status_code == 202
    assert answer.json()["comment_truncated"] is True
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert event.comment is not None
    assert len(event.comment) <= 50
    assert event.comment.endswith("…")
    assert long.startswith(event.comment[:-1])


def test_body_over_the_limit_is_413_problem() -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post(
        "/v1/responses", json={**BODY, "comment": "x" * 70_000}, headers=AUTH
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 413
    assert publisher.published == []


def test_chunked_body_over_the_limit_is_413_too() -> None:
    def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 1024

    answer = _client(FakePublisher()).post(
        "/v1/responses", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert answer.status_code == 413


# --- batch and CSV ----------------------------------------------------------------------------


def test_batch_gives_one_result_per_item_and_a_bad_item_sinks_nothing() -> None:
    publisher = FakePublisher()
    items = [
        BODY,
        {**BODY, "response_id": "r-2", "score": 11},
        BODY,
        {**BODY, "response_id": "r-3", "customer": {"id": "c-3"}},
    ]
    answer = _client(publisher).post("/v1/responses/batch", json={"responses": items}, headers=AUTH)
    assert answer.status_code == 200
    result = answer.json()
    assert [r["status"] for r in result["results"]] == [
        "accepted",
        "error",
        "duplicate",
        "accepted",
    ]
    assert "score" in result["results"][1]["error"]
    assert (result["accepted"], result["duplicates"], result["errors"]) == (2, 1, 1)
    assert result["results"][0]["event_id"] == result["results"][2]["event_id"]
    assert len(publisher.published) == 2


def test_batch_of_more_than_1000_is_422() -> None:
    answer = _client(FakePublisher()).post(
        "/v1/responses/batch", json={"responses": [BODY] * 1001}, headers=AUTH
    )
    assert answer.status_code in (413, 422)


def test_batch_needs_a_token() -> None:
    answer = _client(FakePublisher()).post("/v1/responses/batch", json={"responses": [BODY]})
    assert answer.status_code == 401


def test_csv_import_backfills_rows_and_reports_each() -> None:
    publisher = FakePublisher()
    csv_text = (
        "response_id,survey_id,customer_id,customer_email,customer_name,score,comment,responded_at\n"
        "h-1,legacy,c-1,ada@example.com,Ada,8,fine,2025-01-05T10:00:00Z\n"
        "h-2,legacy,c-2,,,nine,,2025-01-05T10:00:00Z\n"
        'h-3,legacy,c-3,,,2,"slow, and rude",2025-01-06T10:00:00+01:00\n'
    )
    answer = _client(publisher).post(
        "/v1/responses/import",
        content=csv_text.encode(),
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    assert answer.status_code == 200
    statuses = [r["status"] for r in answer.json()["results"]]
    assert statuses == ["accepted", "error", "accepted"]
    scores = sorted(e.score for e in publisher.published)  # type: ignore[attr-defined]
    assert scores == [2, 8]
    comments = {e.comment for e in publisher.published}  # type: ignore[attr-defined]
    assert "slow, and rude" in comments


CSV_HEADER = (
    "response_id,survey_id,customer_id,customer_email,customer_name,score,comment,responded_at\n"
)


def _import(publisher: FakePublisher, csv_text: str) -> Any:
    return _client(publisher).post(
        "/v1/responses/import",
        content=csv_text.encode(),
        headers={**AUTH, "Content-Type": "text/csv"},
    )


def test_an_unbalanced_quote_is_reported_on_its_row_and_the_rows_after_it_are_imported() -> None:
    """11 rows, one with a quote left open: 11 results, that row an error naming its line,
    the 10 others accepted (the open quote used to swallow the rest of the file)."""
    publisher = FakePublisher()
    rows = [f"q-{n},legacy,c-{n},,,{n % 11},fine,2025-01-05T10:00:00Z\n" for n in range(11)]
    rows[4] = 'q-4,legacy,c-4,,,4,"Too slow,2025-01-05T10:00:00Z\n'
    answer = _import(publisher, CSV_HEADER + "".join(rows))
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert len(results) == 11
    assert [r["status"] for r in results] == ["accepted"] * 4 + ["error"] + ["accepted"] * 6
    assert [r["line"] for r in results] == list(range(2, 13))
    assert "line 6" in results[4]["error"]
    assert "quote" in results[4]["error"]
    imported = sorted(e.provider_response_id for e in publisher.published)  # type: ignore[attr-defined]
    assert imported == sorted(f"q-{n}" for n in range(11) if n != 4)


def test_an_open_quote_closed_by_a_later_row_does_not_merge_the_rows() -> None:
    """The stray quote meets another quote two rows down: the reader would make one record of
    the three lines, with the header's number of fields."""
    publisher = FakePublisher()
    csv_text = (
        CSV_HEADER
        + 'm-1,legacy,c-1,,,3,"Too slow,2025-01-05T10:00:00Z\n'
        + "m-2,legacy,c-2,,,5,fine,2025-01-05T10:00:00Z\n"
        + 'm-3,legacy,c-3,,,9,"Great, thanks",2025-01-05T10:00:00Z\n'
    )
    results = _import(publisher, csv_text).json()["results"]
    assert [(r["status"], r["line"]) for r in results] == [
        ("error", 2),
        ("accepted", 3),
        ("accepted", 4),
    ]
    comments = {e.comment for e in publisher.published}  # type: ignore[attr-defined]
    assert comments == {"fine", "Great, thanks"}


def test_a_comment_on_two_lines_is_one_row() -> None:
    publisher = FakePublisher()
    csv_text = (
        CSV_HEADER
        + 'p-1,legacy,c-1,,,3,"Too slow.\nAnd rude.",2025-01-05T10:00:00Z\n'
        + "p-2,legacy,c-2,,,5,fine,2025-01-05T10:00:00Z\n"
    )
    results = _import(publisher, csv_text).json()["results"]
    assert [(r["status"], r["line"]) for r in results] == [("accepted", 2), ("accepted", 4)]
    comments = {e.comment for e in publisher.published}  # type: ignore[attr-defined]
    assert comments == {"Too slow.\nAnd rude.", "fine"}


@pytest.mark.parametrize(
    ("row", "said"),
    [
        ("x-1,legacy,c-1,,,3,Slow, and rude,2025-01-05T10:00:00Z,\n", "10 fields"),
        ("x-1,legacy,c-1,,,3,fine,2025-01-05T10:00:00Z,extra\n", "9 fields"),
        ("x-1,legacy,c-1,,,3,fine\n", "7 fields"),
    ],
)
def test_a_row_with_more_or_fewer_fields_than_the_header_is_an_error_of_its_own(
    row: str, said: str
) -> None:
    publisher = FakePublisher()
    answer = _import(publisher, CSV_HEADER + row + "ok-2,legacy,c-2,,,5,,2025-01-05T10:00:00Z\n")
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["error", "accepted"]
    assert said in results[0]["error"]
    assert "header 8" in results[0]["error"]
    assert [e.provider_response_id for e in publisher.published] == ["ok-2"]  # type: ignore[attr-defined]


def test_rows_refused_one_by_one_still_count_against_the_row_limit() -> None:
    """Each line opens a quote that the next one closes: every row is an error of its own,
    and 5,001 of them are too many, as 5,001 good rows are."""
    publisher = FakePublisher()
    answer = _import(publisher, CSV_HEADER + 'a,"b\n' * 5_001)
    assert answer.status_code == 400
    assert "1 to 5000 rows" in answer.json()["detail"]
    assert publisher.published == []


def test_a_header_with_a_column_ingest_does_not_know_is_400() -> None:
    answer = _import(
        FakePublisher(),
        CSV_HEADER.replace("\n", ",channel\n") + "u-1,legacy,c-1,,,3,,2025-01-05T10:00:00Z,web\n",
    )
    assert answer.status_code == 400
    assert "Unknown columns: channel" in answer.json()["detail"]


def test_csv_without_required_columns_is_400() -> None:
    answer = _client(FakePublisher()).post(
        "/v1/responses/import",
        content=b"id,score\n1,2\n",
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert "responded_at" in answer.json()["detail"]


def test_openapi_document_has_examples_for_the_canonical_api() -> None:
    doc = _client(FakePublisher(), docs=True).get("/openapi.json").json()
    assert {
        "/v1/responses",
        "/v1/responses/batch",
        "/v1/responses/import",
        "/v1/webhooks/{source}",
    } <= set(doc["paths"])
    assert doc["components"]["schemas"]["ResponseIn"]["examples"]


def test_opt_out_from_the_api_becomes_a_contact_opt_out() -> None:
    publisher = FakePublisher()
    body = {
        "opt_out_id": "u-1",
        "customer_id": "c-1",
        "scope": "email",
        "occurred_at": "2026-11-24T10:00:00Z",
    }
    client = _client(publisher)
    first = client.post("/v1/opt-outs", json=body, headers=AUTH)
    again = client.post("/v1/opt-outs", json=body, headers=AUTH)
    assert first.status_code == 202
    assert first.json()["type"] == "opt_out"
    assert again.json() == first.json()
    event = publisher.published[0]
    assert isinstance(event, ContactOptOut)
    assert (event.source, event.customer_id, event.scope.value) == ("shop", "c-1", "email")


def test_opt_out_needs_a_token_and_a_valid_scope() -> None:
    body = {"opt_out_id": "u-1", "customer_id": "c-1", "occurred_at": "2026-11-24T10:00:00Z"}
    client = _client(FakePublisher())
    assert client.post("/v1/opt-outs", json=body).status_code == 401
    answer = client.post("/v1/opt-outs", json={**body, "scope": "fax"}, headers=AUTH)
    assert answer.status_code == 422


@pytest.mark.parametrize(
    ("query", "marked"), [("?backfill=true", True), ("?backfill=false", False), ("", False)]
)
def test_an_import_marked_as_backfill_says_so_on_every_event_with_the_same_id(
    query: str, marked: bool
) -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post(
        f"/v1/responses/import{query}",
        content=(CSV_HEADER + "h-1,legacy,c-1,,,2,,2025-01-05T10:00:00Z\n").encode(),
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    batch = _client(publisher).post(
        f"/v1/responses/batch{query}", json={"responses": [BODY]}, headers=AUTH
    )
    assert (answer.status_code, batch.status_code) == (200, 200)
    assert [e.backfill for e in publisher.published] == [marked, marked]  # type: ignore[attr-defined]
    # How it arrived is not what it says: live or imported, one response is one event.
    live = _client(FakePublisher()).post("/v1/responses", json=BODY, headers=AUTH)
    assert batch.json()["results"][0]["event_id"] == live.json()["event_id"]


def test_a_backfill_flag_that_is_not_a_boolean_is_422_and_nothing_is_published() -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post(
        "/v1/responses/batch?backfill=maybe", json={"responses": [BODY]}, headers=AUTH
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert "backfill" in answer.text
    assert publisher.published == []
