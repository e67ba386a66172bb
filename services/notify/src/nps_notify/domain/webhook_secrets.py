"""Standard Webhooks secrets, read as the official libraries read them: an optional `whsec_`
prefix, then base64 (padded or not) of the key bytes. A secret that is not strictly base64, or
is empty, is refused when the settings load, naming the endpoint, instead of signing every
delivery with a key the receiver does not hold."""

import base64
import binascii


def standard_webhooks_key(secret: str) -> bytes:
    encoded = secret.removeprefix("whsec_")
    key = b""
    if len(encoded) % 4 != 1:  # no base64 has that length, padded or not
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
    if not key:
        raise ValueError(
            "a Standard Webhooks secret is base64 (optionally after whsec_) of a non-empty key"
        )
    return key
