import hmac
from collections.abc import Mapping


def source_for_token(token: str, tokens: Mapping[str, str]) -> str | None:
    """The source whose bearer token is `token`, compared in constant time; None if none."""
    found = None
    for source, expected in tokens.items():
        # Compare against every token so timing does not reveal which one matched.
        if hmac.compare_digest(token.encode(), expected.encode()):
            found = source
    return found
