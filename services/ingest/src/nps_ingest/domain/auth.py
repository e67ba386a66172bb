"""Who may post to the canonical API: the source whose bearer token was sent."""

import hmac
from collections.abc import Mapping, Sequence


def source_for_token(token: str, tokens: Mapping[str, Sequence[str]]) -> str | None:
    """The source one of whose bearer tokens is `token`, compared in constant time; None if
    none. A source may have several tokens at once, so they can be rotated."""
    found = None
    for source, expected in tokens.items():
        for candidate in expected:
            # Compare against every token so timing does not reveal which one matched.
            if hmac.compare_digest(token.encode(), candidate.encode()):
                found = source
    return found
