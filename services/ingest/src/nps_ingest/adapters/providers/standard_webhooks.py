"""Any sender following the Standard Webhooks specification (standardwebhooks.com), with
npsloop's canonical response as the payload.

Signature: `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
(space-separated `v1,<base64>`), HMAC-SHA256 of `<id>.<timestamp>.<raw body>` with the secret
(`whsec_` + base64, as the spec serialises it). The payload follows the spec's recommended
envelope `{"type", "timestamp", "data"}`: `response.created` / `response.updated` carry one
canonical response in `data`, `contact.opted_out` a `{"customer_id", "scope"}`.
"""

from datetime import datetime
from typing import Any

from nps_events import OptOutScope
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.signatures import verify_standard_webhooks
from nps_ingest.domain.sources import Source
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
    parse_score,
    required_text,
    text_or_none,
)

RESPONSE_TYPES = {"response.created", "response.updated"}
OPT_OUT_TYPE = "contact.opted_out"


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


def canonical(data: Any, where: str = "data") -> CanonicalResponse:
    """npsloop's canonical response from a decoded JSON object, field by field."""
    if not isinstance(data, dict):
        raise MalformedPayloadError(f"{where} is not a JSON object")
    who = data.get("customer")
    if not isinstance(who, dict):
        raise InvalidResponseError(f"{where}.customer", "must be an object with an id")
    return CanonicalResponse(
        response_id=required_text(data.get("response_id"), f"{where}.response_id"),
        survey_id=required_text(data.get("survey_id"), f"{where}.survey_id"),
        customer=customer(
            id_=who.get("id"),
            email=who.get("email"),
            name=who.get("name"),
            field=f"{where}.customer",
        ),
        score=parse_score(data.get("score"), f"{where}.score"),
        comment=text_or_none(data.get("comment")),
        responded_at=from_iso(data.get("responded_at"), f"{where}.responded_at"),
    )


def parse(request: WebhookRequest, source: Source, now: datetime) -> Parsed:
    body = request.json_object()
    kind = body.get("type")
    if kind in RESPONSE_TYPES:
        return Parsed(responses=(canonical(body.get("data")),))
    if kind == OPT_OUT_TYPE:
        customer_id = required_text(dig(body, "data.customer_id"), "data.customer_id")
        scope_text = text_or_none(dig(body, "data.scope")) or "all"
        try:
            scope = OptOutScope(scope_text)
        except ValueError:
            raise InvalidResponseError("data.scope", "must be email, sms or all") from None
        msg_id = required_text(request.header("webhook-id") or customer_id, "webhook-id")
        return Parsed(
            opt_outs=(
                OptOut(
                    customer_id=customer_id, provider_event_id=msg_id, occurred_at=now, scope=scope
                ),
            )
        )
    return Parsed(ignored=f"event type {str(kind)[:60]!r} carries no response")


ADAPTER = ProviderAdapter(verify=verify, parse=parse)
