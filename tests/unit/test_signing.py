"""One constant-time comparison of offered secrets and signatures against ours
(`nps_events.signing.any_equal`), used by ingest's sources and notify's helpdesk webhooks:
right for rotations, and it compares every pair whichever matches."""

from collections.abc import Iterator

import pytest

from nps_events.signing import any_equal


@pytest.mark.parametrize(
    ("expected", "offered", "found"),
    [
        (["old", "new"], ["new"], True),  # a rotation: the new secret
        (["old", "new"], ["nope", "old"], True),  # several signatures offered
        ([b"k1"], [b"k1"], True),
        (["old", "new"], ["neW"], False),
        ([], ["anything"], False),  # no secret configured matches nothing
        (["s"], [], False),
        (["é"], ["é"], True),  # text is compared as UTF-8
    ],
)
def test_any_offered_value_matches_any_expected_one(
    expected: list[str | bytes], offered: list[str | bytes], found: bool
) -> None:
    assert any_equal(expected, offered) is found


def test_the_offered_values_are_all_compared_after_one_has_matched() -> None:
    pulled: list[str] = []

    def offered() -> Iterator[str]:
        for value in ("first", "x", "y"):
            pulled.append(value)
            yield value

    assert any_equal(["first", "second"], offered())
    assert pulled == ["first", "x", "y"]
