"""Deterministic identifiers, so that a redelivered or re-posted input yields the same id."""

import hashlib
import uuid

#: Namespace of every npsloop name-based UUID. Never change it: ids already published depend on it.
NAMESPACE = uuid.UUID("6c1b7f52-4f0e-5c43-9d3e-8a5b0f0e2a11")

#: SHA-1 already fed the namespace's bytes: each id copies it and adds its name.
_NAMESPACED = hashlib.sha1(NAMESPACE.bytes)  # noqa: S324 - UUIDv5 is SHA-1 by definition

#: RFC 9562's variant and version bits, as `uuid.UUID(..., version=5)` sets them on the first
#: 128 bits of the digest: clear the variant's two bits and the version's four, then set
#: variant `10` and version `0101`.
_KEEP = ((1 << 128) - 1) & ~(0xC000 << 48) & ~(0xF000 << 64)
_VERSION_5 = (0x8000 << 48) | (5 << 76)

_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def derive_id(*parts: str) -> uuid.UUID:
    """A UUIDv5 over `parts`, joined by a separator that cannot occur inside a part.

    The same `uuid.UUID` as `uuid.uuid5(NAMESPACE, "\\x1f".join(parts))` (a unit test compares
    them over many inputs), built without `uuid.UUID.__init__`, whose checks of its arguments
    were half the cost: followup derives about ten ids per response it opens a case for, and
    this takes ~1.0 µs per id against ~1.9 (docs/performance.md, followup, 2026-12-06)."""
    sha = _NAMESPACED.copy()
    sha.update("\x1f".join(parts).encode())
    derived = _new(uuid.UUID)
    # The digest is 160 bits; the UUID is its first 128.
    _set(derived, "int", (int.from_bytes(sha.digest()) >> 32) & _KEEP | _VERSION_5)
    _set(derived, "is_safe", _UNKNOWN)
    return derived
