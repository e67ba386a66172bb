"""Thin webhooks (SurveyMonkey, HubSpot, Qualtrics): the response is fetched from the vendor's
API; an outage of that API becomes a 503 with Retry-After (the vendor redelivers), never a lost
response.

The fake SurveyMonkey API checks each request against the documented format: GET
/v3/surveys/{survey_id}/responses/{response_id}/details, `simple=true`, and
`Authorization: Bearer <access token>`; it answers 401 otherwise, as SurveyMonkey does.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import structlog
from fastapi.testclient import TestClient

from nps_events import Event, ResponseReceived
from nps_ingest.adapters.vendor_api import HubSpotClient, QualtricsClient, SurveyMonkeyClient
from nps_ingest.bootstrap import ADAPTERS
from nps_ingest.domain.attributes import AttributeRules
from nps_ingest.domain.sources import FieldMapping, Proof, Provider, Source
from nps_ingest.entrypoints.api import http_app
from nps_kit.clock import FrozenClock
from tests.support.fake_publisher import FakePublisher

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
KEY = "sm-client-id&sm-client-secret"
ACCESS_TOKEN = "sm-access-token-123"
SOURCE = Source(
    name="sm",
    provider=Provider.SURVEYMONKEY,
    secrets=(KEY,),
    api_token=ACCESS_TOKEN,
    mapping=FieldMapping(score="q-nps", comment="q-why", customer_id="customer_id"),
)

CALLBACK = {
    "name": "NPS webhook",
    "filter_type": "survey",
    "filter_id": "123456789",
    "event_type": "response_completed",
    "event_id": "evt-1",
    "object_type": "response",
    "object_id": "987654321",
    "event_datetime": "2026-11-24T11:59:00.000000+00:00",
    "resources": {
        "survey_id": "123456789",
        "collector_id": "111222333",
        "respondent_id": "987654321",
        "recipient_id": "777888999",
    },
}

DETAILS = {
    "id": "987654321",
    "survey_id": "123456789",
    "collector_id": "111222333",
    "response_status": "completed",
    "date_created": "2026-11-24T11:55:00+00:00",
    "date_modified": "2026-11-24T11:58:00+00:00",
    "custom_variables": {"customer_id": "cus_sm_1"},
    "metadata": {"contact": {"email": {"type": "string", "value": "joan@example.com"}}},
    "pages": [
        {
            "id": "p1",
            "questions": [
                {"id": "q-nps", "answers": [{"choice_id": "c9", "simple_text": "2"}]},
                {
                    "id": "q-why",
                    "answers": [
                        {"tag_data": [], "text": "Billing errors", "simple_text": "Billing errors"}
                    ],
                },
            ],
        }
    ],
}


class FakeSurveyMonkey:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return httpx.Response(401, json={"error": {"name": "Authorization Error"}})
        expected = "/v3/surveys/123456789/responses/987654321/details"
        if request.method != "GET" or request.url.path != expected:
            return httpx.Response(404, json={"error": {"name": "Resource Not Found"}})
        if request.url.params.get("simple") != "true":
            return httpx.Response(400, json={"error": {"name": "Bad Request"}})
        if self.failures > 0:
            self.failures -= 1
            return httpx.Response(503, json={"error": {"name": "Service Unavailable"}})
        return httpx.Response(200, json=DETAILS)


def _client(api: FakeSurveyMonkey, publisher: FakePublisher) -> TestClient:
    app = http_app(
        sources={"sm": SOURCE},
        adapters=ADAPTERS,
        fetchers={
            Provider.SURVEYMONKEY: SurveyMonkeyClient(
                attempts=2, transport=httpx.MockTransport(api)
            )
        },
        publisher=publisher,
        clock=FrozenClock(NOW),
        publish_timeout=5.0,
    )
    return TestClient(app, raise_server_exceptions=False)


def _signed(body: dict[str, Any], key: str = KEY) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    digest = hmac.new(key.encode(), raw, hashlib.sha1).digest()
    return raw, {
        "Sm-Signature": base64.b64encode(digest).decode(),
        "Sm-Apikey": "sm-client-id",
        "content-type": "application/json",
    }


def test_completed_response_is_fetched_and_normalised() -> None:
    api, publisher = FakeSurveyMonkey(), FakePublisher()
    raw, headers = _signed(CALLBACK)
    answer = _client(api, publisher).post("/v1/webhooks/sm", content=raw, headers=headers)
    assert answer.status_code == 202, answer.text
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert (event.provider_response_id, event.survey_id) == ("987654321", "123456789")
    assert (event.score, event.comment) == (2, "Billing errors")
    assert (event.customer.id, event.customer.email) == ("cus_sm_1", "joan@example.com")


def test_vendor_outage_is_503_with_retry_after_and_the_redelivery_succeeds() -> None:
    api, publisher = FakeSurveyMonkey(failures=2), FakePublisher()
    client = _client(api, publisher)
    raw, headers = _signed(CALLBACK)
    answer = client.post("/v1/webhooks/sm", content=raw, headers=headers)
    assert answer.status_code == 503
    assert answer.headers["retry-after"]
    assert answer.headers["content-type"] == "application/problem+json"
    assert api.calls == 2  # retried once before giving up
    assert publisher.published == []
    # SurveyMonkey redelivers the same callback later: now it goes through.
    assert client.post("/v1/webhooks/sm", content=raw, headers=headers).status_code == 202
    assert len(publisher.published) == 1


def test_wrong_sm_signature_is_401_and_the_api_is_not_called() -> None:
    api, publisher = FakeSurveyMonkey(), FakePublisher()
    raw, headers = _signed(CALLBACK, key="someone&else")
    answer = _client(api, publisher).post("/v1/webhooks/sm", content=raw, headers=headers)
    assert answer.status_code == 401
    assert api.calls == 0


def test_other_surveymonkey_events_are_ignored() -> None:
    api, publisher = FakeSurveyMonkey(), FakePublisher()
    raw, headers = _signed({**CALLBACK, "event_type": "collector_created"})
    answer = _client(api, publisher).post("/v1/webhooks/sm", content=raw, headers=headers)
    assert answer.status_code == 202
    assert answer.json()["ignored"]
    assert api.calls == 0


# --- HubSpot --------------------------------------------------------------------------------


HUBSPOT_SECRET = "hubspot-client-secret-1"
HUBSPOT_TOKEN = "pat-na1-hubspot-token"
PUBLIC_URL = "https://ingest.example.com/v1/webhooks/hs"
HUBSPOT = Source(
    name="hs",
    provider=Provider.HUBSPOT,
    secrets=(HUBSPOT_SECRET,),
    api_token=HUBSPOT_TOKEN,
    options={"public_url": PUBLIC_URL},
)
HUBSPOT_EVENTS = [
    {
        "eventId": 100,
        "subscriptionId": 2001,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": 1764000000000,
        "subscriptionType": "object.creation",
        "objectTypeId": "0-19",
        "attemptNumber": 0,
        "objectId": 5551212,
        "changeSource": "FEEDBACK",
    }
]
SUBMISSION = {
    "id": "5551212",
    "properties": {
        "hs_object_id": "5551212",
        "hs_response_value": "5",
        "hs_content": "Onboarding was confusing",
        "hs_survey_id": "nps-2026",
        "hs_contact_email_rollup": "ravi@example.com",
        "hs_submission_timestamp": "2026-11-24T11:48:30.000Z",
        "hs_createdate": "2026-11-24T11:50:00.000Z",
        # Someone edited the record a week later: not when the customer answered.
        "hs_lastmodifieddate": "2026-12-01T09:00:00.000Z",
    },
    "associations": {
        "contacts": {"results": [{"id": "901", "type": "feedback_submission_to_contact"}]}
    },
    "createdAt": "2026-11-24T11:50:00.000Z",
    "updatedAt": "2026-11-24T11:50:00.000Z",
    "archived": False,
}


#: `GET /crm/v3/objects/contacts/901?properties=…`: HubSpot returns the properties asked for
#: (those it has), plus the record's own `createdate`, `email`, `firstname`, `lastname`,
#: `hs_object_id` and `lastmodifieddate`.
CONTACT_PROPERTIES = {
    "createdate": "2025-01-02T10:00:00.000Z",
    "email": "ravi@example.com",
    "firstname": "Ravi",
    "lastname": "Patel",
    "hs_object_id": "901",
    "lastmodifieddate": "2026-11-20T10:00:00.000Z",
    "hs_language": "en",
    "hs_timezone": "europe_slash_london",
    "lifecyclestage": "customer",
    "plan": "enterprise",
}


class FakeHubSpot:
    def __init__(self, *, contact: bool = False) -> None:
        self.calls = 0
        #: Whether HubSpot still has the submission's contact (else 404, as for a deleted one).
        self.contact = contact
        self.contact_properties_asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if request.headers.get("authorization") != f"Bearer {HUBSPOT_TOKEN}":
            return httpx.Response(
                401, json={"status": "error", "category": "INVALID_AUTHENTICATION"}
            )
        if self.contact and request.url.path == "/crm/v3/objects/contacts/901":
            self.contact_properties_asked = (request.url.params.get("properties") or "").split(",")
            asked = {*self.contact_properties_asked, *list(CONTACT_PROPERTIES)[:6]}
            properties = {k: v for k, v in CONTACT_PROPERTIES.items() if k in asked}
            return httpx.Response(200, json={"id": "901", "properties": properties})
        if (
            request.method != "GET"
            or request.url.path != "/crm/v3/objects/feedback_submissions/5551212"
        ):
            return httpx.Response(404, json={"status": "error", "category": "OBJECT_NOT_FOUND"})
        props = (request.url.params.get("properties") or "").split(",")
        if "hs_response_value" not in props or request.url.params.get("associations") != "contacts":
            return httpx.Response(200, json={**SUBMISSION, "properties": {}, "associations": {}})
        return httpx.Response(200, json=SUBMISSION)


def _hubspot_client(api: FakeHubSpot, publisher: FakePublisher) -> TestClient:
    app = http_app(
        sources={"hs": HUBSPOT},
        adapters=ADAPTERS,
        fetchers={Provider.HUBSPOT: HubSpotClient(attempts=2, transport=httpx.MockTransport(api))},
        publisher=publisher,
        clock=FrozenClock(NOW),
        publish_timeout=5.0,
    )
    return TestClient(app, raise_server_exceptions=False)


def _hubspot_signed(
    body: bytes, *, uri: str = PUBLIC_URL, at_ms: int | None = None, secret: str = HUBSPOT_SECRET
) -> dict[str, str]:
    stamp = str(at_ms if at_ms is not None else int(NOW.timestamp() * 1000))
    digest = hmac.new(
        secret.encode(), b"POST" + uri.encode() + body + stamp.encode(), hashlib.sha256
    )
    return {
        "X-HubSpot-Signature-v3": base64.b64encode(digest.digest()).decode(),
        "X-HubSpot-Request-Timestamp": stamp,
        "content-type": "application/json",
    }


def test_hubspot_feedback_submission_is_fetched_and_normalised() -> None:
    api, publisher = FakeHubSpot(), FakePublisher()
    body = json.dumps(HUBSPOT_EVENTS).encode()
    answer = _hubspot_client(api, publisher).post(
        "/v1/webhooks/hs", content=body, headers=_hubspot_signed(body)
    )
    assert answer.status_code == 202, answer.text
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert (event.provider_response_id, event.survey_id, event.score) == ("5551212", "nps-2026", 5)
    assert (event.customer.id, event.customer.email) == ("901", "ravi@example.com")
    # HubSpot no longer has the contact (404): no attributes, and the response is not held back.
    assert event.customer.attributes == {}
    assert event.comment == "Onboarding was confusing"
    # When the customer answered (hs_submission_timestamp), not when the record last changed.
    assert event.responded_at == datetime(2026, 11, 24, 11, 48, 30, tzinfo=UTC)


def test_hubspot_contact_properties_become_the_customers_attributes() -> None:
    api, publisher = FakeHubSpot(contact=True), FakePublisher()
    source = replace(
        HUBSPOT, attributes=AttributeRules(include=("plan", "hs_language", "hs_timezone"))
    )
    app = http_app(
        sources={"hs": source},
        adapters=ADAPTERS,
        fetchers={Provider.HUBSPOT: HubSpotClient(attempts=2, transport=httpx.MockTransport(api))},
        publisher=publisher,
        clock=FrozenClock(NOW),
        publish_timeout=5.0,
    )
    body = json.dumps(HUBSPOT_EVENTS).encode()
    answer = TestClient(app).post("/v1/webhooks/hs", content=body, headers=_hubspot_signed(body))
    assert answer.status_code == 202, answer.text
    assert "plan" in api.contact_properties_asked
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert event.customer.attributes == {"plan": "enterprise"}
    assert (event.customer.locale, event.customer.timezone) == ("en", "Europe/London")


def test_hubspot_stale_timestamp_is_401() -> None:
    api = FakeHubSpot()
    body = json.dumps(HUBSPOT_EVENTS).encode()
    six_minutes_ago = int(NOW.timestamp() * 1000) - 6 * 60 * 1000
    answer = _hubspot_client(api, FakePublisher()).post(
        "/v1/webhooks/hs", content=body, headers=_hubspot_signed(body, at_ms=six_minutes_ago)
    )
    assert answer.status_code == 401
    assert answer.json()["title"] == "Stale timestamp"
    assert api.calls == 0


def test_hubspot_signature_over_another_uri_or_body_is_401() -> None:
    body = json.dumps(HUBSPOT_EVENTS).encode()
    client = _hubspot_client(FakeHubSpot(), FakePublisher())
    other_uri = _hubspot_signed(body, uri="https://evil.example.com/v1/webhooks/hs")
    assert client.post("/v1/webhooks/hs", content=body, headers=other_uri).status_code == 401
    tampered = body.replace(b"5551212", b"5551213")
    assert (
        client.post("/v1/webhooks/hs", content=tampered, headers=_hubspot_signed(body)).status_code
        == 401
    )


# --- Qualtrics ------------------------------------------------------------------------------


QUALTRICS_KEY = "qualtrics-shared-key-1"
QUALTRICS_TOKEN = "qualtrics-api-token-1"
QUALTRICS = Source(
    name="qx",
    provider=Provider.QUALTRICS,
    secrets=(QUALTRICS_KEY,),
    api_token=QUALTRICS_TOKEN,
    mapping=FieldMapping(score="QID1", comment="QID2_TEXT", customer_id="customer_id"),
    options={"datacenter": "fra1"},
)
#: A source for a subscription created without `sharedKey`: proven by its URL's last segment.
PATH_SECRET = "kq3Yb0-pW7sXr2_LmN8vTz4cA6dE9fGh1JiKoUqR"
QUALTRICS_UNSIGNED = Source(
    name="qu",
    provider=Provider.QUALTRICS,
    secrets=(PATH_SECRET,),
    api_token=QUALTRICS_TOKEN,
    mapping=QUALTRICS.mapping,
    options={"datacenter": "fra1"},
    proof=Proof.PATH_SECRET,
)
QUALTRICS_MSG = json.dumps(
    {
        "Status": "Complete",
        "SurveyID": "SV_ebdf20QralHTzQF",
        "ResponseID": "R_1LZ2Pw5hyQZk3Vn",
        "CompletedDate": "2026-11-24 11:58:00",
        "BrandID": "acme",
    }
)
QUALTRICS_RESPONSE = {
    "result": {
        "responseId": "R_1LZ2Pw5hyQZk3Vn",
        "values": {
            "startDate": "2026-11-24T11:55:00Z",
            "endDate": "2026-11-24T11:58:00Z",
            "recordedDate": "2026-11-24T11:58:01.2Z",
            "status": 0,
            "finished": 1,
            "recipientEmail": "mo@example.com",
            "externalDataReference": "ext-77",
            "QID1": 0,
            "QID1_NPS_GROUP": 1,
            "QID2_TEXT": "Cancelled",
            "customer_id": "cus_qx_1",
        },
        "labels": {"QID1": "0"},
    },
    "meta": {"httpStatus": "200 - OK", "requestId": "req-1"},
}


class FakeQualtrics:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if request.url.host != "fra1.qualtrics.com":
            return httpx.Response(404)
        if request.headers.get("x-api-token") != QUALTRICS_TOKEN:
            return httpx.Response(401, json={"meta": {"httpStatus": "401 - Unauthorized"}})
        if request.url.path != "/API/v3/surveys/SV_ebdf20QralHTzQF/responses/R_1LZ2Pw5hyQZk3Vn":
            return httpx.Response(404, json={"meta": {"httpStatus": "404 - Not Found"}})
        return httpx.Response(200, json=QUALTRICS_RESPONSE)


def _qualtrics_form(msg: str = QUALTRICS_MSG, key: str = QUALTRICS_KEY) -> bytes:
    signature = hmac.new(key.encode(), msg.encode(), hashlib.sha512).hexdigest()
    return urlencode(
        {
            "Topic": "acme.surveyengine.completedResponse.SV_ebdf20QralHTzQF",
            "MSG": msg,
            "HMAC": signature,
        }
    ).encode()


def _qualtrics_client(api: FakeQualtrics, publisher: FakePublisher) -> TestClient:
    app = http_app(
        sources={"qx": QUALTRICS, "qu": QUALTRICS_UNSIGNED},
        adapters=ADAPTERS,
        fetchers={
            Provider.QUALTRICS: QualtricsClient(attempts=2, transport=httpx.MockTransport(api))
        },
        publisher=publisher,
        clock=FrozenClock(NOW),
        publish_timeout=5.0,
    )
    return TestClient(app, raise_server_exceptions=False)


FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_qualtrics_completed_response_is_fetched_and_normalised() -> None:
    api, publisher = FakeQualtrics(), FakePublisher()
    answer = _qualtrics_client(api, publisher).post(
        "/v1/webhooks/qx", content=_qualtrics_form(), headers=FORM
    )
    assert answer.status_code == 202, answer.text
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert (event.provider_response_id, event.survey_id) == (
        "R_1LZ2Pw5hyQZk3Vn",
        "SV_ebdf20QralHTzQF",
    )
    assert (event.score, event.comment) == (0, "Cancelled")
    assert (event.customer.id, event.customer.email) == ("cus_qx_1", "mo@example.com")


def test_qualtrics_wrong_hmac_or_tampered_msg_is_401() -> None:
    api = FakeQualtrics()
    client = _qualtrics_client(api, FakePublisher())
    wrong = _qualtrics_form(key="another-shared-key")
    assert client.post("/v1/webhooks/qx", content=wrong, headers=FORM).status_code == 401
    tampered = _qualtrics_form().replace(b"R_1LZ2Pw5hyQZk3Vn", b"R_somebodyElse000", 1)
    assert client.post("/v1/webhooks/qx", content=tampered, headers=FORM).status_code == 401
    assert api.calls == 0


def _unsigned_form(**fields: str) -> bytes:
    """What a subscription without `sharedKey` posts: the event's fields as plain form fields,
    no `MSG`, no `HMAC`."""
    return urlencode(
        {
            "Topic": "acme.surveyengine.completedResponse.SV_ebdf20QralHTzQF",
            "Status": "Complete",
            "SurveyID": "SV_ebdf20QralHTzQF",
            "ResponseID": "R_1LZ2Pw5hyQZk3Vn",
            "BrandID": "acme",
            "CompletedDate": "2026-11-24 11:58:00",
            **fields,
        }
    ).encode()


def test_qualtrics_without_a_shared_key_is_accepted_at_its_secret_url_and_fetched() -> None:
    api, publisher = FakeQualtrics(), FakePublisher()
    answer = _qualtrics_client(api, publisher).post(
        f"/v1/webhooks/qu/{PATH_SECRET}", content=_unsigned_form(), headers=FORM
    )
    assert answer.status_code == 202, answer.text
    assert api.calls == 1
    [event] = publisher.published
    assert isinstance(event, ResponseReceived)
    assert (event.provider_response_id, event.survey_id) == (
        "R_1LZ2Pw5hyQZk3Vn",
        "SV_ebdf20QralHTzQF",
    )
    # Everything published comes from the API's answer, none from the delivery.
    assert (event.score, event.comment, event.customer.id) == (0, "Cancelled", "cus_qx_1")


def test_qualtrics_without_its_secret_segment_or_with_a_wrong_one_is_401() -> None:
    api, publisher = FakeQualtrics(), FakePublisher()
    client = _qualtrics_client(api, publisher)
    bare = client.post("/v1/webhooks/qu", content=_unsigned_form(), headers=FORM)
    wrong = client.post(
        "/v1/webhooks/qu/" + "x" * len(PATH_SECRET), content=_unsigned_form(), headers=FORM
    )
    assert (bare.status_code, wrong.status_code) == (401, 401)
    assert "secret path segment" in bare.json()["detail"]
    assert PATH_SECRET not in wrong.text
    assert (api.calls, publisher.published) == (0, [])


def test_a_problem_answered_at_the_secret_url_never_echoes_the_secret() -> None:
    """A problem's `instance` names the route with `{secret}` in place of the secret segment:
    a response body may be logged on its way back through a proxy."""
    client = _qualtrics_client(FakeQualtrics(), FakePublisher())
    invalid = client.post(
        f"/v1/webhooks/qu/{PATH_SECRET}",
        content=_unsigned_form(ResponseID="not-an-id"),
        headers=FORM,
    )
    oversized = client.post(
        f"/v1/webhooks/qu/{PATH_SECRET}", content=b"x" * (1024 * 1024 + 1), headers=FORM
    )
    assert (invalid.status_code, oversized.status_code) == (422, 413)
    for answer in (invalid, oversized):
        assert answer.json()["instance"] == "/v1/webhooks/qu/{secret}"
        assert PATH_SECRET not in answer.text


def test_a_signed_qualtrics_source_has_no_url_with_a_secret_segment() -> None:
    api = FakeQualtrics()
    answer = _qualtrics_client(api, FakePublisher()).post(
        f"/v1/webhooks/qx/{PATH_SECRET}", content=_qualtrics_form(), headers=FORM
    )
    assert answer.status_code == 404
    assert api.calls == 0


def test_the_unsigned_form_without_a_path_secret_source_still_needs_the_hmac() -> None:
    api = FakeQualtrics()
    answer = _qualtrics_client(api, FakePublisher()).post(
        "/v1/webhooks/qx", content=_unsigned_form(), headers=FORM
    )
    assert answer.status_code == 401
    assert api.calls == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ResponseID": "../../users/UR_admin"}, "ResponseID"),
        ({"SurveyID": "SV_x/responses/R_1"}, "SurveyID"),
        ({"SurveyID": "SV_anotherSurvey1"}, "Topic"),
    ],
)
def test_qualtrics_ids_are_untrusted_until_the_api_returns_the_response(
    fields: dict[str, str], field: str
) -> None:
    """An id of the wrong form never reaches the API's URL; a delivery whose topic names
    another survey is refused."""
    api, publisher = FakeQualtrics(), FakePublisher()
    answer = _qualtrics_client(api, publisher).post(
        f"/v1/webhooks/qu/{PATH_SECRET}", content=_unsigned_form(**fields), headers=FORM
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == field
    assert (api.calls, publisher.published) == (0, [])


def test_an_unsigned_delivery_of_a_response_qualtrics_lacks_publishes_nothing() -> None:
    api, publisher = FakeQualtrics(), FakePublisher()
    answer = _qualtrics_client(api, publisher).post(
        f"/v1/webhooks/qu/{PATH_SECRET}",
        content=_unsigned_form(ResponseID="R_notAResponse01"),
        headers=FORM,
    )
    assert answer.status_code == 503  # Qualtrics answered 404: perhaps not yet, never invented
    assert api.calls >= 1
    assert publisher.published == []


def test_a_record_for_another_response_than_the_one_asked_is_refused() -> None:
    """Should the API (or something in between) answer with another response than the one the
    delivery named, nothing is published."""

    class Elsewhere(FakeQualtrics):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            self.calls += 1
            other = {**QUALTRICS_RESPONSE["result"], "responseId": "R_someoneElse001"}
            return httpx.Response(200, json={**QUALTRICS_RESPONSE, "result": other})

    api, publisher = Elsewhere(), FakePublisher()
    answer = _qualtrics_client(api, publisher).post(
        f"/v1/webhooks/qu/{PATH_SECRET}", content=_unsigned_form(), headers=FORM
    )
    assert answer.status_code == 400
    assert publisher.published == []


def test_the_secret_path_segment_is_never_logged() -> None:
    """Even the log of an unexpected error names the route's template, not the path (the
    exception itself goes through the kit's redaction, tested in test_redact.py)."""

    class BrokenPublisher(FakePublisher):
        async def publish(self, event: Event, *, source: str, now: datetime) -> None:
            raise RuntimeError("a bug")

    app = http_app(
        sources={"qu": QUALTRICS_UNSIGNED},
        adapters=ADAPTERS,
        fetchers={
            Provider.QUALTRICS: QualtricsClient(
                attempts=1, transport=httpx.MockTransport(FakeQualtrics())
            )
        },
        publisher=BrokenPublisher(),
        clock=FrozenClock(NOW),
        publish_timeout=5.0,
    )
    with structlog.testing.capture_logs() as logged:
        answer = TestClient(app, raise_server_exceptions=False).post(
            f"/v1/webhooks/qu/{PATH_SECRET}", content=_unsigned_form(), headers=FORM
        )
    assert answer.status_code == 500
    [error] = [e for e in logged if e["event"] == "http.unhandled_error"]
    assert error["route"] == "/v1/webhooks/{source}/{secret}"
    assert not [
        (e["event"], key)
        for e in logged
        for key, value in e.items()
        if key != "exc_info" and PATH_SECRET in str(value)
    ]
