"""SurveyMonkey (api.surveymonkey.com/v3/docs, "Webhooks").

A `response_completed` callback carries ids only: `{"name", "filter_type", "filter_id",
"event_type", "event_id", "object_type": "response", "object_id": <response id>,
"event_datetime", "resources": {"survey_id", "collector_id", "respondent_id", …}}`. The response
is then fetched: `GET /v3/surveys/{survey_id}/responses/{response_id}/details?simple=true`
(see `adapters.vendor_api`), whose `pages[].questions[].answers[]` carry `simple_text`.

Signature: `Sm-Signature`, the base64 HMAC-SHA1 of the raw body with the key
`<api key>&<api secret>` (the source's secret is that joined string). No timestamp is signed.

Mapping: `score` and `comment` are question ids; `customer_id` names a custom variable (else
the contact's email is the customer).

Attributes: the response's `custom_variables` (`{"plan": "pro"}`, set on the collector's
link), read by the source's rules.
"""

from datetime import datetime
from typing import Any

from nps_ingest.domain.attributes import object_fields, read_profile
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.signatures import decode_base64, require, verify_hmac
from nps_ingest.domain.sources import Source
from nps_ingest.domain.webhooks import (
    Fetch,
    InvalidResponseError,
    Parsed,
    ProviderAdapter,
    WebhookRequest,
    as_dict,
    customer,
    dig,
    from_iso,
    parse_score,
    required_text,
    text_or_none,
)

HEADER = "Sm-Signature"


def verify(request: WebhookRequest, source: Source, now: datetime) -> None:
    digest = decode_base64(require(request.header(HEADER), HEADER))
    verify_hmac(
        message=request.body,
        offered=[digest] if digest is not None else [],
        secrets=[s.encode() for s in source.secrets],
        algorithm="sha1",
    )


def parse(request: WebhookRequest, source: Source, now: datetime) -> Parsed:
    body = request.json_object()
    if body.get("event_type") != "response_completed" or body.get("object_type") != "response":
        kind = str(body.get("event_type"))[:60]
        return Parsed(ignored=f"event type {kind!r} carries no completed response")
    resources = as_dict(body.get("resources"))
    return Parsed(
        fetches=(
            Fetch(
                response_id=required_text(body.get("object_id"), "object_id"),
                survey_id=required_text(
                    resources.get("survey_id") or body.get("filter_id"), "resources.survey_id"
                ),
            ),
        )
    )


def _answer_text(details: dict[str, Any], question_id: str | None) -> str | None:
    if question_id is None:
        return None
    for page in details.get("pages") or []:
        for raw in as_dict(page).get("questions") or []:
            question = as_dict(raw)
            if str(question.get("id")) == question_id:
                for answer in question.get("answers") or []:
                    text = text_or_none(as_dict(answer).get("simple_text")) or text_or_none(
                        as_dict(answer).get("text")
                    )
                    if text is not None:
                        return text
    return None


def from_fetched(details: Any, fetch: Fetch, source: Source) -> CanonicalResponse:
    details = as_dict(details)
    mapping = source.mapping
    score = _answer_text(details, mapping.score)
    if score is None:
        raise InvalidResponseError("pages.questions", f"no answer to question {mapping.score}")
    variables = as_dict(details.get("custom_variables"))
    email = dig(details, "metadata.contact.email.value")
    profile = read_profile(
        object_fields(variables),
        source.attributes,
        skip={mapping.customer_id} if mapping.customer_id else set(),
    )
    return CanonicalResponse(
        response_id=fetch.response_id,
        survey_id=mapping.survey_id or fetch.survey_id,
        customer=customer(
            id_=variables.get(mapping.customer_id) if mapping.customer_id else None,
            email=email,
            field="custom_variables",
            profile=profile,
        ),
        score=parse_score(score, f"question {mapping.score}"),
        comment=_answer_text(details, mapping.comment),
        responded_at=from_iso(
            details.get("date_modified") or details.get("date_created"), "date_modified"
        ),
        attributes_set_aside=profile.set_aside,
    )


ADAPTER = ProviderAdapter(verify=verify, parse=parse, from_fetched=from_fetched)
