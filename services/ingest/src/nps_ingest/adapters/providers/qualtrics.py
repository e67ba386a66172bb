"""Qualtrics event subscriptions (`surveyengine.completedResponse.{SurveyID}`).

Qualtrics posts `application/x-www-form-urlencoded` fields: `Topic`, `MSG` (a JSON string:
`Status`, `SurveyID`, `ResponseID`, `CompletedDate`, `BrandID`) and, for a subscription created
with a `sharedKey`, `HMAC`: the hex HMAC-SHA512 of `MSG` with that key (the source's secret).
No timestamp is signed. Ids only: the response is fetched with
`GET /API/v3/surveys/{SurveyID}/responses/{ResponseID}` (see `adapters.vendor_api`), whose
`result.values` hold the answers by question id (`QID1`, `QID2_TEXT`…) and embedded data.

Mapping: `score` and `comment` are keys of `values` (score required); `customer_id` an
embedded-data field (else `externalDataReference`, else the recipient's email);
`customer_email` (default `recipientEmail`).
"""

import json
from datetime import datetime
from typing import Any

from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.signatures import decode_hex, require, verify_hmac
from nps_ingest.domain.sources import Source
from nps_ingest.domain.webhooks import (
    Fetch,
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

COMPLETED = ".completedResponse."


def verify(request: WebhookRequest, source: Source, now: datetime) -> None:
    form = request.form()
    digest = decode_hex(require(form.get("HMAC"), "HMAC form field"))
    verify_hmac(
        message=form.get("MSG", "").encode(),
        offered=[digest] if digest is not None else [],
        secrets=[s.encode() for s in source.secrets],
        algorithm="sha512",
    )


def parse(request: WebhookRequest, source: Source, now: datetime) -> Parsed:
    form = request.form()
    topic = form.get("Topic", "")
    if COMPLETED not in topic:
        return Parsed(ignored=f"topic {topic[:80]!r} carries no completed response")
    try:
        message = as_dict(json.loads(form.get("MSG", "")))
    except ValueError:
        raise MalformedPayloadError("MSG is not JSON") from None
    return Parsed(
        fetches=(
            Fetch(
                response_id=required_text(message.get("ResponseID"), "MSG.ResponseID"),
                survey_id=required_text(message.get("SurveyID"), "MSG.SurveyID"),
            ),
        )
    )


def from_fetched(document: Any, fetch: Fetch, source: Source) -> CanonicalResponse:
    values = as_dict(as_dict(as_dict(document).get("result")).get("values"))
    m = source.mapping
    if not m.score or values.get(m.score) in (None, ""):
        raise InvalidResponseError(f"values.{m.score}", "the response has no score")
    email = values.get(m.customer_email or "recipientEmail")
    return CanonicalResponse(
        response_id=fetch.response_id,
        survey_id=m.survey_id or fetch.survey_id,
        customer=customer(
            id_=(values.get(m.customer_id) if m.customer_id else None)
            or values.get("externalDataReference"),
            email=email,
            field="values",
        ),
        score=parse_score(values.get(m.score), f"values.{m.score}"),
        comment=text_or_none(values.get(m.comment)) if m.comment else None,
        responded_at=from_iso(values.get("recordedDate") or values.get("endDate"), "recordedDate"),
    )


ADAPTER = ProviderAdapter(verify=verify, parse=parse, from_fetched=from_fetched)
