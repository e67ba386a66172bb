"""Webhook signature schemes, verified over the raw body in constant time.

Each function accepts several secrets (a rotation) and raises `SignatureError` unless one of
them produced one of the signatures offered.
"""

import base64
import binascii
import hmac
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from nps_events.signing import any_equal


class SignatureError(Exception):
    """The request is not signed by any of the source's secrets (answer 401)."""


class StaleTimestampError(SignatureError):
    """The signed timestamp is too far from now: a replay or a skewed clock (answer 401)."""


def hmac_digest(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.digest(key, message, algorithm)  # one-shot: OpenSSL's, without the HMAC object


def require(header: str | None, name: str) -> str:
    if not header or not header.strip():
        raise SignatureError(f"missing {name} header")
    return header.strip()


def verify_path_secret(offered: str | None, secrets: Sequence[str]) -> None:
    """Raise unless the URL's secret segment (`/v1/webhooks/{source}/{secret}`) is one of the
    source's secrets, compared in constant time: the proof of a sender that can neither sign
    nor add a header (a Qualtrics subscription without a shared key)."""
    if not secrets:
        raise SignatureError("the source has no secret configured")
    if not offered:
        raise SignatureError(
            "missing the secret path segment: this source is posted to "
            "/v1/webhooks/{source}/{secret}"
        )
    if not any_equal(secrets, [offered]):
        raise SignatureError("the secret path segment does not match")


def verify_hmac(
    *,
    message: bytes,
    offered: Sequence[bytes],
    secrets: Sequence[bytes],
    algorithm: str = "sha256",
) -> None:
    """Raise unless some secret's HMAC of `message` equals some offered digest."""
    if not secrets:
        raise SignatureError("the source has no secret configured")
    if not offered:
        raise SignatureError("no signature offered")
    if not any_equal((hmac_digest(s, message, algorithm) for s in secrets), offered):
        raise SignatureError("signature does not match")


def decode_base64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def decode_hex(value: str) -> bytes | None:
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def check_timestamp(seconds: str, *, now: datetime, tolerance: int) -> None:
    """Raise unless `seconds` (Unix time, decimal) is within `tolerance` of `now`."""
    try:
        sent = int(seconds)
    except ValueError:
        raise SignatureError("timestamp is not an integer number of seconds") from None
    if abs(now.timestamp() - sent) > tolerance:
        raise StaleTimestampError(f"timestamp is more than {tolerance} s away from now")


class MalformedSecretError(ValueError):
    """A Standard Webhooks secret that is not base64 (after an optional `whsec_`), or empty."""


@lru_cache(maxsize=256)
def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret, read as the official libraries read it: an
    optional `whsec_` prefix, then base64 (padded or not) of the key bytes. Unlike them, a
    secret that is not strictly base64, or is empty, is refused (`MalformedSecretError`), so
    that a typo stops start-up instead of failing every delivery with a 401. Kept per secret:
    a source has a few, and every delivery needs them."""
    encoded = secret.removeprefix("whsec_")
    key = decode_base64(encoded + "=" * (-len(encoded) % 4)) if len(encoded) % 4 != 1 else None
    if not key:
        raise MalformedSecretError(
            "a Standard Webhooks secret is base64 (optionally after whsec_) of a non-empty key"
        )
    return key


def verify_standard_webhooks(
    *,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    secrets: Sequence[str],
    now: datetime,
    tolerance: int,
) -> None:
    """Standard Webhooks v1: `webhook-signature` holds space-separated `v1,<base64>` entries,
    each an HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>`."""
    msg_id = require(msg_id, "webhook-id")
    timestamp = require(timestamp, "webhook-timestamp")
    signature = require(signature, "webhook-signature")
    check_timestamp(timestamp, now=now, tolerance=tolerance)
    offered = []
    for entry in signature.split():
        version, _, value = entry.partition(",")
        decoded = decode_base64(value) if version == "v1" else None
        if decoded is not None:
            offered.append(decoded)
    verify_hmac(
        message=f"{msg_id}.{timestamp}.".encode() + body,
        offered=offered,
        secrets=[standard_webhooks_key(s) for s in secrets],
    )


def sign_standard_webhooks(*, msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """The `webhook-signature` value a sender computes (for tests, the bench and docs)."""
    digest = hmac_digest(standard_webhooks_key(secret), f"{msg_id}.{timestamp}.".encode() + body)
    return "v1," + base64.b64encode(digest).decode()
