from datetime import UTC, datetime

from nps_events import Customer
from nps_ingest.domain.auth import source_for_token
from nps_ingest.domain.responses import CanonicalResponse, normalise

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TOKENS = {"shop": ("s3cret-shop",), "app": ("s3cret-app", "s3cret-app-2")}


def test_a_token_identifies_its_source() -> None:
    assert source_for_token("s3cret-app", TOKENS) == "app"
    assert source_for_token("s3cret-shop", TOKENS) == "shop"


def test_an_unknown_token_identifies_nobody() -> None:
    assert source_for_token("s3cret", TOKENS) is None
    assert source_for_token("", TOKENS) is None
    assert source_for_token("s3cret-app", {}) is None


def _canonical(comment: str | None) -> CanonicalResponse:
    return CanonicalResponse(
        response_id="r-9",
        survey_id="s-1",
        customer=Customer(id="c-9"),
        score=9,
        comment=comment,
        responded_at=NOW,
    )


def test_normalised_response_keeps_provider_id_and_derives_ours() -> None:
    event = normalise(_canonical("  great  "), source="shop", now=NOW)
    assert event.provider_response_id == "r-9"
    assert event.source == "shop"
    assert event.comment == "great"
    assert event.received_at == NOW
    assert event.response_id == normalise(_canonical(None), source="shop", now=NOW).response_id


def test_blank_comment_becomes_no_comment() -> None:
    assert normalise(_canonical("   "), source="shop", now=NOW).comment is None
