import uuid
from datetime import UTC, datetime

import pytest

from nps_events import Customer, EnvelopeError, ResponseReceived, decode, encode

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _response(**overrides: object) -> ResponseReceived:
    fields: dict[str, object] = {
        "response_id": ResponseReceived.derive_response_id("shop", "r-1"),
        "source": "shop",
        "provider_response_id": "r-1",
        "survey_id": "s-1",
        "customer": Customer(id="c-1", email="ada@example.com"),
        "score": 3,
        "comment": "slow",
        "responded_at": NOW,
        "received_at": NOW,
    }
    fields.update(overrides)
    return ResponseReceived.model_validate(fields)


def test_event_travels_as_cloudevents_binary_mode_and_back() -> None:
    event = _response()
    message = encode(event, source="/ingest/sources/shop", time=NOW)
    headers = dict(message.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"io.npsloop.response.received.v1"
    assert headers["ce_id"] == str(event.event_id()).encode()
    assert headers["ce_source"] == b"/ingest/sources/shop"
    assert headers["ce_subject"] == f"responses/{event.response_id}".encode()
    assert headers["content-type"] == b"application/json"
    assert message.key == b"c-1"
    decoded = decode(message.headers, message.value)
    assert decoded.data == event
    assert decoded.time == NOW


def test_response_id_depends_only_on_source_and_provider_id() -> None:
    first = ResponseReceived.derive_response_id("shop", "r-1")
    assert first == ResponseReceived.derive_response_id("shop", "r-1")
    assert first != ResponseReceived.derive_response_id("other-shop", "r-1")
    assert first != ResponseReceived.derive_response_id("shop", "r-2")
    assert first.version == 5


def _headers_without(name: str) -> list[tuple[str, bytes]]:
    message = encode(_response(), source="/x", time=NOW)
    return [(k, v) for k, v in message.headers if k != name]


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        (_headers_without("ce_type"), b"{}", "missing CloudEvents header(s): ce_type"),
        (_headers_without("ce_id"), b"{}", "missing CloudEvents header(s): ce_id"),
        ([], b"{}", "missing CloudEvents header(s): ce_specversion, ce_id"),
        (
            [(k, b"io.example.other" if k == "ce_type" else v) for k, v in _headers_without("x")],
            b"{}",
            "unknown ce_type 'io.example.other'",
        ),
        (_headers_without("x"), b"not json", "invalid io.npsloop.response.received.v1 data"),
        (_headers_without("x"), None, "no value"),
        (
            [(k, b"2.0" if k == "ce_specversion" else v) for k, v in _headers_without("x")],
            b"{}",
            "unsupported ce_specversion '2.0'",
        ),
    ],
)
def test_undecodable_message_says_what_is_wrong(
    headers: list[tuple[str, bytes]], value: bytes | None, reason: str
) -> None:
    with pytest.raises(EnvelopeError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode(headers, value)


def test_data_that_breaks_the_model_names_the_field() -> None:
    message = encode(_response(), source="/x", time=NOW)
    bad = message.value.replace(b'"score":3', b'"score":11')
    with pytest.raises(EnvelopeError, match="score: Input should be less than or equal to 10"):
        decode(message.headers, bad)


@pytest.mark.parametrize(
    ("before", "after", "field"),
    [
        (b'"comment":"slow"', b'"comment":"bad\\u0000byte"', "comment"),
        (b'"email":"ada@example.com"', b'"email":"x@y.z,bob"', "customer.email"),
        (b'"name":null', b'"name":"Eve\\nBcc: x@example.com"', "customer.name"),
    ],
)
def test_an_event_no_stage_could_store_or_send_does_not_decode(
    before: bytes, after: bytes, field: str
) -> None:
    """Another producer's event with what npsloop's boundaries refuse is a data fault: the
    consumer dead-letters it with this reason instead of failing at the database or SMTP."""
    message = encode(_response(), source="/x", time=NOW)
    assert before in message.value
    with pytest.raises(EnvelopeError, match=f"{field}: Value error, must"):
        decode(message.headers, message.value.replace(before, after))


def test_consumers_ignore_fields_added_later() -> None:
    message = encode(_response(), source="/x", time=NOW)
    extended = message.value.replace(b'{"response_id"', b'{"added_in_v1_1":true,"response_id"')
    assert decode(message.headers, extended).data == _response()


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone offset"):
        _response(responded_at=datetime(2026, 11, 24, 10, 0))  # noqa: DTZ001


def test_event_ids_are_uuids_even_for_derived_events() -> None:
    assert isinstance(_response().event_id(), uuid.UUID)


def test_a_replayed_response_has_the_same_event_id_and_an_update_a_new_one() -> None:
    first = _response(comment=None)
    replay = _response(comment=None, received_at=NOW.replace(hour=11))
    update = _response(comment="the comment arrives later")
    assert replay.event_id() == first.event_id()
    assert update.event_id() != first.event_id()
    assert update.response_id == first.response_id


def test_event_id_is_kept_once_derived_and_never_outlives_a_change() -> None:
    event = _response()
    first = event.event_id()
    assert event.event_id() is first  # derived once per event (a JSON dump and a UUIDv5)
    assert first == event.derive_event_id()
    assert event == _response()  # the kept id is not part of the event's value
    assert "_event_id" not in event.model_dump()
    changed = event.model_copy(update={"comment": "slow and rude"})
    assert changed.event_id() != first
    assert changed.event_id() == _response(comment="slow and rude").event_id()


def test_event_ids_already_published_never_change() -> None:
    # Golden values: a replayed delivery must keep the id it had when first accepted, across
    # releases, or consumers would not recognise it.
    assert str(_response().event_id()) == "028989c0-8b19-5168-80ef-c153ba6e8921"
    assert (
        str(_response(comment=None, score=10).event_id()) == "98f76485-f811-525f-a788-e4c996ed5e3a"
    )


# --- what the official CloudEvents SDK produces (the Kafka protocol binding) ----------------


def _sdk_message(**attributes: object) -> tuple[list[tuple[str, bytes]], bytes]:
    """An opt-out as a downstream team would produce it with the official Python SDK."""
    from cloudevents.core.bindings import kafka  # noqa: PLC0415 - a test-only dependency
    from cloudevents.core.v1.event import CloudEvent  # noqa: PLC0415

    data = {
        "source": "crm",
        "customer_id": "c-1",
        "scope": "email",
        "provider_event_id": "unsub-42",
        "occurred_at": "2026-11-24T10:00:00Z",
    }
    event = CloudEvent(
        attributes={
            "type": "io.npsloop.customer.opted-out.v1",
            "source": "/crm/unsubscribes",
            "datacontenttype": "application/json",
            **attributes,
        },
        data=data,
    )
    message = kafka.to_binary_event(event)
    return list(message.headers.items()), message.value


def test_an_event_made_with_the_official_sdk_decodes() -> None:
    headers, value = _sdk_message(id="crm-unsub-42", time=NOW)
    decoded = decode(headers, value)
    assert decoded.id == "crm-unsub-42"  # any non-empty string is an id
    assert decoded.time == NOW
    assert decoded.data.customer_id == "c-1"  # type: ignore[attr-defined]


def test_an_sdk_event_without_a_time_decodes() -> None:
    headers, value = _sdk_message(id="crm-unsub-43")
    headers = [(k, v) for k, v in headers if k != "ce_time"]
    assert decode(headers, value).time is None


def test_header_names_are_read_in_any_case() -> None:
    headers, value = _sdk_message(id="crm-unsub-44", time=NOW)
    assert decode([(k.upper(), v) for k, v in headers], value).id == "crm-unsub-44"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T10:00:00Z", NOW),
        ("2026-11-24t10:00:00z", NOW),  # RFC 3339 allows lower case
        ("2026-11-24T11:00:00.250+01:00", NOW.replace(microsecond=250_000)),
        ("2026-11-24T10:00:00.123456789Z", NOW.replace(microsecond=123_456)),
    ],
)
def test_ce_time_is_any_rfc3339_time(text: str, expected: datetime) -> None:
    message = encode(_response(), source="/x", time=NOW)
    headers = [(k, text.encode() if k == "ce_time" else v) for k, v in message.headers]
    assert decode(headers, message.value).time == expected


@pytest.mark.parametrize(
    "text", ["2026-11-24T10:00:00", "2026-11-24 10:00:00Z", "24/11/2026", "2026-11-24"]
)
def test_a_ce_time_that_is_not_rfc3339_is_refused(text: str) -> None:
    message = encode(_response(), source="/x", time=NOW)
    headers = [(k, text.encode() if k == "ce_time" else v) for k, v in message.headers]
    with pytest.raises(EnvelopeError, match="is not an RFC 3339 time"):
        decode(headers, message.value)


def test_ce_time_is_each_messages_own_time_in_its_own_offset() -> None:
    # `encode` keeps the last time's ISO text; equal instants in two offsets must not share it.
    event = _response()
    paris = datetime.fromisoformat("2026-11-24T11:00:00+01:00")
    assert paris == NOW
    times = [NOW, NOW, paris, paris, NOW, datetime(2026, 11, 24, 10, 0, 1, tzinfo=UTC)]
    written = [
        dict(encode(event, source="/ingest/sources/shop", time=t).headers)["ce_time"] for t in times
    ]
    assert written == [t.isoformat().encode() for t in times]
    assert written[2] == b"2026-11-24T11:00:00+01:00"
    assert written[0] == b"2026-11-24T10:00:00+00:00"
