"""CloudEvents 1.0 in Kafka binary mode: attributes in `ce_*` headers, the data as the value.

Decoding follows the CloudEvents Kafka protocol binding, so that an event produced with the
official SDKs (by a downstream team, onto a topic npsloop consumes) is read as npsloop's own:
header names in any case; `ce_id` any non-empty string; `ce_time` optional, and when present an
RFC 3339 time (an offset or `Z` required, `t` and `z` allowed in lower case). What npsloop
produces is stricter than that (a UUID id derived from the event, always a time)."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from nps_events.models import EVENT_TYPES, Event

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

Headers = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A message that is not a valid npsloop event; the message says exactly what is wrong."""


@dataclass(frozen=True, slots=True)
class CloudEvent:
    id: str
    source: str
    type: str
    time: datetime | None
    subject: str
    data: Event


@dataclass(frozen=True, slots=True)
class KafkaMessage:
    key: bytes
    value: bytes
    headers: Headers


#: The headers every message carries as they are (a header is an immutable tuple).
_SPEC_VERSION_HEADER = ("ce_specversion", SPEC_VERSION.encode())
_CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())

#: The last `time` written and its `ce_time` bytes: an outbox encodes its batch's events with
#: one `time` object, so the ISO format (~0.8 µs) is written once per batch. Matched by
#: identity, not equality: equal times in two offsets are written differently.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_last_time: tuple[datetime, bytes] = (_EPOCH, _EPOCH.isoformat().encode())


def _time_header(time: datetime) -> bytes:
    global _last_time  # noqa: PLW0603 - a one-entry cache; replaced whole, so never torn
    last = _last_time
    if last[0] is time:
        return last[1]
    written = time.isoformat().encode()
    _last_time = (time, written)
    return written


def encode(event: Event, *, source: str, time: datetime) -> KafkaMessage:
    """The Kafka message for `event`: deterministic id, customer key, `ce_*` headers."""
    headers: Headers = [
        _SPEC_VERSION_HEADER,
        ("ce_id", str(event.event_id()).encode()),
        ("ce_source", source.encode()),
        ("ce_type", event.ce_type.encode()),
        ("ce_time", _time_header(time)),
        ("ce_subject", event.subject().encode()),
        _CONTENT_TYPE_HEADER,
    ]
    return KafkaMessage(
        key=event.partition_key().encode(),
        value=event.model_dump_json().encode(),
        headers=headers,
    )


def decode(headers: Headers | tuple[tuple[str, bytes], ...], value: bytes | None) -> CloudEvent:
    """Parse a binary-mode CloudEvent; raise `EnvelopeError` saying what is wrong."""
    attrs: dict[str, str] = {}
    for name, raw in headers:
        try:
            attrs[name.lower()] = raw.decode()
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"header {name!r} is not UTF-8") from exc
    missing = [
        name for name in ("ce_specversion", "ce_id", "ce_source", "ce_type") if not attrs.get(name)
    ]
    if missing:
        raise EnvelopeError(f"missing CloudEvents header(s): {', '.join(missing)}")
    if attrs["ce_specversion"] != SPEC_VERSION:
        raise EnvelopeError(f"unsupported ce_specversion {attrs['ce_specversion']!r}")
    content_type = attrs.get("content-type", CONTENT_TYPE)
    if content_type.split(";")[0].strip() != CONTENT_TYPE:
        raise EnvelopeError(f"unsupported content-type {content_type!r}")
    model = EVENT_TYPES.get(attrs["ce_type"])
    if model is None:
        raise EnvelopeError(f"unknown ce_type {attrs['ce_type']!r}")
    time = _rfc3339(attrs["ce_time"]) if attrs.get("ce_time") else None
    if value is None:
        raise EnvelopeError("message has no value (no event data)")
    try:
        data = model.model_validate_json(value)
    except ValidationError as exc:
        raise EnvelopeError(f"invalid {attrs['ce_type']} data: {_summarise(exc)}") from exc
    return CloudEvent(
        id=attrs["ce_id"],
        source=attrs["ce_source"],
        type=attrs["ce_type"],
        time=time,
        subject=attrs.get("ce_subject", ""),
        data=data,
    )


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339(text: str) -> datetime:
    """An RFC 3339 `date-time` (section 5.6): an offset is required; `t`/`z` may be lower case."""
    if not _RFC3339.fullmatch(text):
        raise EnvelopeError(f"ce_time {text!r} is not an RFC 3339 time (with an offset)")
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise EnvelopeError(f"ce_time {text!r} is not an RFC 3339 time") from exc


def _summarise(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
    )
