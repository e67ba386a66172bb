"""AskNicely (AskNicely's help centre: "Triggering Webhooks in AskNicely").

JSON `{"count", "person": {"id", "name", "email", …custom fields}, "question": {"id",
"score", "comment", "responded", …}}`; scores and times arrive as strings ("10", Unix
seconds). `count` grows by one for each update of the same response.

AskNicely does not sign its webhooks; it sends the custom headers configured in its
Webhooks app. The source's secret is sent there as `Authorization: Bearer <secret>` (or in the
header named by option `header`) and compared in constant time.

Mapping: `customer_id` names a person field holding the customer id (else the person's id);
`survey_id` a fixed survey id for the source (else `asknicely-<survey_template>`, or
`asknicely-nps` when AskNicely sends no template).

Attributes: the person's other fields, which hold the account's custom contact fields
(`segment`, `plan`…), read by the source's rules; AskNicely's own `id`, `name`, `firstname`,
`lastname`, `email` and `created` are not attributes.
"""

from datetime import datetime

from nps_events.signing import any_equal
from nps_ingest.domain.attributes import object_fields, read_profile
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.signatures import SignatureError, require
from nps_ingest.domain.sources import Source
from nps_ingest.domain.webhooks import (
    MalformedPayloadError,
    Parsed,
    ProviderAdapter,
    WebhookRequest,
    customer,
    from_unix,
    parse_score,
    required_text,
    text_or_none,
)

#: The person's own fields in AskNicely's payload: everything else is a custom field.
PERSON_FIELDS = ("id", "name", "firstname", "lastname", "email", "created")


def verify(request: WebhookRequest, source: Source, now: datetime) -> None:
    name = source.options.get("header", "Authorization")
    offered = require(request.header(name), name)
    if name.lower() == "authorization":
        scheme, _, offered = offered.partition(" ")
        if scheme.lower() != "bearer":
            raise SignatureError("send 'Authorization: Bearer <secret>'")
    if not source.secrets or not any_equal(source.secrets, [offered.strip()]):
        raise SignatureError("the shared secret does not match")


def parse(request: WebhookRequest, source: Source, now: datetime) -> Parsed:
    body = request.json_object()
    person = body.get("person")
    question = body.get("question")
    if not isinstance(person, dict) or not isinstance(question, dict):
        raise MalformedPayloadError("person and question must be JSON objects")
    key = source.mapping.customer_id
    profile = read_profile(
        object_fields(person),
        source.attributes,
        skip={*PERSON_FIELDS, *([key] if key else [])},
    )
    # The survey is its template (`survey_template`); `segment` is the respondent's segment,
    # not a survey, so it never names one.
    template = text_or_none(question.get("survey_template")) or text_or_none(
        body.get("survey_template")
    )
    return Parsed(
        responses=(
            CanonicalResponse(
                response_id=required_text(question.get("id"), "question.id"),
                survey_id=source.mapping.survey_id or f"asknicely-{template or 'nps'}",
                customer=customer(
                    id_=(person.get(key) if key else None) or person.get("id"),
                    email=person.get("email"),
                    name=person.get("name"),
                    field="person",
                    profile=profile,
                ),
                score=parse_score(question.get("score"), "question.score"),
                comment=text_or_none(question.get("comment")),
                responded_at=from_unix(question.get("responded"), "question.responded"),
                attributes_set_aside=profile.set_aside,
            ),
        )
    )


ADAPTER = ProviderAdapter(verify=verify, parse=parse)
