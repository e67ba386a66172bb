"""Properties of the signature schemes and the score rule, over generated inputs."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nps_ingest.domain.signatures import (
    SignatureError,
    StaleTimestampError,
    hmac_digest,
    sign_standard_webhooks,
    verify_hmac,
    verify_standard_webhooks,
)
from nps_ingest.domain.webhooks import InvalidResponseError, parse_score

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
KEYS = st.binary(min_size=16, max_size=48).map(lambda k: "whsec_" + base64.b64encode(k).decode())


@given(body=st.binary(max_size=300), secret=KEYS, msg_id=st.text("abc_123", min_size=1))
def test_a_standard_webhooks_signature_verifies_for_its_body_and_no_other(
    body: bytes, secret: str, msg_id: str
) -> None:
    ts = int(NOW.timestamp())
    signature = sign_standard_webhooks(msg_id=msg_id, timestamp=ts, body=body, secret=secret)
    kwargs = {"msg_id": msg_id, "timestamp": str(ts), "signature": signature}
    verify_standard_webhooks(**kwargs, body=body, secrets=[secret], now=NOW, tolerance=300)
    with pytest.raises(SignatureError):
        verify_standard_webhooks(
            **kwargs, body=body + b" ", secrets=[secret], now=NOW, tolerance=300
        )
    with pytest.raises(SignatureError):
        verify_standard_webhooks(
            **{**kwargs, "msg_id": msg_id + "x"},
            body=body,
            secrets=[secret],
            now=NOW,
            tolerance=300,
        )


@given(skew=st.integers(min_value=301, max_value=10**6), sign=st.sampled_from([-1, 1]))
def test_a_timestamp_outside_the_tolerance_is_stale_either_way(skew: int, sign: int) -> None:
    at = NOW + timedelta(seconds=sign * skew)
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    ts = int(at.timestamp())
    signature = sign_standard_webhooks(msg_id="m", timestamp=ts, body=b"{}", secret=secret)
    with pytest.raises(StaleTimestampError):
        verify_standard_webhooks(
            msg_id="m",
            timestamp=str(ts),
            signature=signature,
            body=b"{}",
            secrets=[secret],
            now=NOW,
            tolerance=300,
        )


@given(
    body=st.binary(max_size=200),
    secrets=st.lists(st.binary(min_size=8, max_size=32), min_size=1, max_size=4, unique=True),
    which=st.integers(min_value=0, max_value=3),
)
def test_any_one_of_the_secrets_verifies_during_a_rotation(
    body: bytes, secrets: list[bytes], which: int
) -> None:
    signer = secrets[which % len(secrets)]
    verify_hmac(message=body, offered=[hmac_digest(signer, body)], secrets=secrets)
    with pytest.raises(SignatureError):
        verify_hmac(message=body, offered=[hmac_digest(b"not-" + signer, body)], secrets=secrets)


@given(st.integers(min_value=0, max_value=10))
def test_scores_0_to_10_are_accepted_as_numbers_and_as_strings(score: int) -> None:
    assert parse_score(score) == score
    assert parse_score(str(score)) == score
    assert parse_score(float(score)) == score


@given(
    st.one_of(
        st.integers().filter(lambda n: not 0 <= n <= 10),
        st.floats().filter(lambda f: not (f.is_integer() and 0 <= f <= 10)),
        st.text().filter(lambda t: not (t.strip().isascii() and t.strip().isdigit())),
        st.booleans(),
        st.none(),
        st.lists(st.integers()),
    )
)
def test_anything_else_is_not_a_score(value: object) -> None:
    with pytest.raises(InvalidResponseError):
        parse_score(value)


@pytest.mark.parametrize("value", ["nine", "8.5", "", " ", "011", "+8", "\u0661"])
def test_score_words_and_odd_strings_are_refused(value: str) -> None:
    with pytest.raises(InvalidResponseError):
        parse_score(value)
