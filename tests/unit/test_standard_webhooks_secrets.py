"""Standard Webhooks secrets mean the same key in ingest, in notify and in the official
library (`standardwebhooks`, the reference implementation): the spec's published example
verifies, bodies the library signs verify in ingest, what notify signs verifies with the
library, padded or unpadded, with or without `whsec_`; a malformed or empty secret stops
start-up naming where it is (issue #18)."""

import base64
import time
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from standardwebhooks import Webhook

from nps_ingest.config import SourcesError, parse_sources
from nps_ingest.domain.signatures import SignatureError, verify_standard_webhooks
from nps_notify.adapters.webhooks import sign
from nps_notify.config import WebhookEndpoint

# The example of the Standard Webhooks specification (and of its reference libraries' tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY = b"a key of thirty-one bytes, odd!"  # its base64 needs padding
PADDED = base64.b64encode(KEY).decode()
SECRETS = {
    "whsec_ padded": "whsec_" + PADDED,
    "whsec_ unpadded": "whsec_" + PADDED.rstrip("="),
    "bare base64": PADDED,
}
NOW = datetime.fromtimestamp(SPEC_TIMESTAMP, tz=UTC)


def test_the_spec_example_verifies_in_ingest_and_notify_signs_it_alike() -> None:
    assert Webhook(SPEC_SECRET).sign(SPEC_ID, NOW, SPEC_BODY) == SPEC_SIGNATURE
    verify_standard_webhooks(
        msg_id=SPEC_ID,
        timestamp=str(SPEC_TIMESTAMP),
        signature=SPEC_SIGNATURE,
        body=SPEC_BODY,
        secrets=[SPEC_SECRET],
        now=NOW,
        tolerance=300,
    )
    signed = sign(msg_id=SPEC_ID, timestamp=SPEC_TIMESTAMP, body=SPEC_BODY, secrets=[SPEC_SECRET])
    assert signed == SPEC_SIGNATURE


@pytest.mark.parametrize("secret", SECRETS.values(), ids=SECRETS.keys())
def test_what_the_official_library_signs_ingest_verifies(secret: str) -> None:
    signature = Webhook(secret).sign("msg_1", NOW, b'{"score": 3}')
    verify_standard_webhooks(
        msg_id="msg_1",
        timestamp=str(SPEC_TIMESTAMP),
        signature=signature,
        body=b'{"score": 3}',
        secrets=[secret],
        now=NOW,
        tolerance=300,
    )
    with pytest.raises(SignatureError):
        verify_standard_webhooks(
            msg_id="msg_1",
            timestamp=str(SPEC_TIMESTAMP),
            signature=signature,
            body=b'{"score": 4}',
            secrets=[secret],
            now=NOW,
            tolerance=300,
        )


@pytest.mark.parametrize("secret", SECRETS.values(), ids=SECRETS.keys())
def test_what_notify_signs_the_official_library_verifies(secret: str) -> None:
    body = b'{"case_id": "c-1"}'
    stamp = int(time.time())  # the library checks the timestamp against its own clock
    signature = sign(msg_id="msg_2", timestamp=stamp, body=body, secrets=[secret])
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
    }
    assert Webhook(secret).verify(body, headers) is not None


BAD = ["whsec_not base64!!", "whsec_", "whsec_abcde", "not base64 either"]


@pytest.mark.parametrize("secret", BAD)
def test_a_malformed_or_empty_secret_stops_ingest_naming_the_source(secret: str) -> None:
    text = "sources:\n  shop:\n    provider: standard-webhooks\n    secrets:\n      - env: SHOP\n"
    with pytest.raises(SourcesError, match=r"sources\.shop\.secrets\[0\]"):
        parse_sources(text, {"SHOP": secret})


@pytest.mark.parametrize("secret", BAD)
def test_a_malformed_or_empty_secret_is_refused_by_notify(secret: str) -> None:
    with pytest.raises(ValidationError, match="Standard Webhooks secret is base64"):
        WebhookEndpoint(url="https://tools.example.com/hook", secrets=[secret])  # type: ignore[list-item]
