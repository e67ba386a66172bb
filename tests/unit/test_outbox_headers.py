"""The outbox row's headers column (`nps_kit.outbox.stored_headers` / `wire_headers`): what
goes back to the broker is exactly the list that was stored, whichever form the row took."""

import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import MetaData

from nps_events import Customer, ResponseReceived, encode
from nps_kit.infrastructure import Infrastructure
from nps_kit.outbox import headers_form, outbox_table, stored_headers, wire_headers
from nps_kit.settings import DatabaseSettings, KafkaSettings

NOW = datetime(2026, 12, 6, 9, 30, 15, 123456, tzinfo=UTC)
TRACE = [
    ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ("tracestate", b"vendor=value"),
]


def _headers() -> list[tuple[str, bytes]]:
    event = ResponseReceived(
        response_id=uuid.uuid4(),
        source="web",
        provider_response_id="r1",
        survey_id="s1",
        customer=Customer(id="c-1"),
        score=3,
        responded_at=NOW,
        received_at=NOW,
    )
    return list(encode(event, source="/ingest/sources/web", time=NOW).headers)


@pytest.mark.parametrize("extra", [[], TRACE[:1], TRACE], ids=["none", "traceparent", "both"])
def test_encoded_headers_are_stored_compact_and_come_back_byte_for_byte(
    extra: list[tuple[str, bytes]],
) -> None:
    headers = _headers() + extra
    stored = stored_headers(headers)
    assert stored.startswith("\x1e")  # the compact form, not JSON
    assert len(stored) < len(json.dumps([[n, v.decode()] for n, v in headers])) - 100
    assert wire_headers(stored) == headers


def test_every_header_dropped_or_changed_is_noticed() -> None:
    """Each header in turn changed, removed, or moved: what comes back is still exactly what
    was given (stored as JSON when it is not `encode`'s layout)."""
    base = _headers() + TRACE[:1]
    variants = []
    for i in range(len(base)):
        variants.append(base[:i] + base[i + 1 :])  # one lost
        variants.append([*base[:i], (base[i][0], base[i][1] + b"x"), *base[i + 1 :]])
    variants.append(base[1:] + base[:1])  # reordered
    for headers in variants:
        assert wire_headers(stored_headers(headers)) == headers


def test_a_value_holding_a_separator_is_stored_as_json() -> None:
    headers = [*_headers(), ("x-note", b"a\x1fb")]
    stored = stored_headers(headers)
    assert json.loads(stored)
    assert wire_headers(stored) == headers


def test_rows_written_as_json_by_an_earlier_version_are_read() -> None:
    headers = _headers() + TRACE
    assert wire_headers(json.dumps([[n, v.decode()] for n, v in headers])) == headers


def test_outbox_rows_are_json_unless_the_setting_says_compact() -> None:
    """`DATABASE_OUTBOX_HEADERS` (JSON by default, which the relays of earlier releases read)
    reaches the outbox table the service wires (`Infrastructure.with_outbox`)."""
    for setting, form in ((None, "json"), ("json", "json"), ("compact", "compact")):
        table = outbox_table(MetaData(schema="t"))
        database = (
            DatabaseSettings() if setting is None else DatabaseSettings(outbox_headers=setting)
        )
        infra = Infrastructure.connect("t", kafka=KafkaSettings(), database=database)
        infra.with_outbox(table)
        assert headers_form(table) == form
