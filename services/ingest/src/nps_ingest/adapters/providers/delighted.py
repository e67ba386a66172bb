"""Delighted (delighted.com/docs/api/webhooks).

Events: `survey_response.created` (the score, rarely a comment yet),
`survey_response.updated` (the score or comment changed: usually where the comment arrives)
and `unsubscribe.created`. JSON `{"event_type", "event_id", "event_data"}`; a survey response
has `id`, `person` (`id`, `email`, `name`), `survey_type`, `score`, `comment`, `created_at`
(Unix seconds), `person_properties`.

Signature: `X-Delighted-Webhook-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body with
the account's API key (the source's secret). Delighted signs no timestamp.

Mapping: `customer_id` names a person property holding the customer id (else Delighted's
person id); `survey_id` is a fixed survey id (else `delighted-<survey_type>`).

Attributes: the response's `person_properties` (`{"Plan": "Pro", "locale": "de"}`, including
Delighted's own `Delighted Source`, `Delighted Device Type`…), read by the source's rules.
"""

from datetime import datetime

from nps_ingest.domain.attributes import object_fields, read_profile
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.signatures import decode_hex, require, verify_hmac
from nps_ingest.domain.sources import Source
from nps_ingest.domain.webhooks import (
    MalformedPayloadError,
    OptOut,
    Parsed,
    ProviderAdapter,
    WebhookRequest,
    as_dict,
    customer,
    from_unix,
    parse_score,
    required_text,
    text_or_none,
)

HEADER = "X-Delighted-Webhook-Signature"
RESPONSE_EVENTS = {"survey_response.created", "survey_response.updated"}


def verify(request: WebhookRequest, source: Source, now: datetime) -> None:
    header = require(request.header(HEADER), HEADER)
    offered = []
    for part in header.split(","):
        algorithm, _, value = part.strip().partition("=")
        digest = decode_hex(value) if algorithm == "sha256" else None
        if digest is not None:
            offered.append(digest)
    verify_hmac(message=request.body, offered=offered, secrets=[s.encode() for s in source.secrets])


def _customer_id(
    person: dict[str, object], properties: dict[str, object], source: Source
) -> object:
    key = source.mapping.customer_id
    return (properties.get(key) if key else None) or person.get("id")


def parse(request: WebhookRequest, source: Source, now: datetime) -> Parsed:
    body = request.json_object()
    kind = body.get("event_type")
    data = body.get("event_data")
    if not isinstance(data, dict):
        raise MalformedPayloadError("event_data is not a JSON object")
    person = as_dict(data.get("person"))
    properties = as_dict(data.get("person_properties"))
    if kind == "unsubscribe.created":
        who = customer(
            id_=_customer_id(person, properties, source),
            email=person.get("email"),
            field="event_data.person",
        )
        when = data.get("unsubscribed_at") or data.get("created_at") or body.get("created_at")
        return Parsed(
            opt_outs=(
                OptOut(
                    customer_id=who.id,
                    provider_event_id=required_text(body.get("event_id"), "event_id"),
                    occurred_at=from_unix(when, "event_data.unsubscribed_at") if when else now,
                ),
            )
        )
    if kind not in RESPONSE_EVENTS:
        return Parsed(ignored=f"event type {str(kind)[:60]!r} carries no response")
    survey_type = text_or_none(data.get("survey_type")) or "nps"
    if survey_type != "nps":
        return Parsed(ignored=f"a {survey_type[:20]} survey is not an NPS survey")
    skip = {source.mapping.customer_id} if source.mapping.customer_id else set()
    profile = read_profile(object_fields(properties), source.attributes, skip=skip)
    return Parsed(
        responses=(
            CanonicalResponse(
                response_id=required_text(data.get("id"), "event_data.id"),
                survey_id=source.mapping.survey_id or f"delighted-{survey_type}",
                customer=customer(
                    id_=_customer_id(person, properties, source),
                    email=person.get("email"),
                    name=person.get("name"),
                    field="event_data.person",
                    profile=profile,
                ),
                score=parse_score(data.get("score"), "event_data.score"),
                comment=text_or_none(data.get("comment")),
                responded_at=from_unix(data.get("created_at"), "event_data.created_at"),
                attributes_set_aside=profile.set_aside,
            ),
        )
    )


ADAPTER = ProviderAdapter(verify=verify, parse=parse)
