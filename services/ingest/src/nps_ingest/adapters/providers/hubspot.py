"""HubSpot survey responses (feedback submissions), from an app's webhook subscription.

HubSpot posts a JSON array of events, each `{"eventId", "subscriptionId", "portalId",
"appId", "occurredAt" (ms), "subscriptionType", "objectId", …}`: ids only. Events about
feedback submissions (`feedback_submission.creation` / `.propertyChange`, or the generic
`object.*` with `objectTypeId` "0-19") are fetched from the CRM API:
`GET /crm/v3/objects/feedback_submissions/{id}?properties=…&associations=contacts`
(see `adapters.vendor_api`).

Signature v3 ("Validating requests from HubSpot"): `X-HubSpot-Signature-v3` is the base64
HMAC-SHA256, with the app's client secret, of `method + URI + body + timestamp`, where the
timestamp is `X-HubSpot-Request-Timestamp` (Unix milliseconds) and must be at most five
minutes old. The URI is the URL HubSpot called: the source's option `public_url` when ingest
sits behind a proxy that rewrites it.

Mapping: `score`, `comment`, `survey_id`, `customer_email` name submission properties
(defaults `hs_response_value`, `hs_content`, `hs_survey_id`, `hs_contact_email_rollup`); the
customer is the submission's associated contact (mapping `customer_id` may name a property).

Attributes: the associated contact's properties, fetched with
`GET /crm/v3/objects/contacts/{id}?properties=…`. HubSpot returns only the properties asked
for, so ingest asks for `hs_language` (the locale), `hs_timezone`, `phone`, `mobilephone`,
`lifecyclestage` and `country`, plus every property the source's `attributes` maps or
includes (`plan__c`, `region`), read by the source's rules. HubSpot's own record fields
(`hs_object_id`, `createdate`, `lastmodifieddate`) are not attributes: they would change the
event at each redelivery. `hs_timezone` holds HubSpot's spelling of an IANA zone
(`america_slash_sao_paulo`), read as `America/Sao_Paulo`.
"""

import re
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from nps_ingest.domain.attributes import object_fields, read_profile
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.signatures import (
    StaleTimestampError,
    decode_base64,
    require,
    verify_hmac,
)
from nps_ingest.domain.sources import Source
from nps_ingest.domain.webhooks import (
    Fetch,
    MalformedPayloadError,
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

SIGNATURE = "X-HubSpot-Signature-v3"
TIMESTAMP = "X-HubSpot-Request-Timestamp"
FEEDBACK_TYPE_ID = "0-19"
FEEDBACK_EVENTS = {"feedback_submission.creation", "feedback_submission.propertyChange"}
GENERIC_EVENTS = {"object.creation", "object.propertyChange"}

SCORE = "hs_response_value"
COMMENT = "hs_content"
SURVEY = "hs_survey_id"
EMAIL = "hs_contact_email_rollup"
#: Where `HubSpotClient` keeps the associated contact in the fetched record.
CONTACT = "npsloop_contact"
#: Contact properties asked for by default: what a company segments and contacts by.
CONTACT_PROPERTIES = (
    "hs_language",
    "hs_timezone",
    "phone",
    "mobilephone",
    "lifecyclestage",
    "country",
)
#: The contact record's own fields, which HubSpot always returns: never attributes.
CONTACT_RECORD_FIELDS = frozenset({"hs_object_id", "createdate", "lastmodifieddate", "email"})
_PROPERTY_NAME = re.compile(r"^[a-z0-9_]{1,100}$")


def contact_id(record: object) -> str | None:
    """The submission's associated contact's id, if it is one (digits: it goes in a URL)."""
    contacts = dig(record, "associations.contacts.results")
    found = as_dict(contacts[0]).get("id") if isinstance(contacts, list) and contacts else None
    text = str(found) if isinstance(found, int | str) else ""
    return text if text.isdigit() else None


def _iana(value: object) -> object:
    """`America/Sao_Paulo` from HubSpot's `america_slash_sao_paulo`; other values as they are."""
    if not isinstance(value, str) or "_slash_" not in value:
        return value
    return "/".join(
        "_".join(word.capitalize() for word in part.split("_")) for part in value.split("_slash_")
    )


def contact_properties_for(source: Source) -> list[str]:
    """The contact properties to ask the CRM API for: the defaults and those the source's
    attributes name (HubSpot's internal names: lower case, digits, `_`)."""
    rules = source.attributes
    named = [*rules.map, *(rules.include or ())]
    wanted = [*CONTACT_PROPERTIES, *(n for n in named if _PROPERTY_NAME.fullmatch(n))]
    return list(dict.fromkeys(wanted))


def properties_for(source: Source) -> list[str]:
    """The submission properties to ask the CRM API for."""
    m = source.mapping
    wanted = [
        m.score or SCORE,
        m.comment or COMMENT,
        m.survey_id or SURVEY,
        m.customer_email or EMAIL,
    ]
    if m.customer_id:
        wanted.append(m.customer_id)
    return [*wanted, "hs_submission_timestamp", "hs_createdate"]


def verify(request: WebhookRequest, source: Source, now: datetime) -> None:
    signature = decode_base64(require(request.header(SIGNATURE), SIGNATURE))
    stamp = require(request.header(TIMESTAMP), TIMESTAMP)
    try:
        millis = int(stamp)
    except ValueError:
        raise StaleTimestampError("the timestamp is not Unix milliseconds") from None
    if abs(now.timestamp() * 1000 - millis) > source.timestamp_tolerance_seconds * 1000:
        raise StaleTimestampError(
            f"timestamp is more than {source.timestamp_tolerance_seconds} s away from now"
        )
    uri = unquote(source.options.get("public_url") or request.url)
    verify_hmac(
        message=b"POST" + uri.encode() + request.body + stamp.encode(),
        offered=[signature] if signature is not None else [],
        secrets=[s.encode() for s in source.secrets],
    )


def parse(request: WebhookRequest, source: Source, now: datetime) -> Parsed:
    events = request.json()
    if not isinstance(events, list):
        raise MalformedPayloadError("HubSpot sends a JSON array of events")
    fetches = []
    for raw in events:
        event = as_dict(raw)
        kind = event.get("subscriptionType")
        generic = kind in GENERIC_EVENTS and str(event.get("objectTypeId")) == FEEDBACK_TYPE_ID
        if kind in FEEDBACK_EVENTS or generic:
            fetches.append(
                Fetch(
                    response_id=required_text(event.get("objectId"), "objectId"),
                    survey_id="",
                )
            )
    if not fetches:
        return Parsed(ignored="no feedback submission events")
    return Parsed(fetches=tuple(fetches))


def from_fetched(record: Any, fetch: Fetch, source: Source) -> CanonicalResponse:
    record = as_dict(record)
    props = as_dict(record.get("properties"))
    m = source.mapping
    contact = as_dict(as_dict(record.get(CONTACT)).get("properties"))
    if "hs_timezone" in contact:
        contact = {**contact, "hs_timezone": _iana(contact["hs_timezone"])}
    profile = read_profile(
        object_fields(contact),
        source.attributes,
        skip=CONTACT_RECORD_FIELDS | ({m.customer_id} if m.customer_id else set()),
    )
    # When the customer answered; the record's own creation time if HubSpot has none. Never
    # `hs_lastmodifieddate`: that moves whenever anyone edits the record.
    when = props.get("hs_submission_timestamp") or props.get("hs_createdate")
    return CanonicalResponse(
        response_id=fetch.response_id,
        survey_id=required_text(props.get(m.survey_id or SURVEY) or "hubspot-nps", "survey_id"),
        customer=customer(
            id_=(props.get(m.customer_id) if m.customer_id else None) or contact_id(record),
            email=props.get(m.customer_email or EMAIL),
            field="associations.contacts",
            profile=profile,
        ),
        score=parse_score(props.get(m.score or SCORE), f"properties.{m.score or SCORE}"),
        comment=text_or_none(props.get(m.comment or COMMENT)),
        responded_at=from_iso(when, "properties.hs_createdate"),
        attributes_set_aside=profile.set_aside,
    )


ADAPTER = ProviderAdapter(verify=verify, parse=parse, from_fetched=from_fetched)
