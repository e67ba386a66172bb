"""Wootric / InMoment (docs.wootric.com/webhooks), form-encoded or JSON.

A `response` (`id`, `email`, `external_id`, `score`, `text`, `survey_id`, `created_at`,
`end_user_properties`) or a `decline`, with `event_name` (`created`, `updated`). Form-encoded,
keys are nested in brackets: `response[score]=7&response[text]=…`, and every value is a string.

Signature: `X-Wootric-Signature: sha1=<hex>`, the HMAC-SHA1 of the raw body with the
account's webhook secret. No timestamp is signed.

The customer is `external_id` (mapping `customer_id` may name an end-user property instead),
else the email. A decline carries no score: it is acknowledged and ignored.

Attributes: `end_user_properties` (`response[end_user_properties][pricing_plan]=Enterprise`),
read by the source's rules.
"""

from datetime import datetime
from typing import Any

from nps_ingest.domain.attributes import object_fields, read_profile
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.signatures import decode_hex, require, verify_hmac
from nps_ingest.domain.sources import Source
from nps_ingest.domain.webhooks import (
    MalformedPayloadError,
    Parsed,
    ProviderAdapter,
    WebhookRequest,
    customer,
    from_iso,
    parse_score,
    required_text,
    text_or_none,
)

HEADER = "X-Wootric-Signature"


def verify(request: WebhookRequest, source: Source, now: datetime) -> None:
    header = require(request.header(HEADER), HEADER)
    algorithm, _, value = header.partition("=")
    digest = decode_hex(value) if algorithm.strip() == "sha1" else None
    verify_hmac(
        message=request.body,
        offered=[digest] if digest is not None else [],
        secrets=[s.encode() for s in source.secrets],
        algorithm="sha1",
    )


def _unflatten(form: dict[str, str]) -> dict[str, Any]:
    """`{"response[end_user_properties][plan]": "x"}` → `{"response": {"end_user_properties":
    {"plan": "x"}}}`."""
    tree: dict[str, Any] = {}
    for key, value in form.items():
        parts = key.replace("]", "").split("[")
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise MalformedPayloadError(f"form key {key[:60]!r} clashes with another")
            node = child
        node[parts[-1]] = value
    return tree


def _wootric_time(value: object) -> datetime:
    # JSON sends ISO 8601; the form sends "2016-08-04 13:57:26 -0700".
    if isinstance(value, str) and " " in value.strip():
        try:
            return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            pass
    return from_iso(value, "response.created_at")


def parse(request: WebhookRequest, source: Source, now: datetime) -> Parsed:
    content_type = request.header("content-type") or ""
    body = request.json_object() if "json" in content_type else _unflatten(request.form())
    response = body.get("response")
    if response is None:
        if "decline" in body:
            return Parsed(ignored="a decline carries no score")
        raise MalformedPayloadError("neither a response nor a decline")
    if not isinstance(response, dict):
        raise MalformedPayloadError("response is not an object")
    properties = response.get("end_user_properties")
    properties = properties if isinstance(properties, dict) else {}
    key = source.mapping.customer_id
    profile = read_profile(
        object_fields(properties), source.attributes, skip={key} if key else set()
    )
    return Parsed(
        responses=(
            CanonicalResponse(
                response_id=required_text(response.get("id"), "response.id"),
                survey_id=source.mapping.survey_id
                or f"wootric-{text_or_none(response.get('survey_id')) or 'nps'}",
                customer=customer(
                    id_=(properties.get(key) if key else None) or response.get("external_id"),
                    email=response.get("email"),
                    field="response",
                    profile=profile,
                ),
                score=parse_score(response.get("score"), "response.score"),
                comment=text_or_none(response.get("text")),
                responded_at=_wootric_time(response.get("created_at")),
                attributes_set_aside=profile.set_aside,
            ),
        )
    )


ADAPTER = ProviderAdapter(verify=verify, parse=parse)
