"""Typeform (typeform.com/developers/webhooks).

Event `form_response`: `form_response` has `form_id`, `token` (the response's id),
`submitted_at`, `hidden` (hidden fields by name), `definition.fields` and `answers`, each
answer `{"type", "field": {"id", "ref", "type"}, "<type>": value}` (an NPS or opinion-scale
field answers `{"type": "number", "number": 9}`).

Signature: `Typeform-Signature: sha256=<base64>`, the HMAC-SHA256 of the raw body with the
webhook's secret. Typeform signs no timestamp.

Mapping: `score` and `comment` are field refs (or ids); without them, the first `nps` or
`opinion_scale` field holds the score and the first `long_text` the comment. `customer_id`,
`customer_email`, `customer_name` name hidden fields (defaults `customer_id`, `email`, `name`);
an `email` answer stands in for the email.

Attributes: the other hidden fields (`"hidden": {"plan": "pro"}`), then the form's
`variables` (`[{"key": "tier", "type": "text", "text": "gold"}]`, a number variable's
`number`), read by the source's rules.
"""

from datetime import datetime
from typing import Any

from nps_ingest.domain.attributes import object_fields, read_profile
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.signatures import decode_base64, require, verify_hmac
from nps_ingest.domain.sources import Source
from nps_ingest.domain.webhooks import (
    InvalidResponseError,
    MalformedPayloadError,
    Parsed,
    ProviderAdapter,
    WebhookRequest,
    as_dict,
    customer,
    from_iso,
    parse_score,
    required_text,
    text_or_none,
)

HEADER = "Typeform-Signature"
SCORE_FIELD_TYPES = {"nps", "opinion_scale", "rating"}


def verify(request: WebhookRequest, source: Source, now: datetime) -> None:
    header = require(request.header(HEADER), HEADER)
    algorithm, _, value = header.partition("=")
    digest = decode_base64(value) if algorithm.strip() == "sha256" else None
    verify_hmac(
        message=request.body,
        offered=[digest] if digest is not None else [],
        secrets=[s.encode() for s in source.secrets],
    )


def _value(answer: dict[str, Any]) -> object:
    kind = answer.get("type")
    value = answer.get(kind) if isinstance(kind, str) else None
    if isinstance(value, dict):  # choice answers: {"label": …}
        return value.get("label")
    return value


def _find(answers: list[dict[str, Any]], key: str | None, types: set[str]) -> dict[str, Any] | None:
    for answer in answers:
        field = as_dict(answer.get("field"))
        if key is not None and key in (field.get("ref"), field.get("id")):
            return answer
        if key is None and field.get("type") in types:
            return answer
    return None


def _variables(value: object) -> list[tuple[str, object]]:
    """Typeform's `variables`: `[{"key", "type": "number"|"text", "number"|"text": value}]`."""
    found: list[tuple[str, object]] = []
    for item in value if isinstance(value, list) else []:
        variable = as_dict(item)
        key, kind = variable.get("key"), variable.get("type")
        if isinstance(key, str) and isinstance(kind, str):
            found.append((key, variable.get(kind)))
    return found


def parse(request: WebhookRequest, source: Source, now: datetime) -> Parsed:
    body = request.json_object()
    if body.get("event_type") != "form_response":
        return Parsed(
            ignored=f"event type {str(body.get('event_type'))[:60]!r} carries no response"
        )
    response = body.get("form_response")
    if not isinstance(response, dict):
        raise MalformedPayloadError("form_response is not a JSON object")
    raw_answers = response.get("answers")
    answers = (
        [a for a in raw_answers if isinstance(a, dict)] if isinstance(raw_answers, list) else []
    )
    mapping = source.mapping
    scored = _find(answers, mapping.score, SCORE_FIELD_TYPES)
    if scored is None:
        raise InvalidResponseError(
            "form_response.answers", f"no answer to the score field {mapping.score or '(nps)'}"
        )
    commented = _find(answers, mapping.comment, {"long_text"})
    emailed = _find(answers, None, {"email"})
    hidden = as_dict(response.get("hidden"))
    id_key = mapping.customer_id or "customer_id"
    email_key = mapping.customer_email or "email"
    name_key = mapping.customer_name or "name"
    profile = read_profile(
        [*object_fields(hidden), *_variables(response.get("variables"))],
        source.attributes,
        skip={id_key, email_key, name_key},
    )
    return Parsed(
        responses=(
            CanonicalResponse(
                response_id=required_text(response.get("token"), "form_response.token"),
                survey_id=mapping.survey_id
                or required_text(response.get("form_id"), "form_response.form_id"),
                customer=customer(
                    id_=hidden.get(id_key),
                    email=hidden.get(email_key) or (_value(emailed) if emailed else None),
                    name=hidden.get(name_key),
                    field="form_response.hidden",
                    profile=profile,
                ),
                score=parse_score(_value(scored), "form_response.answers.score"),
                comment=text_or_none(_value(commented)) if commented else None,
                responded_at=from_iso(response.get("submitted_at"), "form_response.submitted_at"),
                attributes_set_aside=profile.set_aside,
            ),
        )
    )


ADAPTER = ProviderAdapter(verify=verify, parse=parse)
