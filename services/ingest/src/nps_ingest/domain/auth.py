"""Who may post to the canonical API: the source whose bearer token was sent."""

from collections.abc import Mapping, Sequence

from nps_events.signing import any_equal


def source_for_token(token: str, tokens: Mapping[str, Sequence[str]]) -> str | None:
    """The source one of whose bearer tokens is `token`, compared in constant time; None if
    none. A source may have several tokens at once, so they can be rotated."""
    found = None
    for source, expected in tokens.items():
        # Every source's every token is compared, so timing does not reveal which matched.
        if any_equal(expected, [token]):
            found = source
    return found
