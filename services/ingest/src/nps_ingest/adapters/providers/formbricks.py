"""Formbricks (formbricks.com) webhooks: `responseCreated`, `responseUpdated`,
`responseFinished`, signed per the Standard Webhooks specification.

The response is `data`: `id`, `surveyId`, `createdAt`/`updatedAt`, `finished`, `data` (answers
keyed by question id, hidden fields by their id), `contact` and `contactAttributes`. The
source's mapping names the question ids holding the score and the comment, and the hidden
field (or contact attribute) holding the customer id and email.

Attributes: `contactAttributes` (`{"plan": "pro", "language": "de"}`), and the response's
`language` (unless `default`) as the locale, read by the source's rules.
"""

from datetime import datetime

from nps_ingest.adapters.providers.standard_webhooks import verify
from nps_ingest.domain.attributes import object_fields, read_profile
from nps_ingest.domain.responses import CanonicalResponse
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

EVENTS = {"responseCreated", "responseUpdated", "responseFinished"}


def _first(*values: object) -> object:
    return next((v for v in values if v not in (None, "")), None)


def parse(request: WebhookRequest, source: Source, now: datetime) -> Parsed:
    body = request.json_object()
    event = body.get("event")
    if event not in EVENTS:
        return Parsed(ignored=f"event {str(event)[:60]!r} carries no response")
    response = body.get("data")
    if not isinstance(response, dict):
        raise MalformedPayloadError("data is not a JSON object")
    answers = as_dict(response.get("data"))
    mapping = source.mapping
    if not mapping.score:
        raise InvalidResponseError("mapping.score", "the source names no score question")
    if answers.get(mapping.score) in (None, ""):
        return Parsed(ignored="the response has no answer to the score question yet")
    contact = as_dict(response.get("contact"))
    attributes = as_dict(response.get("contactAttributes"))
    id_key = mapping.customer_id or "userId"
    email_key = mapping.customer_email or "email"
    when = _first(response.get("updatedAt"), response.get("createdAt"))
    language = response.get("language")
    profile = read_profile(
        [
            *object_fields(attributes),
            *([("language", language)] if language not in (None, "", "default") else []),
        ],
        source.attributes,
        skip={id_key, email_key},
    )
    return Parsed(
        responses=(
            CanonicalResponse(
                response_id=required_text(response.get("id"), "data.id"),
                survey_id=required_text(response.get("surveyId"), "data.surveyId"),
                customer=customer(
                    id_=_first(
                        answers.get(id_key),
                        attributes.get(id_key),
                        contact.get("userId"),
                        contact.get("id"),
                    ),
                    email=_first(answers.get(email_key), attributes.get(email_key)),
                    name=answers.get(mapping.customer_name) if mapping.customer_name else None,
                    field="data.contact",
                    profile=profile,
                ),
                score=parse_score(answers.get(mapping.score), f"data.data.{mapping.score}"),
                comment=text_or_none(answers.get(mapping.comment)) if mapping.comment else None,
                responded_at=from_iso(when, "data.createdAt") if when else now,
                attributes_set_aside=profile.set_aside,
            ),
        )
    )


ADAPTER = ProviderAdapter(verify=verify, parse=parse)
