"""Qualtrics event subscriptions (`surveyengine.completedResponse.{SurveyID}`).

Qualtrics posts `application/x-www-form-urlencoded` fields, in one of two shapes:

- a subscription created with a `sharedKey`: `Topic`, `MSG` (a JSON string: `Status`,
  `SurveyID`, `ResponseID`, `CompletedDate`, `BrandID`) and `HMAC`, the hex HMAC-SHA512 of
  `MSG` with that key (the source's secret). No timestamp is signed.
- a subscription without one: `Topic`, `Status`, `SurveyID`, `ResponseID`, `BrandID`,
  `CompletedDate` as plain fields, and nothing signed. Qualtrics lets a subscription add
  neither a signature nor a header, so such a source proves itself by a secret last segment
  of its URL (`proof: path_secret`, `/v1/webhooks/{source}/{secret}`); see docs/sources.md for
  what that gives up.

Either way the delivery carries ids only, and they are not trusted: each must have Qualtrics'
form (`SV_…`, `R_…`) before it goes into a URL, and nothing is published until
`GET /API/v3/surveys/{SurveyID}/responses/{ResponseID}` (see `adapters.vendor_api`, with the
source's own API token) returns that very response. Its `result.values` hold the answers by
question id (`QID1`, `QID2_TEXT`…) and embedded data: everything published comes from there.

Mapping: `score` and `comment` are keys of `values` (score required); `customer_id` an
embedded-data field (else `externalDataReference`, else the recipient's email);
`customer_email` (default `recipientEmail`).

Attributes: the embedded data in `values` (`"plan": "pro"`), and `userLanguage` (`EN`,
`PT-BR`) as the locale, read by the source's rules. Answers (`QID…`), scoring (`SC_…`) and
Qualtrics' own response metadata (dates, progress, IP address, location, recipient's
name…) are not attributes.
"""

import json
import re
from datetime import datetime
from typing import Any

from nps_ingest.domain.attributes import read_profile
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.signatures import decode_hex, require, verify_hmac, verify_path_secret
from nps_ingest.domain.sources import Proof, Source
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
#: Qualtrics' ids: `SV_` / `R_` and letters and digits. Anything else never reaches a URL.
SURVEY_ID = re.compile(r"^SV_[A-Za-z0-9]{1,40}$")
RESPONSE_ID = re.compile(r"^R_[A-Za-z0-9]{1,40}$")
#: Keys of `values` that are answers (`QID1`, `QID2_TEXT`) or scoring (`SC_…`), not embedded data.
_NOT_EMBEDDED = re.compile(r"^(QID|SC_)")
#: Qualtrics' own keys of `values`: the response's metadata, never attributes.
RESPONSE_METADATA = frozenset(
    {
        "startDate",
        "endDate",
        "status",
        "ipAddress",
        "progress",
        "duration",
        "finished",
        "recordedDate",
        "_recordId",
        "locationLatitude",
        "locationLongitude",
        "distributionChannel",
        "recipientEmail",
        "recipientFirstName",
        "recipientLastName",
        "externalDataReference",
    }
)


def verify(request: WebhookRequest, source: Source, now: datetime) -> None:
    if source.proof is Proof.PATH_SECRET:
        verify_path_secret(request.path_secret, source.secrets)
        return
    form = request.form()
    digest = decode_hex(require(form.get("HMAC"), "HMAC form field"))
    verify_hmac(
        message=form.get("MSG", "").encode(),
        offered=[digest] if digest is not None else [],
        secrets=[s.encode() for s in source.secrets],
        algorithm="sha512",
    )


def _event_fields(form: dict[str, str]) -> dict[str, Any]:
    """`MSG`'s fields (a subscription with a shared key), else the plain form's (without)."""
    if "MSG" not in form:
        return dict(form)
    try:
        return as_dict(json.loads(form["MSG"]))
    except ValueError:
        raise MalformedPayloadError("MSG is not JSON") from None


def _id(value: object, pattern: re.Pattern[str], field: str) -> str:
    text = required_text(value, field)
    if not pattern.fullmatch(text):
        raise InvalidResponseError(field, f"is not a Qualtrics id: {text[:40]!r}")
    return text


def parse(request: WebhookRequest, source: Source, now: datetime) -> Parsed:
    form = request.form()
    topic = form.get("Topic", "")
    if COMPLETED not in topic:
        return Parsed(ignored=f"topic {topic[:80]!r} carries no completed response")
    fields = _event_fields(form)
    where = "MSG." if "MSG" in form else ""
    survey_id = _id(fields.get("SurveyID"), SURVEY_ID, f"{where}SurveyID")
    if not topic.endswith(COMPLETED + survey_id):
        raise InvalidResponseError("Topic", f"is not the completed responses of {survey_id}")
    return Parsed(
        fetches=(
            Fetch(
                response_id=_id(fields.get("ResponseID"), RESPONSE_ID, f"{where}ResponseID"),
                survey_id=survey_id,
            ),
        )
    )


def from_fetched(document: Any, fetch: Fetch, source: Source) -> CanonicalResponse:
    result = as_dict(as_dict(document).get("result"))
    if result.get("responseId") != fetch.response_id:
        # Only what the API returned for the id asked is trusted, never the delivery's word.
        raise MalformedPayloadError(f"Qualtrics did not return response {fetch.response_id}")
    values = as_dict(result.get("values"))
    m = source.mapping
    if not m.score or values.get(m.score) in (None, ""):
        raise InvalidResponseError(f"values.{m.score}", "the response has no score")
    email = values.get(m.customer_email or "recipientEmail")
    used = {m.customer_id, m.customer_email, m.score, m.comment} - {None}
    profile = read_profile(
        [(k, v) for k, v in values.items() if not _NOT_EMBEDDED.match(k)],
        source.attributes,
        skip={str(k) for k in used} | RESPONSE_METADATA,
    )
    return CanonicalResponse(
        response_id=fetch.response_id,
        survey_id=m.survey_id or fetch.survey_id,
        customer=customer(
            id_=(values.get(m.customer_id) if m.customer_id else None)
            or values.get("externalDataReference"),
            email=email,
            field="values",
            profile=profile,
        ),
        score=parse_score(values.get(m.score), f"values.{m.score}"),
        comment=text_or_none(values.get(m.comment)) if m.comment else None,
        responded_at=from_iso(values.get("recordedDate") or values.get("endDate"), "recordedDate"),
        attributes_set_aside=profile.set_aside,
    )


ADAPTER = ProviderAdapter(verify=verify, parse=parse, from_fetched=from_fetched)
