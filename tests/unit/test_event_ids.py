"""Event ids: `derive_id` builds its UUIDs without `uuid.UUID.__init__`, so it is checked
against the standard library's `uuid.uuid5` over many inputs: ids already published (and
every consumer's de-duplication) depend on it giving the same UUID for the same parts."""

import pickle
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nps_events.ids import NAMESPACE, derive_id

PARTS = st.lists(st.text(max_size=80), max_size=6)


@settings(max_examples=500)
@given(parts=PARTS)
def test_derived_id_is_the_uuid5_of_its_parts_joined_by_the_unit_separator(
    parts: list[str],
) -> None:
    derived = derive_id(*parts)
    expected = uuid.uuid5(NAMESPACE, "\x1f".join(parts))
    assert derived == expected
    assert type(derived) is uuid.UUID
    assert (derived.int, derived.bytes, str(derived)) == (
        expected.int,
        expected.bytes,
        str(expected),
    )
    assert (derived.version, derived.variant) == (5, uuid.RFC_4122)
    assert derived.is_safe is expected.is_safe
    assert hash(derived) == hash(expected)


def test_derived_ids_of_the_ids_followup_makes_match_uuid5() -> None:
    # The shapes followup derives per case (ids of ids, enum values, empty details), chained
    # as it chains them: a case's id from a response's, its actions' and timers' from it.
    response_id = uuid.uuid5(NAMESPACE, "response\x1fshop\x1fr-1")
    for n in range(500):
        case_id = derive_id("case", str(response_id))
        assert case_id == uuid.uuid5(NAMESPACE, f"case\x1f{response_id}")
        for parts in (
            ("action", str(case_id), str(n % 4), "email", ""),
            ("timer", str(case_id), "escalation", ""),
            ("timeline", str(case_id), "escalated", f"timer:{n}"),
        ):
            assert derive_id(*parts) == uuid.uuid5(NAMESPACE, "\x1f".join(parts))
        response_id = case_id


def test_a_derived_id_is_immutable_and_survives_pickling() -> None:
    derived = derive_id("case", "r-1")
    assert pickle.loads(pickle.dumps(derived)) == derived  # noqa: S301 - our own bytes
    with pytest.raises(TypeError, match="immutable"):
        derived.int = 0  # type: ignore[misc]
    assert derived == uuid.uuid5(NAMESPACE, "case\x1fr-1")
