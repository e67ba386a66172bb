"""Ingest refuses what no later stage can store or send (issue #12), naming the field, before
anything is published; what a survey tool's webhook says in free text is made to fit instead.

- The canonical API, its batch and CSV import refuse NUL and other control characters (422
  or a per-item error naming the field); a comment may still span lines.
- A name, an id, an owner is one line: no line break, no tab.
- An email address is exactly one address.
- A webhook's comment and name lose their control characters (the respondent cannot be asked
  again); its ids are refused, since a changed id would name another response.
"""

import json
from typing import Any

import pytest

from nps_events import ContactOptOut, ResponseReceived
from tests.unit.test_ingest_api import AUTH, BODY, FakePublisher, _client
from tests.unit.test_ingest_webhooks import FakePublisher as WebhookPublisher
from tests.unit.test_ingest_webhooks import _client as webhook_client
from tests.unit.test_ingest_webhooks import (
    delighted_body,
    sign_delighted,
    sign_standard,
    standard_body,
)

CSV_HEADER = (
    "response_id,survey_id,customer_id,customer_email,customer_name,score,comment,responded_at\n"
)


def _with(change: dict[str, Any]) -> dict[str, Any]:
    return {**BODY, **change}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"comment": "bad\u0000byte"}, "comment"),
        ({"comment": "colour \u001b[31mred"}, "comment"),
        ({"comment": "a C1 control \u0085 here"}, "comment"),
        ({"customer": {"id": "c-1", "name": "Eve\nBcc: x@example.com"}}, "customer.name"),
        ({"customer": {"id": "c-1", "name": "Eve\r\nBcc: x@example.com"}}, "customer.name"),
        ({"customer": {"id": "c-1", "name": "Eve\tAdams"}}, "customer.name"),
        ({"customer": {"id": "c-1", "name": "Eve\u2028Adams"}}, "customer.name"),
        ({"customer": {"id": "c\u00001"}}, "customer.id"),
        ({"customer": {"id": "c-1", "email": "x@y.z,bob"}}, "customer.email"),
        ({"customer": {"id": "c-1", "email": "a@b.co, c@d.co"}}, "customer.email"),
        ({"customer": {"id": "c-1", "email": "Ada <ada@example.com>"}}, "customer.email"),
        ({"customer": {"id": "c-1", "attributes": {"plan": "pro\u0000"}}}, "customer.attributes"),
        ({"response_id": "r\n1"}, "response_id"),
        ({"survey_id": "s\u00001"}, "survey_id"),
        # No time zone's clock reaches year 0 or 10000: no consumer could store it in UTC.
        ({"responded_at": "0001-01-01T00:00:00+14:00"}, "responded_at"),
        ({"responded_at": "9999-12-31T23:59:59-14:00"}, "responded_at"),
    ],
)
def test_what_cannot_be_stored_or_sent_is_422_naming_the_field_and_nothing_is_published(
    change: dict[str, Any], field: str
) -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post("/v1/responses", json=_with(change), headers=AUTH)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"][0]["field"].startswith(field)
    assert publisher.published == []


def test_a_comment_may_span_lines_with_tabs_and_crlf() -> None:
    publisher = FakePublisher()
    comment = "Line one\r\nline two\n\tindented"
    answer = _client(publisher).post(
        "/v1/responses", json=_with({"comment": comment}), headers=AUTH
    )
    assert answer.status_code == 202, answer.text
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert event.comment == comment


def test_a_batch_item_with_a_nul_is_an_error_naming_the_field_and_the_rest_flows() -> None:
    publisher = FakePublisher()
    items = [BODY, _with({"response_id": "r-2", "comment": "bad\u0000byte"})]
    answer = _client(publisher).post("/v1/responses/batch", json={"responses": items}, headers=AUTH)
    assert answer.status_code == 200
    first, second = answer.json()["results"]
    assert first["status"] == "accepted"
    assert second["status"] == "error"
    assert second["error"].startswith("comment:")
    assert [e.provider_response_id for e in publisher.published] == ["r-1"]  # type: ignore[attr-defined]


def test_a_csv_row_with_a_nul_in_the_name_is_an_error_naming_the_field() -> None:
    publisher = FakePublisher()
    csv_text = (
        CSV_HEADER
        + "h-1,legacy,c-1,ada@example.com,Ada,8,fine,2025-01-05T10:00:00Z\n"
        + "h-2,legacy,c-2,eve@example.com,Eve\u0000,3,slow,2025-01-05T10:00:00Z\n"
        + 'h-3,legacy,c-3,bob@example.com,"Bob\nBcc: x@example.com",3,slow,2025-01-05T10:00:00Z\n'
    )
    answer = _client(publisher).post(
        "/v1/responses/import",
        content=csv_text.encode(),
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "error", "error"]
    assert results[1]["error"].startswith("customer.name:")
    assert results[2]["error"].startswith("customer.name:")
    assert [e.provider_response_id for e in publisher.published] == ["h-1"]  # type: ignore[attr-defined]


def test_an_opt_out_with_a_nul_in_the_customer_id_is_422() -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post(
        "/v1/opt-outs",
        json={"opt_out_id": "o-1", "customer_id": "c\u00001", "occurred_at": "2026-11-24T10:00Z"},
        headers=AUTH,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "customer_id"
    assert publisher.published == []


# --- webhooks -------------------------------------------------------------------------------


def test_a_webhook_comment_loses_its_control_characters_and_keeps_its_lines() -> None:
    publisher = WebhookPublisher()
    body = standard_body(comment="bad\u0000byte\r\nand \u001b[1mbold\u001b[0m\tend")
    answer = webhook_client(publisher).post(
        "/v1/webhooks/sw", content=body, headers=sign_standard(body)
    )
    assert answer.status_code == 202, answer.text
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert event.comment == "badbyte\r\nand [1mbold[0m\tend"


def test_a_webhook_name_with_a_line_break_becomes_one_line() -> None:
    publisher = WebhookPublisher()
    payload = json.loads(delighted_body())
    payload["event_data"]["person"]["name"] = "Eve\nBcc: x@example.com\u0000"
    body = json.dumps(payload).encode()
    answer = webhook_client(publisher).post(
        "/v1/webhooks/dl", content=body, headers=sign_delighted(body)
    )
    assert answer.status_code == 202, answer.text
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert event.customer.name == "Eve Bcc: x@example.com"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("data", "response_id"), "r\u00007", "data.response_id"),
        (("data", "survey_id"), "s\n1", "data.survey_id"),
        (("data", "customer", "id"), "c\u00001", "data.customer.id"),
        (("data", "customer", "email"), "x@y.z,bob", "data.customer.email"),
    ],
)
def test_a_webhook_id_or_address_that_cannot_be_stored_is_422_naming_the_field(
    path: tuple[str, ...], value: str, field: str
) -> None:
    publisher = WebhookPublisher()
    payload = json.loads(standard_body())
    target = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    body = json.dumps(payload).encode()
    answer = webhook_client(publisher).post(
        "/v1/webhooks/sw", content=body, headers=sign_standard(body)
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"][0]["field"] == field
    assert publisher.published == []


def test_a_signed_body_nested_1000_deep_is_400_problem() -> None:
    body = b'{"type": "response.created", "data": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    answer = webhook_client(WebhookPublisher()).post(
        "/v1/webhooks/sw", content=body, headers=sign_standard(body)
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "nested too deeply" in answer.json()["detail"]


def test_a_standard_webhooks_opt_out_with_a_control_character_in_its_id_is_422() -> None:
    publisher = WebhookPublisher()
    body = json.dumps(
        {"type": "contact.opted_out", "data": {"customer_id": "c\u00851", "scope": "all"}}
    ).encode()
    answer = webhook_client(publisher).post(
        "/v1/webhooks/sw", content=body, headers=sign_standard(body)
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "data.customer_id"
    assert not any(isinstance(e, ContactOptOut) for e in publisher.published)
