"""Provider webhooks: each vendor's documented payload, signed as the vendor signs it, becomes
one normalised event; a wrong signature, a tampered body or a stale timestamp is refused.

Payloads follow the vendors' published examples: Delighted's webhooks page, Typeform's
"Example webhook payload", Wootric's "Outgoing Webhooks", AskNicely's "Triggering Webhooks",
Formbricks' webhook payload and the Standard Webhooks specification.
"""

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import structlog
from fastapi.testclient import TestClient

from nps_events import ContactOptOut, Event, ResponseReceived
from nps_ingest.bootstrap import ADAPTERS
from nps_ingest.domain.signatures import sign_standard_webhooks
from nps_ingest.domain.sources import EventTypes, FieldMapping, Provider, Source
from nps_ingest.entrypoints.api import http_app
from nps_kit.clock import FrozenClock
from nps_kit.http import metrics_app
from tests.support.fake_publisher import FakePublisher

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
OLD_SECRET = "old-secret-0123456789"
SECRET = "current-secret-0123456789"
WHSEC = "whsec_" + base64.b64encode(b"standard-webhooks-key-32-bytes!!").decode()
WHSEC_OLD = "whsec_" + base64.b64encode(b"the-previous-key-before-rotation").decode()


SOURCES = {
    "sw": Source(name="sw", provider=Provider.STANDARD_WEBHOOKS, secrets=(WHSEC_OLD, WHSEC)),
    "fb": Source(
        name="fb",
        provider=Provider.FORMBRICKS,
        secrets=(WHSEC,),
        mapping=FieldMapping(score="nps_q", comment="why_q", customer_id="customer_id"),
    ),
    "dl": Source(name="dl", provider=Provider.DELIGHTED, secrets=(OLD_SECRET, SECRET)),
    "tf": Source(
        name="tf",
        provider=Provider.TYPEFORM,
        secrets=(SECRET,),
        mapping=FieldMapping(score="nps_ref", comment="why_ref", customer_id="user_id"),
    ),
    "wt": Source(name="wt", provider=Provider.WOOTRIC, secrets=(SECRET,)),
    "an": Source(name="an", provider=Provider.ASKNICELY, secrets=(SECRET,)),
    "shop": Source(name="shop", provider=Provider.CANONICAL, tokens=("t0ken-shop",)),
    # A Standard Webhooks sender with its own event names and field names.
    "swx": Source(
        name="swx",
        provider=Provider.STANDARD_WEBHOOKS,
        secrets=(WHSEC,),
        mapping=FieldMapping(
            events=EventTypes(
                created=("nps.answer_submitted",),
                updated=("nps.answer_edited",),
                opted_out=("member.unsubscribed",),
                ignored=("campaign.sent",),
            ),
            response_id="data.answer_id",
            survey_id="data.campaign.key",
            customer="data.member",
            customer_id="data.member.uid",
            customer_email="data.member.mail",
            attributes="data.member.traits",
            score="data.rating",
            comment="data.feedback",
            responded_at="data.submitted_at",
            scope="data.channel",
        ),
    ),
}


def _client(publisher: FakePublisher, *, docs: bool = False) -> TestClient:
    app = http_app(
        sources=SOURCES,
        adapters=ADAPTERS,
        fetchers={},
        publisher=publisher,
        clock=FrozenClock(NOW),
        publish_timeout=1.0,
        max_body_bytes=64 * 1024,
        docs=docs,
    )
    return TestClient(app, raise_server_exceptions=False)


# --- how each vendor signs --------------------------------------------------------------------


def _hex(secret: str, body: bytes, algorithm: str = "sha256") -> str:
    return hmac.new(secret.encode(), body, algorithm).hexdigest()


def sign_standard(body: bytes, secret: str = WHSEC, at: datetime = NOW) -> dict[str, str]:
    msg_id = "msg_" + hashlib.sha1(body).hexdigest()[:20]  # noqa: S324 - an id, not security
    ts = int(at.timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard_webhooks(
            msg_id=msg_id, timestamp=ts, body=body, secret=secret
        ),
        "content-type": "application/json",
    }


def sign_delighted(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Delighted-Webhook-Signature": "sha256=" + _hex(secret, body),
        "content-type": "application/json",
    }


def sign_typeform(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, "sha256").digest()
    return {
        "Typeform-Signature": "sha256=" + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


def sign_wootric(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Wootric-Signature": "sha1=" + _hex(secret, body, "sha1"),
        "content-type": "application/x-www-form-urlencoded",
    }


def sign_asknicely(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "content-type": "application/json"}


# --- the vendors' payloads --------------------------------------------------------------------


def standard_body(score: object = 3, comment: str | None = "Setup took too long") -> bytes:
    return json.dumps(
        {
            "type": "response.created",
            "timestamp": "2026-11-24T11:59:00Z",
            "data": {
                "response_id": "r-77",
                "survey_id": "onboarding",
                "customer": {"id": "cus_1", "email": "ada@example.com"},
                "score": score,
                "comment": comment,
                "responded_at": "2026-11-24T11:58:00Z",
            },
        }
    ).encode()


def formbricks_body(score: object = 4) -> bytes:
    return json.dumps(
        {
            "webhookId": "clwh0000",
            "event": "responseFinished",
            "data": {
                "id": "clresp123",
                "createdAt": "2026-11-24T11:50:00.000Z",
                "updatedAt": "2026-11-24T11:51:00.000Z",
                "surveyId": "clsurvey9",
                "finished": True,
                "data": {"nps_q": score, "why_q": "Too many bugs", "customer_id": "cus_fb"},
                "meta": {"source": "link"},
                "contact": None,
                "contactAttributes": {"email": "grace@example.com"},
                "tags": [],
                "variables": {},
                "ttc": {},
            },
        }
    ).encode()


def delighted_body(
    event_type: str = "survey_response.created", score: object = 9, comment: str | None = None
) -> bytes:
    return json.dumps(
        {
            "event_type": event_type,
            "event_id": "b8d057c59327541d7ec2104c0a9a255ad1997fb00831b9c6bbf09561e6d5cbd0",
            "event_data": {
                "id": "5435",
                "person": {
                    "id": "5975",
                    "email": "charlie_gravis@example.com",
                    "name": "Charlie Gravis",
                    "created_at": 1732186784,
                },
                "survey_type": "nps",
                "score": score,
                "comment": comment,
                "permalink": "https://app.delighted.com/r/5pFDpmlyC8GUc5oxU6USto5VonSKAqOa",
                "created_at": 1732186844,
                "updated_at": 1732187444,
                "person_properties": None,
                "notes": [],
                "tags": [],
                "additional_answers": [],
            },
        }
    ).encode()


def delighted_unsubscribe_body() -> bytes:
    return json.dumps(
        {
            "event_type": "unsubscribe.created",
            "event_id": "unsub-e1",
            "event_data": {
                "person": {"id": "5975", "email": "charlie_gravis@example.com"},
                "unsubscribed_at": 1732190000,
            },
        }
    ).encode()


def typeform_body(number: object = 6) -> bytes:
    return json.dumps(
        {
            "event_id": "LtWXD3crgy",
            "event_type": "form_response",
            "form_response": {
                "form_id": "lT4Z3j",
                "token": "a3a12ec67a1365927098a606107fac15",
                "submitted_at": "2018-01-18T18:17:02Z",
                "landed_at": "2018-01-18T18:07:02Z",
                "hidden": {"user_id": "abc123456"},
                "definition": {
                    "id": "lT4Z3j",
                    "title": "NPS",
                    "fields": [
                        {"id": "Nps1", "ref": "nps_ref", "type": "nps", "title": "How likely…"},
                        {"id": "Why1", "ref": "why_ref", "type": "long_text", "title": "Why?"},
                        {"id": "Em1", "ref": "email_ref", "type": "email", "title": "Email"},
                    ],
                },
                "answers": [
                    {
                        "type": "number",
                        "number": number,
                        "field": {"id": "Nps1", "type": "nps", "ref": "nps_ref"},
                    },
                    {
                        "type": "text",
                        "text": "Support never answered",
                        "field": {"id": "Why1", "type": "long_text", "ref": "why_ref"},
                    },
                    {
                        "type": "email",
                        "email": "laura@example.com",
                        "field": {"id": "Em1", "type": "email", "ref": "email_ref"},
                    },
                ],
            },
        }
    ).encode()


def wootric_body(score: str = "7") -> bytes:
    # Wootric's URL-encoded sample payload, key for key.
    return urlencode(
        {
            "response[id]": "1128",
            "response[email]": "nps@example.com",
            "response[external_id]": "123abc",
            "response[score]": score,
            "response[text]": "Great app",
            "response[ip_address]": "127.0.0.1",
            "response[origin_url]": "https://wootric.com/",
            "response[end_user_id]": "30",
            "response[end_user_properties][pricing_plan]": "Enterprise",
            "response[end_user_properties][product_plan]": "Web App",
            "response[survey_id]": "1146",
            "response[created_at]": "2016-08-04 13:57:26 -0700",
            "response[updated_at]": "2016-08-04 13:57:26 -0700",
            "response[excluded_from_calculations]": "false",
            "event_name": "created",
            "timestamp": "2016-08-04 13:57:31 -0700",
        }
    ).encode()


def asknicely_body(score: object = "10") -> bytes:
    return json.dumps(
        {
            "count": 1,
            "person": {
                "id": "163012",
                "name": "Firstname Lastname",
                "firstname": "Firstname",
                "lastname": "Lastname",
                "email": "tester@asknice.ly",
                "created": "1774990112",
                "segment": "general",
            },
            "question": {
                "id": "345094",
                "score": score,
                "comment": "The gym was great, love it!",
                "sent": "1774990116",
                "opened": "1774990122",
                "responded": "1774990125",
                "segment": "general",
                "deliverymethod": "email",
                "survey_template": "gym-members-nps",
            },
        }
    ).encode()


@dataclass(frozen=True)
class Case:
    source: str
    body: Callable[[], bytes]
    sign: Callable[[bytes], dict[str, str]]
    provider_id: str
    customer_id: str
    score: int
    comment: str | None
    email: str | None


CASES = {
    "standard-webhooks": Case(
        "sw",
        standard_body,
        sign_standard,
        "r-77",
        "cus_1",
        3,
        "Setup took too long",
        "ada@example.com",
    ),
    "formbricks": Case(
        "fb",
        formbricks_body,
        sign_standard,
        "clresp123",
        "cus_fb",
        4,
        "Too many bugs",
        "grace@example.com",
    ),
    "delighted": Case(
        "dl", delighted_body, sign_delighted, "5435", "5975", 9, None, "charlie_gravis@example.com"
    ),
    "typeform": Case(
        "tf",
        typeform_body,
        sign_typeform,
        "a3a12ec67a1365927098a606107fac15",
        "abc123456",
        6,
        "Support never answered",
        "laura@example.com",
    ),
    "wootric": Case(
        "wt", wootric_body, sign_wootric, "1128", "123abc", 7, "Great app", "nps@example.com"
    ),
    "asknicely": Case(
        "an",
        asknicely_body,
        sign_asknicely,
        "345094",
        "163012",
        10,
        "The gym was great, love it!",
        "tester@asknice.ly",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_signed_vendor_payload_becomes_one_normalised_event(case: Case) -> None:
    publisher = FakePublisher()
    body = case.body()
    answer = _client(publisher).post(
        f"/v1/webhooks/{case.source}", content=body, headers=case.sign(body)
    )
    assert answer.status_code == 202, answer.text
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert event.source == case.source
    assert event.provider_response_id == case.provider_id
    assert event.response_id == ResponseReceived.derive_response_id(case.source, case.provider_id)
    assert (event.score, event.comment) == (case.score, case.comment)
    assert (event.customer.id, event.customer.email) == (case.customer_id, case.email)
    assert event.received_at == NOW
    assert answer.json()["accepted"] == [
        {
            "event_id": str(event.event_id()),
            "response_id": str(event.response_id),
            "type": "response",
            "comment_truncated": False,
            "attributes_set_aside": [],
        }
    ]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_replayed_delivery_is_the_same_event(case: Case) -> None:
    publisher = FakePublisher()
    client = _client(publisher)
    body = case.body()
    for _ in range(2):
        assert (
            client.post(
                f"/v1/webhooks/{case.source}", content=body, headers=case.sign(body)
            ).status_code
            == 202
        )
    first, second = publisher.published
    assert first.event_id() == second.event_id()


OTHER_WHSEC = "whsec_" + base64.b64encode(b"some-other-key-32-bytes-long!!!!").decode()


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_wrong_signature_is_401_and_nothing_is_published(case: Case) -> None:
    publisher = FakePublisher()
    body = case.body()
    wrong = OTHER_WHSEC if case.sign is sign_standard else "not-the-secret-0123456789"
    answer = _client(publisher).post(
        f"/v1/webhooks/{case.source}", content=body, headers=_resign(case, body, wrong)
    )
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert publisher.published == []


def _resign(case: Case, body: bytes, secret: str) -> dict[str, str]:
    signer: Any = case.sign
    return dict(signer(body, secret))


#: AskNicely signs nothing (a shared secret in a header), so only the others can detect tampering.
SIGNED = {name: case for name, case in CASES.items() if name != "asknicely"}


@pytest.mark.parametrize("case", SIGNED.values(), ids=SIGNED.keys())
def test_tampered_body_is_401(case: Case) -> None:
    publisher = FakePublisher()
    body = case.body()
    headers = case.sign(body)
    tampered = body.replace(b"e", b"E", 1)
    answer = _client(publisher).post(
        f"/v1/webhooks/{case.source}", content=tampered, headers=headers
    )
    assert answer.status_code == 401
    assert publisher.published == []


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_missing_signature_is_401(case: Case) -> None:
    answer = _client(FakePublisher()).post(
        f"/v1/webhooks/{case.source}",
        content=case.body(),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 401


@pytest.mark.parametrize("source", ["sw", "fb"])
def test_stale_timestamp_is_401_even_when_correctly_signed(source: str) -> None:
    publisher = FakePublisher()
    body = standard_body() if source == "sw" else formbricks_body()
    headers = sign_standard(body, at=datetime(2026, 11, 24, 11, 50, tzinfo=UTC))
    answer = _client(publisher).post(f"/v1/webhooks/{source}", content=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["title"] == "Stale timestamp"
    assert publisher.published == []


def test_a_previous_secret_still_verifies_during_a_rotation() -> None:
    publisher = FakePublisher()
    client = _client(publisher)
    body = standard_body()
    assert (
        client.post(
            "/v1/webhooks/sw", content=body, headers=sign_standard(body, WHSEC_OLD)
        ).status_code
        == 202
    )
    body = delighted_body()
    assert (
        client.post(
            "/v1/webhooks/dl", content=body, headers=sign_delighted(body, OLD_SECRET)
        ).status_code
        == 202
    )
    assert len(publisher.published) == 2


def test_several_signatures_in_one_standard_header_any_may_match() -> None:
    body = standard_body()
    headers = sign_standard(body)
    headers["webhook-signature"] = "v1,bm90LXRoZS1zaWduYXR1cmU= " + headers["webhook-signature"]
    assert (
        _client(FakePublisher()).post("/v1/webhooks/sw", content=body, headers=headers).status_code
        == 202
    )


def test_unknown_source_is_404_problem() -> None:
    body = standard_body()
    answer = _client(FakePublisher()).post(
        "/v1/webhooks/nobody", content=body, headers=sign_standard(body)
    )
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_canonical_source_receives_no_webhooks() -> None:
    answer = _client(FakePublisher()).post("/v1/webhooks/shop", content=b"{}")
    assert answer.status_code == 404


def test_a_source_never_verifies_with_another_sources_secret() -> None:
    # Typeform and Delighted share SECRET here, but a Delighted-signed body is not a Typeform one.
    body = delighted_body()
    answer = _client(FakePublisher()).post(
        "/v1/webhooks/tf", content=body, headers=sign_delighted(body)
    )
    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("source", "body", "sign"),
    [
        ("sw", b"{not json", sign_standard),
        ("dl", b"[1, 2]", sign_delighted),
        ("tf", b'{"event_type": "form_response", "form_response": 3}', sign_typeform),
        ("an", b'{"person": "x"}', sign_asknicely),
    ],
)
def test_malformed_body_is_400_problem(
    source: str, body: bytes, sign: Callable[[bytes], dict[str, str]]
) -> None:
    answer = _client(FakePublisher()).post(
        f"/v1/webhooks/{source}", content=body, headers=sign(body)
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("source", "body", "sign", "field"),
    [
        ("sw", standard_body(score=11), sign_standard, "data.score"),
        ("sw", standard_body(score="nine"), sign_standard, "data.score"),
        ("sw", standard_body(score=True), sign_standard, "data.score"),
        ("dl", delighted_body(score=-1), sign_delighted, "event_data.score"),
        ("tf", typeform_body(number=7.5), sign_typeform, "form_response.answers.score"),
        ("wt", wootric_body(score="nine"), sign_wootric, "response.score"),
        ("an", asknicely_body(score="11"), sign_asknicely, "question.score"),
        ("fb", formbricks_body(score="ten"), sign_standard, "data.data.nps_q"),
    ],
)
def test_score_outside_0_to_10_or_not_a_number_is_422(
    source: str, body: bytes, sign: Callable[[bytes], dict[str, str]], field: str
) -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post(f"/v1/webhooks/{source}", content=body, headers=sign(body))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == field
    assert publisher.published == []


@pytest.mark.parametrize(
    ("source", "body", "sign"),
    [
        ("sw", standard_body(score="8"), sign_standard),
        ("an", asknicely_body(score="8"), sign_asknicely),
        ("wt", wootric_body(score="8"), sign_wootric),
    ],
)
def test_score_strings_are_accepted_where_vendors_send_strings(
    source: str, body: bytes, sign: Callable[[bytes], dict[str, str]]
) -> None:
    publisher = FakePublisher()
    assert (
        _client(publisher)
        .post(f"/v1/webhooks/{source}", content=body, headers=sign(body))
        .status_code
        == 202
    )
    assert publisher.published[0].score == 8  # type: ignore[attr-defined]


def test_delighted_late_comment_is_an_update_of_the_same_response() -> None:
    publisher = FakePublisher()
    client = _client(publisher)
    created = delighted_body("survey_response.created", comment=None)
    updated = delighted_body(
        "survey_response.updated", comment="Your service is fast and flawless!"
    )
    for body in (created, updated):
        assert (
            client.post("/v1/webhooks/dl", content=body, headers=sign_delighted(body)).status_code
            == 202
        )
    first, second = publisher.published
    assert isinstance(first, ResponseReceived)
    assert isinstance(second, ResponseReceived)
    assert first.response_id == second.response_id
    assert first.event_id() != second.event_id()
    assert (first.comment, second.comment) == (None, "Your service is fast and flawless!")


def test_delighted_unsubscribe_becomes_a_contact_opt_out() -> None:
    publisher = FakePublisher()
    body = delighted_unsubscribe_body()
    answer = _client(publisher).post("/v1/webhooks/dl", content=body, headers=sign_delighted(body))
    assert answer.status_code == 202
    [event] = publisher.published
    assert isinstance(event, ContactOptOut)
    assert (event.source, event.customer_id, event.provider_event_id) == ("dl", "5975", "unsub-e1")
    assert answer.json()["accepted"][0]["type"] == "opt_out"


def test_standard_webhooks_opt_out_becomes_a_contact_opt_out() -> None:
    publisher = FakePublisher()
    body = json.dumps(
        {"type": "contact.opted_out", "data": {"customer_id": "cus_1", "scope": "email"}}
    ).encode()
    assert (
        _client(publisher)
        .post("/v1/webhooks/sw", content=body, headers=sign_standard(body))
        .status_code
        == 202
    )
    [event] = publisher.published
    assert isinstance(event, ContactOptOut)
    assert (event.customer_id, event.scope.value) == ("cus_1", "email")


@pytest.mark.parametrize(
    ("source", "body", "sign"),
    [
        ("dl", delighted_body(event_type="survey_response.deleted"), sign_delighted),
        (
            "tf",
            json.dumps({"event_type": "form_partial", "form_response": {}}).encode(),
            sign_typeform,
        ),
        ("swx", json.dumps({"type": "campaign.sent", "data": {}}).encode(), sign_standard),
        (
            "wt",
            urlencode(
                {"decline[id]": "19", "decline[email]": "nps@example.com", "event_name": "created"}
            ).encode(),
            sign_wootric,
        ),
    ],
)
def test_events_without_a_response_are_acknowledged_and_ignored(
    source: str, body: bytes, sign: Callable[[bytes], dict[str, str]]
) -> None:
    publisher = FakePublisher()
    answer = _client(publisher).post(f"/v1/webhooks/{source}", content=body, headers=sign(body))
    assert answer.status_code == 202
    assert answer.json()["accepted"] == []
    assert answer.json()["ignored"]
    assert publisher.published == []


def test_webhook_body_over_the_limit_is_413() -> None:
    body = standard_body(comment="x" * 70_000)
    answer = _client(FakePublisher()).post(
        "/v1/webhooks/sw", content=body, headers=sign_standard(body)
    )
    assert answer.status_code == 413


def test_ids_are_uuids_derived_from_source_and_provider_id() -> None:
    publisher = FakePublisher()
    body = typeform_body()
    _client(publisher).post("/v1/webhooks/tf", content=body, headers=sign_typeform(body))
    event = publisher.published[0]
    assert isinstance(event, ResponseReceived)
    assert isinstance(event.response_id, uuid.UUID)


def _metric(line_start: str) -> float:
    """A sample's value in this process's metrics, as the metrics port serves them."""
    for line in TestClient(metrics_app()).get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.split()[-1])
    return 0.0


def test_deliveries_are_counted_by_source_and_outcome() -> None:
    client = _client(FakePublisher())
    bad = 'npsloop_ingest_webhooks_total{outcome="bad_signature",source="dl"}'
    good = 'npsloop_ingest_webhooks_total{outcome="accepted",source="dl"}'
    before = (_metric(bad), _metric(good))
    body = delighted_body()
    client.post("/v1/webhooks/dl", content=body, headers=sign_delighted(body, "wrong-secret-123"))
    client.post("/v1/webhooks/dl", content=body, headers=sign_delighted(body))
    assert (_metric(bad), _metric(good)) == (before[0] + 1, before[1] + 1)


# --- the hot path keeps every guarantee of the app ----------------------------------------------


def test_chunked_webhook_body_over_the_limit_is_413_problem() -> None:
    body = standard_body(comment="x" * 70_000)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    answer = _client(FakePublisher()).post(
        "/v1/webhooks/sw", content=chunks(), headers=sign_standard(body)
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "Payload too large"


def test_chunked_webhook_body_within_the_limit_is_read_whole() -> None:
    publisher = FakePublisher()
    body = standard_body()

    def chunks() -> Iterator[bytes]:
        yield body[:10]
        yield body[10:]

    answer = _client(publisher).post(
        "/v1/webhooks/sw", content=chunks(), headers=sign_standard(body)
    )
    assert answer.status_code == 202
    assert len(publisher.published) == 1


class BrokenPublisher:
    async def publish(self, event: Event, *, source: str, now: datetime) -> None:
        raise RuntimeError("a bug, not an outage")


def test_unexpected_error_on_the_webhook_is_a_logged_500_problem_not_a_dropped_connection() -> None:
    app = http_app(
        sources=SOURCES,
        adapters=ADAPTERS,
        fetchers={},
        publisher=BrokenPublisher(),
        clock=FrozenClock(NOW),
        publish_timeout=1.0,
    )
    body = standard_body()
    answer = TestClient(app, raise_server_exceptions=False).post(
        "/v1/webhooks/sw", content=body, headers=sign_standard(body)
    )
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "Internal error"


def test_webhook_requests_are_measured_under_the_route_template() -> None:
    client = _client(FakePublisher())
    line = 'npsloop_http_requests_total{method="POST",route="/v1/webhooks/{source}",status="401"}'
    before = _metric(line)
    body = standard_body()
    wrong = "whsec_" + base64.b64encode(b"a-key-this-source-does-not-hold!").decode()
    client.post("/v1/webhooks/sw", content=body, headers=sign_standard(body, wrong))
    assert _metric(line) == before + 1


def test_webhook_route_is_documented_with_its_vendor_examples() -> None:
    spec = _client(FakePublisher(), docs=True).get("/openapi.json").json()
    operation = spec["paths"]["/v1/webhooks/{source}"]["post"]
    assert "delighted" in operation["requestBody"]["content"]["application/json"]["examples"]
    assert {"202", "401", "404", "413"} <= set(operation["responses"])


def test_asknicely_survey_is_its_template_never_the_respondents_segment() -> None:
    """AskNicely sends the survey template as `survey_template`; `segment` is who answered."""
    publisher = FakePublisher()
    body = asknicely_body()
    answer = _client(publisher).post("/v1/webhooks/an", content=body, headers=sign_asknicely(body))
    assert answer.status_code == 202, answer.text
    [event] = publisher.published
    assert event.survey_id == "asknicely-gym-members-nps"  # type: ignore[attr-defined]
    without = json.loads(body)
    del without["question"]["survey_template"]
    raw = json.dumps(without).encode()
    _client(publisher).post("/v1/webhooks/an", content=raw, headers=sign_asknicely(raw))
    assert publisher.published[-1].survey_id == "asknicely-nps"  # type: ignore[attr-defined]


# --- Standard Webhooks senders with their own event names and fields ---------------------------


def own_names_body(kind: str = "nps.answer_submitted", rating: object = 2) -> bytes:
    """A sender signing with Standard Webhooks, its envelope as the spec recommends
    (`type`, `timestamp`, `data`), everything inside in its own words."""
    return json.dumps(
        {
            "type": kind,
            "timestamp": "2026-11-24T11:59:00Z",
            "data": {
                "answer_id": "ans_901",
                "campaign": {"key": "relationship-q4"},
                "member": {
                    "uid": "mem_42",
                    "mail": "ada@example.com",
                    "name": "Ada",
                    "traits": {"plan": "pro", "seats": 12, "region": "eu"},
                },
                "rating": rating,
                "feedback": "Exports keep failing",
                "submitted_at": 1795521480,  # 2026-11-24T11:58:00Z, in Unix seconds
            },
        }
    ).encode()


@pytest.mark.parametrize("kind", ["nps.answer_submitted", "nps.answer_edited"])
def test_a_standard_webhooks_sender_with_its_own_names_is_read_through_its_mapping(
    kind: str,
) -> None:
    publisher = FakePublisher()
    body = own_names_body(kind)
    answer = _client(publisher).post("/v1/webhooks/swx", content=body, headers=sign_standard(body))
    assert answer.status_code == 202
    assert "warning" not in answer.json()
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert (event.provider_response_id, event.survey_id) == ("ans_901", "relationship-q4")
    assert (event.customer.id, event.customer.email, event.customer.name) == (
        "mem_42",
        "ada@example.com",
        "Ada",
    )
    assert event.customer.attributes == {"plan": "pro", "seats": "12", "region": "eu"}
    assert (event.score, event.comment) == (2, "Exports keep failing")
    assert event.responded_at == datetime(2026, 11, 24, 11, 58, tzinfo=UTC)


@pytest.mark.parametrize("rating", [-1, 11, "nine", None])
def test_a_mapped_score_outside_0_to_10_is_refused_naming_the_senders_field(rating: object) -> None:
    publisher = FakePublisher()
    body = own_names_body(rating=rating)
    answer = _client(publisher).post("/v1/webhooks/swx", content=body, headers=sign_standard(body))
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "data.rating"
    assert publisher.published == []


def test_the_canonical_standard_webhooks_shape_refuses_a_score_of_minus_one() -> None:
    publisher = FakePublisher()
    body = standard_body(score=-1)
    answer = _client(publisher).post("/v1/webhooks/sw", content=body, headers=sign_standard(body))
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "data.score"


def test_an_undeclared_event_type_is_counted_and_answered_with_a_warning() -> None:
    """The sender's `response.created`-like type that the source did not declare: nothing is
    published (npsloop cannot know what it means), but the sender is told and ops can see it."""
    publisher = FakePublisher()
    counted = 'npsloop_ingest_webhooks_total{outcome="undeclared_type",source="swx"}'
    before = _metric(counted)
    body = own_names_body("nps.answer_created")  # not declared: a typo, or a new type
    answer = _client(publisher).post("/v1/webhooks/swx", content=body, headers=sign_standard(body))
    assert answer.status_code == 202
    assert answer.json()["accepted"] == []
    assert "nps.answer_created" in answer.json()["warning"]
    assert "mapping.events" in answer.json()["warning"]
    assert "ignored" not in answer.json()
    assert publisher.published == []
    assert _metric(counted) == before + 1


def test_the_canonical_source_warns_of_an_event_type_it_does_not_know() -> None:
    publisher = FakePublisher()
    body = json.dumps({"type": "survey.published", "data": {}}).encode()
    answer = _client(publisher).post("/v1/webhooks/sw", content=body, headers=sign_standard(body))
    assert answer.status_code == 202
    assert "survey.published" in answer.json()["warning"]


def test_a_mapped_opt_out_names_the_customer_and_the_channel_in_the_senders_words() -> None:
    publisher = FakePublisher()
    body = json.dumps(
        {
            "type": "member.unsubscribed",
            "timestamp": "2026-11-24T11:59:00Z",
            "data": {"member": {"uid": "mem_42"}, "channel": "SMS"},
        }
    ).encode()
    headers = sign_standard(body)
    client = _client(publisher)
    assert client.post("/v1/webhooks/swx", content=body, headers=headers).status_code == 202
    assert client.post("/v1/webhooks/swx", content=body, headers=headers).status_code == 202
    first, replayed = publisher.published
    assert isinstance(first, ContactOptOut)
    assert (first.customer_id, first.scope.value) == ("mem_42", "sms")
    assert first.provider_event_id == headers["webhook-id"]
    assert replayed.event_id() == first.event_id()  # a replayed webhook-id is the same event


def test_customer_fields_that_cannot_be_attributes_are_named_in_the_answer_never_valued() -> None:
    publisher = FakePublisher()
    body = json.loads(typeform_body())
    body["form_response"]["hidden"] |= {"plan": "pro", "phone": "06 12 34 56 78"}
    raw = json.dumps(body).encode()
    counted = 'npsloop_ingest_attributes_set_aside_total{source="tf"}'
    before = _metric(counted)
    with structlog.testing.capture_logs() as logged:
        answer = _client(publisher).post("/v1/webhooks/tf", content=raw, headers=sign_typeform(raw))
    assert answer.status_code == 202, answer.text
    [aside] = answer.json()["accepted"][0]["attributes_set_aside"]
    assert aside.startswith("'phone': is not a phone number with its country code")
    assert _metric(counted) == before + 1
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert (event.customer.attributes, event.customer.phone) == ({"plan": "pro"}, None)
    assert "06 12" not in aside + json.dumps(logged)
    assert [e["fields"] for e in logged if e["event"] == "webhook.attributes_set_aside"] == [
        [aside]
    ]
