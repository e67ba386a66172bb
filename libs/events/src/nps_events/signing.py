"""Checking a secret or a signature that a sender offers against the ones we hold: one helper
for every boundary that does it (ingest's sources, notify's helpdesk webhooks). Pure standard
library beside `text`, so that domain code, which may import nothing else of ours, can use it."""

import hmac
from collections.abc import Iterable


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def any_equal(expected: Iterable[bytes | str], offered: Iterable[bytes | str]) -> bool:
    """Whether any offered value equals any expected one (several during a rotation). Every
    pair is compared, each in constant time, and the loop never stops early, so the time taken
    reveals neither which secret matched nor whether one did before the last."""
    mine = [_bytes(e) for e in expected]
    found = False
    for theirs in offered:
        candidate = _bytes(theirs)
        for value in mine:
            found |= hmac.compare_digest(value, candidate)
    return found
