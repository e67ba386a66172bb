"""Any sender following the Standard Webhooks specification (standardwebhooks.com): npsloop's
canonical response by default, or the sender's own event names and fields, as its source's
mapping declares them.

Signature: `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
(space-separated `v1,<base64>`), HMAC-SHA256 of `<id>.<timestamp>.<raw body>` with the secret
(`whsec_` + base64, as the spec serialises it). The payload follows the spec's recommended
envelope `{"type", "timestamp", "data"}`. By default `response.created` / `response.updated`
carry one canonical response in `data`, `contact.opted_out` a `{"customer_id", "scope"}`.

A sender with its own words declares them in `mapping`: `events` (which of its types mean a
response created or updated, an opt-out, or nothing for npsloop) and a dotted path from the
body's root for each field (`score: data.answer.value`). A type it did not declare is neither
published nor silently dropped: the answer carries a `warning` and ingest counts it.
"""

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from nps_events import Customer, OptOutScope
from nps_events.text import clean_line
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.signatures import verify_standard_webhooks
from nps_ingest.domain.sources import EventTypes, FieldMapping, Source
from nps_ingest.domain.webhooks import (
    InvalidResponseError,
    MalformedPayloadError,
    OptOut,
    Parsed,
    ProviderAdapter,
    WebhookRequest,
    customer,
    dig,
    from_iso,
    from_unix,
    parse_score,
    required_text,
    text_or_none,
)

#: Today's canonical shape: what a source without `mapping.events` sends.
CANONICAL_EVENTS = EventTypes(
    created=("response.created",),
    updated=("response.updated",),
    opted_out=("contact.opted_out",),
)


def verify(request: WebhookRequest, source: Source, now: datetime) -> None:
    verify_standard_webhooks(
        msg_id=request.header("webhook-id"),
        timestamp=request.header("webhook-timestamp"),
        signature=request.header("webhook-signature"),
        body=request.body,
        secrets=source.secrets,
        now=now,
        tolerance=source.timestamp_tolerance_seconds,
    )


def _path(configured: str | None, default: str) -> str:
    return configured or default


def _time(value: object, field: str) -> datetime:
    """An RFC 3339 date-time, or Unix seconds (a number or its digits) as many senders send."""
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        return from_unix(value, field)
    return from_iso(value, field)


def _attributes(value: object, field: str) -> dict[str, str]:
    """The customer's attributes: an object of scalars, each made one line (a survey tool's
    value cannot be fixed by asking again); a key the event cannot carry is refused."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidResponseError(field, "must be an object of names to values")
    found: dict[str, str] = {}
    for key, raw in value.items():
        if raw is None:
            continue
        if isinstance(raw, dict | list):
            raise InvalidResponseError(f"{field}.{key}"[:200], "must be a string or a number")
        text = "true" if raw is True else "false" if raw is False else text_or_none(raw)
        if text is not None:
            found[str(key)] = clean_line(text)[:200]
    return found


def response(body: dict[str, Any], mapping: FieldMapping) -> CanonicalResponse:
    """The response a body holds, read where the mapping says (the canonical shape by
    default); every error names the path it read."""
    who = _path(mapping.customer, "data.customer")
    paths = {
        "response_id": _path(mapping.response_id, "data.response_id"),
        "survey_id": _path(mapping.survey_id, "data.survey_id"),
        "customer_id": _path(mapping.customer_id, f"{who}.id"),
        "customer_email": _path(mapping.customer_email, f"{who}.email"),
        "customer_name": _path(mapping.customer_name, f"{who}.name"),
        "attributes": _path(mapping.attributes, f"{who}.attributes"),
        "score": _path(mapping.score, "data.score"),
        "comment": _path(mapping.comment, "data.comment"),
        "responded_at": _path(mapping.responded_at, "data.responded_at"),
    }
    if not isinstance(body.get("data"), dict) and all(
        p.startswith("data.") for p in paths.values()
    ):
        raise MalformedPayloadError("data is not a JSON object")
    found = customer(
        id_=dig(body, paths["customer_id"]),
        email=dig(body, paths["customer_email"]),
        name=dig(body, paths["customer_name"]),
        field=who,
    )
    attributes = _attributes(dig(body, paths["attributes"]), paths["attributes"])
    if attributes:
        try:
            found = Customer.model_validate({**found.model_dump(), "attributes": attributes})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"][1:])
            raise InvalidResponseError(
                f"{paths['attributes']}.{where}".rstrip("."), first["msg"]
            ) from None
    return CanonicalResponse(
        response_id=required_text(dig(body, paths["response_id"]), paths["response_id"]),
        survey_id=required_text(dig(body, paths["survey_id"]), paths["survey_id"]),
        customer=found,
        score=parse_score(dig(body, paths["score"]), paths["score"]),
        comment=text_or_none(dig(body, paths["comment"])),
        responded_at=_time(dig(body, paths["responded_at"]), paths["responded_at"]),
    )


def opt_out(
    body: dict[str, Any], mapping: FieldMapping, request: WebhookRequest, now: datetime
) -> OptOut:
    """The customer an opt-out names (`data.customer_id` by default, else the customer
    object's id) and its scope; the delivery's `webhook-id` is its id, so a replay is the
    same event."""
    who = _path(mapping.customer, "data.customer")
    id_path = mapping.customer_id or "data.customer_id"
    if mapping.customer_id is None and text_or_none(dig(body, id_path)) is None:
        id_path = f"{who}.id"
    customer_id = required_text(dig(body, id_path), id_path)
    scope_path = _path(mapping.scope, "data.scope")
    scope_text = text_or_none(dig(body, scope_path)) or "all"
    try:
        scope = OptOutScope(scope_text.lower())
    except ValueError:
        raise InvalidResponseError(scope_path, "must be email, sms or all") from None
    msg_id = required_text(request.header("webhook-id") or customer_id, "webhook-id")
    return OptOut(customer_id=customer_id, provider_event_id=msg_id, occurred_at=now, scope=scope)


def parse(request: WebhookRequest, source: Source, now: datetime) -> Parsed:
    body = request.json_object()
    events = source.mapping.events or CANONICAL_EVENTS
    kind = body.get("type")
    if not isinstance(kind, str):
        raise MalformedPayloadError("the body has no event type (`type`)")
    if kind in events.created or kind in events.updated:
        return Parsed(responses=(response(body, source.mapping),))
    if kind in events.opted_out:
        return Parsed(opt_outs=(opt_out(body, source.mapping, request, now),))
    if kind in events.ignored:
        return Parsed(ignored=f"event type {kind[:60]!r} carries nothing for npsloop")
    return Parsed(
        undeclared=f"event type {kind[:60]!r} is not declared for this source, so nothing was "
        "published: declare it in the source's mapping.events (created, updated, opted_out "
        "or ignored)"
    )


ADAPTER = ProviderAdapter(verify=verify, parse=parse)
