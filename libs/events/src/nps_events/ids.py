"""Deterministic identifiers, so that a redelivered or re-posted input yields the same id."""

import uuid

#: Namespace of every npsloop name-based UUID. Never change it: ids already published depend on it.
NAMESPACE = uuid.UUID("6c1b7f52-4f0e-5c43-9d3e-8a5b0f0e2a11")


def derive_id(*parts: str) -> uuid.UUID:
    """A UUIDv5 over `parts`, joined by a separator that cannot occur inside a part."""
    return uuid.uuid5(NAMESPACE, "\x1f".join(parts))
