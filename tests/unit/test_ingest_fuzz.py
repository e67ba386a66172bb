"""No input of any shape gets a 500 from ingest, and every answer is as its OpenAPI says.

Two generators: schemathesis, from ingest's own OpenAPI document, against every operation
(with a valid bearer token, so the canonical API's validation is reached; half the requests
get a NUL, a line break or another control character put into one of their values, as in
tests/integration/test_api_fuzz.py for the other services); and hypothesis,
sending arbitrary bodies to every provider's webhook CORRECTLY SIGNED, so that each adapter's
parser (not just the signature check) sees the garbage.
"""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from nps_ingest.bootstrap import ADAPTERS
from nps_ingest.domain.signatures import sign_standard_webhooks
from nps_ingest.domain.sources import FieldMapping, Provider, Source
from nps_ingest.entrypoints.api import http_app
from nps_kit.clock import FrozenClock
from tests.support.fake_publisher import FakePublisher
from tests.support.fuzz import poison

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TOKEN = "fuzz-token-1"
SECRET = "fuzz-secret-0123456789"
WHSEC = "whsec_" + base64.b64encode(b"fuzz-key-fuzz-key-fuzz-key-32by").decode()


SOURCES = {
    "shop": Source(name="shop", provider=Provider.CANONICAL, tokens=(TOKEN,)),
    "sw": Source(name="sw", provider=Provider.STANDARD_WEBHOOKS, secrets=(WHSEC,)),
    "fb": Source(
        name="fb", provider=Provider.FORMBRICKS, secrets=(WHSEC,), mapping=FieldMapping(score="q")
    ),
    "dl": Source(name="dl", provider=Provider.DELIGHTED, secrets=(SECRET,)),
    "tf": Source(name="tf", provider=Provider.TYPEFORM, secrets=(SECRET,)),
    "wt": Source(name="wt", provider=Provider.WOOTRIC, secrets=(SECRET,)),
    "an": Source(name="an", provider=Provider.ASKNICELY, secrets=(SECRET,)),
}


def _app() -> ASGIApp:
    return http_app(
        sources=SOURCES,
        adapters=ADAPTERS,
        fetchers={},
        publisher=FakePublisher(),
        clock=FrozenClock(NOW),
        publish_timeout=1.0,
        max_body_bytes=64 * 1024,
        docs=True,  # schemathesis reads the document from /openapi.json
    )


APP = _app()


@schemathesis.serializer("text/csv")
def _csv(ctx: Any, value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


@schemathesis.serializer("application/x-www-form-urlencoded")
def _form(ctx: Any, value: Any) -> bytes:
    return json.dumps(value).encode()


schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_500(case: schemathesis.Case) -> None:
    poison(case)
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


# --- signed garbage at every adapter -----------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
KEYS = st.sampled_from(
    [
        "type",
        "data",
        "event",
        "event_type",
        "event_data",
        "form_response",
        "answers",
        "response",
        "person",
        "question",
        "score",
        "id",
        "customer",
        "comment",
        "token",
        "hidden",
        "field",
        "number",
        "created_at",
        "responded_at",
        "survey_id",
        "email",
    ]
)
# Objects built from the keys the adapters look for, so the fuzz reaches deep into them.
SHAPED = st.recursive(
    st.none() | st.integers(-5, 15) | st.text(max_size=12) | st.floats() | st.booleans(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=30,
)
BODIES = st.one_of(
    st.binary(max_size=200),
    JSON.map(lambda v: json.dumps(v).encode()),
    SHAPED.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=15), st.text(max_size=15), max_size=6).map(
        lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode()
    ),
)


def _signed(source: str, body: bytes) -> dict[str, str]:
    def hexsig(algorithm: str) -> str:
        return hmac.new(SECRET.encode(), body, algorithm).hexdigest()

    if source in ("sw", "fb"):
        ts = int(NOW.timestamp())
        return {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(ts),
            "webhook-signature": sign_standard_webhooks(
                msg_id="msg_1", timestamp=ts, body=body, secret=WHSEC
            ),
        }
    if source == "dl":
        return {"X-Delighted-Webhook-Signature": "sha256=" + hexsig("sha256")}
    if source == "tf":
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
        return {"Typeform-Signature": "sha256=" + base64.b64encode(digest).decode()}
    if source == "wt":
        return {"X-Wootric-Signature": "sha1=" + hexsig("sha1")}
    return {"Authorization": f"Bearer {SECRET}"}


CLIENT = TestClient(APP, raise_server_exceptions=False)


@given(
    source=st.sampled_from(["sw", "fb", "dl", "tf", "wt", "an"]),
    body=BODIES,
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded"]),
)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_signed_garbage_never_gets_a_500(source: str, body: bytes, content_type: str) -> None:
    headers = {**_signed(source, body), "content-type": content_type}
    answer = CLIENT.post(f"/v1/webhooks/{source}", content=body, headers=headers)
    assert answer.status_code in (202, 400, 422), (answer.status_code, body, answer.text)
    assert answer.headers["content-type"] in ("application/json", "application/problem+json")
