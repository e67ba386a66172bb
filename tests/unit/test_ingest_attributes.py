"""The customer's attributes from every survey tool: which vendor fields become attributes,
locale, time zone and phone, by default and by a source's rules, and what is set aside.

Vendor payloads follow their documented formats: Delighted's survey response
(`person_properties`), Typeform's `form_response` (`hidden`, `variables`), Formbricks' webhook
(`contactAttributes`, `language`), Wootric's form-encoded response (`end_user_properties`),
AskNicely's webhook (`person` with the account's custom fields), SurveyMonkey's response
details (`custom_variables`), HubSpot's CRM contact (`properties`) and Qualtrics' response
export (`values` with embedded data).
"""

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nps_events import Customer
from nps_ingest.bootstrap import ADAPTERS
from nps_ingest.config import SourcesError, parse_sources
from nps_ingest.domain.attributes import AttributeRules, Profile, read_profile
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.sources import FieldMapping, Provider, Source
from nps_ingest.domain.webhooks import Fetch, WebhookRequest

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DEFAULT = AttributeRules()


# --- the rules, as a table ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "rules", "expected"),
    [
        # Every scalar, under a normalised key; numbers and booleans as text.
        (
            {"Pricing Plan": "Enterprise", "Seats": 40, "trial": False, "ARR (€)": 1.5},
            DEFAULT,
            Profile(
                attributes={"pricing_plan": "Enterprise", "seats": "40", "trial": "false"}
                | {"arr": "1.5"}
            ),
        ),
        # Well-known names become the customer's fields, normalised.
        (
            {"language": "pt_br", "tz": "Europe/Lisbon", "Mobile": "+351 912 345 678"},
            DEFAULT,
            Profile(locale="pt-BR", timezone="Europe/Lisbon", phone="+351912345678"),
        ),
        # SMS consent as followup reads it.
        ({"SMS opt-in": "Opted In"}, DEFAULT, Profile(attributes={"sms_consent": "yes"})),
        ({"sms_consent": 0}, DEFAULT, Profile(attributes={"sms_consent": "no"})),
        # Personal data is not an attribute; empty values and nested objects are not either.
        (
            {"email": "a@x.io", "First Name": "Ada", "address": "1 Main St", "note": "", "x": {}},
            DEFAULT,
            Profile(),
        ),
        # A source's map, include and exclude.
        (
            {"Plan Tier": "gold", "Lang": "de", "Region": "EMEA", "secret": "s"},
            AttributeRules(map={"Plan Tier": "plan", "Lang": "locale"}, include=("region",)),
            Profile(attributes={"plan": "gold", "region": "EMEA"}, locale="de"),
        ),
        (
            {"plan": "gold", "internal_score": "7"},
            AttributeRules(exclude=("internal_score",)),
            Profile(attributes={"plan": "gold"}),
        ),
        # An explicitly mapped personal field is the source's choice.
        ({"email": "a@x.io"}, AttributeRules(map={"email": "contact"}), None),
    ],
    ids=[
        "scalars",
        "known-fields",
        "consent-yes",
        "consent-no",
        "pii",
        "map",
        "exclude",
        "mapped-pii",
    ],
)
def test_vendor_fields_become_attributes_and_customer_fields(
    fields: dict[str, object], rules: AttributeRules, expected: Profile | None
) -> None:
    found = read_profile(fields.items(), rules)
    if expected is None:
        assert found.attributes == {"contact": "a@x.io"}
    else:
        assert found == expected


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"plan": "platinum\x00"}, "'plan': the value must be a single line"),
        ({"plan": "platinum\nBcc: x@evil.io"}, "'plan': the value must be a single line"),
        ({"plan": "x" * 201}, "'plan': the value is longer than 200 characters"),
        ({"phone": "0612345678"}, "'phone': is not a phone number with its country code"),
        ({"locale": "English"}, "'locale': is not a language such as en or pt-BR"),
        ({"timezone": "Mars/Olympus"}, "'timezone': is not an IANA time zone"),
        ({"sms_consent": "maybe"}, "'sms_consent': is not a yes or a no"),
        ({"123": "xylophone"}, "'123': no attribute name can be made of it"),
        ({"Plan": "alpha", "plan": "bravo"}, "'plan': plan is already taken from 'Plan'"),
    ],
)
def test_a_field_that_cannot_be_taken_is_set_aside_naming_it_never_its_value(
    fields: dict[str, object], reason: str
) -> None:
    found = read_profile(fields.items(), DEFAULT)
    [aside] = found.set_aside
    assert aside.startswith(reason)
    for value in fields.values():
        assert str(value)[:6] not in aside
    # The rest of the customer is still what the event can carry.
    Customer(id="c", attributes=found.attributes, locale=found.locale, phone=found.phone)


def test_over_twenty_attributes_the_mapped_ones_are_kept_and_the_rest_set_aside() -> None:
    fields = [(f"field {i}", str(i)) for i in range(25)] + [("Plan Tier", "gold")]
    found = read_profile(fields, AttributeRules(map={"Plan Tier": "plan"}))
    assert len(found.attributes) == 20
    assert found.attributes["plan"] == "gold"
    assert len(found.set_aside) == 6
    assert all("20 attributes already" in a for a in found.set_aside)
    Customer(id="c", attributes=found.attributes)


def test_a_flood_of_bad_fields_is_reported_in_twenty_lines_and_a_count() -> None:
    found = read_profile([(f"f{i}", "\x00") for i in range(50)], DEFAULT)
    assert len(found.set_aside) == 21
    assert found.set_aside[-1] == "and 30 more fields"


# --- each vendor's documented payload -------------------------------------------------------


def _parse(provider: Provider, body: bytes, content_type: str, **source: Any) -> CanonicalResponse:
    src = Source(name="s", provider=provider, secrets=("secret-123",), **source)
    request = WebhookRequest(headers={"content-type": content_type}, body=body)
    [response] = ADAPTERS[provider].parse(request, src, NOW).responses
    return response


def _fetched(provider: Provider, record: dict[str, Any], fetch: Fetch, **source: Any) -> Any:
    src = Source(name="s", provider=provider, secrets=("secret-123",), **source)
    from_fetched = ADAPTERS[provider].from_fetched
    assert from_fetched is not None
    return from_fetched(record, fetch, src)


def test_delighted_person_properties() -> None:
    body = {
        "event_type": "survey_response.created",
        "event_id": "e1",
        "event_data": {
            "id": "5435",
            "person": {"id": "5975", "email": "charlie_gravis@example.com", "name": "Charlie"},
            "survey_type": "nps",
            "score": 3,
            "comment": None,
            "created_at": 1732186844,
            "person_properties": {
                "Delighted Source": "Email",
                "Delighted Device Type": "desktop",
                "Purchase Experience": "Mobile App",
                "State": "CA",
                "Customer ID": "cus-42",
                "locale": "fr",
            },
        },
    }
    response = _parse(
        Provider.DELIGHTED,
        json.dumps(body).encode(),
        "application/json",
        mapping=FieldMapping(customer_id="Customer ID"),
    )
    assert response.customer.id == "cus-42"
    assert response.customer.attributes == {
        "delighted_source": "Email",
        "delighted_device_type": "desktop",
        "purchase_experience": "Mobile App",
        "state": "CA",
    }
    assert response.customer.locale == "fr"


def test_typeform_hidden_fields_and_variables() -> None:
    body = {
        "event_id": "LtWXD3crgy",
        "event_type": "form_response",
        "form_response": {
            "form_id": "lT4Z3j",
            "token": "a3a12ec6",
            "submitted_at": "2018-01-18T18:17:02Z",
            "hidden": {"user_id": "abc123", "plan": "pro", "lang": "de", "email": "x@y.io"},
            "variables": [
                {"key": "score", "type": "number", "number": 4},
                {"key": "tier", "type": "text", "text": "gold"},
            ],
            "answers": [{"type": "number", "number": 6, "field": {"id": "N", "type": "nps"}}],
        },
    }
    response = _parse(
        Provider.TYPEFORM,
        json.dumps(body).encode(),
        "application/json",
        mapping=FieldMapping(customer_id="user_id"),
    )
    assert (response.customer.id, response.customer.email) == ("abc123", "x@y.io")
    assert response.customer.attributes == {"plan": "pro", "score": "4", "tier": "gold"}
    assert response.customer.locale == "de"


def test_formbricks_contact_attributes_and_language() -> None:
    body = {
        "webhookId": "w",
        "event": "responseFinished",
        "data": {
            "id": "clresp123",
            "createdAt": "2026-11-24T11:50:00.000Z",
            "surveyId": "clsurvey9",
            "data": {"nps_q": 4},
            "language": "de",
            "contact": {"id": "ctc1", "userId": "user-7"},
            "contactAttributes": {
                "userId": "user-7",
                "email": "grace@example.com",
                "firstName": "Grace",
                "plan": "scale",
                "company_size": "200",
            },
        },
    }
    response = _parse(
        Provider.FORMBRICKS,
        json.dumps(body).encode(),
        "application/json",
        mapping=FieldMapping(score="nps_q"),
    )
    assert (response.customer.id, response.customer.email) == ("user-7", "grace@example.com")
    assert response.customer.attributes == {"plan": "scale", "company_size": "200"}
    assert response.customer.locale == "de"


def test_wootric_end_user_properties_form_encoded() -> None:
    body = urlencode(
        {
            "response[id]": "1128",
            "response[email]": "nps@example.com",
            "response[external_id]": "123abc",
            "response[score]": "7",
            "response[end_user_properties][pricing_plan]": "Enterprise",
            "response[end_user_properties][product_plan]": "Web App",
            "response[end_user_properties][timezone]": "America/New_York",
            "response[created_at]": "2016-08-04 13:57:26 -0700",
        }
    ).encode()
    response = _parse(Provider.WOOTRIC, body, "application/x-www-form-urlencoded")
    assert response.customer.attributes == {"pricing_plan": "Enterprise", "product_plan": "Web App"}
    assert response.customer.timezone == "America/New_York"


def test_asknicely_custom_person_fields() -> None:
    body = {
        "count": 1,
        "person": {
            "id": "163012",
            "name": "Firstname Lastname",
            "firstname": "Firstname",
            "lastname": "Lastname",
            "email": "tester@asknice.ly",
            "created": "1774990112",
            "segment": "general",
            "plan": "premium",
            "mobile": "+64 21 555 0101",
        },
        "question": {"id": "345094", "score": "2", "responded": "1774990125"},
    }
    response = _parse(Provider.ASKNICELY, json.dumps(body).encode(), "application/json")
    assert response.customer.attributes == {"segment": "general", "plan": "premium"}
    assert response.customer.phone == "+64215550101"


def test_surveymonkey_custom_variables() -> None:
    details = {
        "id": "987",
        "date_modified": "2026-11-24T11:58:00+00:00",
        "custom_variables": {"customer_id": "cus_sm_1", "plan": "team", "region": "apac"},
        "pages": [{"questions": [{"id": "q-nps", "answers": [{"simple_text": "5"}]}]}],
    }
    response = _fetched(
        Provider.SURVEYMONKEY,
        details,
        Fetch(response_id="987", survey_id="123"),
        mapping=FieldMapping(score="q-nps", customer_id="customer_id"),
    )
    assert response.customer.id == "cus_sm_1"
    assert response.customer.attributes == {"plan": "team", "region": "apac"}


def test_hubspot_associated_contact_properties() -> None:
    record = {
        "id": "5551212",
        "properties": {
            "hs_response_value": "5",
            "hs_contact_email_rollup": "ravi@example.com",
            "hs_submission_timestamp": "2026-11-24T11:48:30.000Z",
        },
        "associations": {"contacts": {"results": [{"id": "901", "type": "x"}]}},
        # What HubSpotClient adds: GET /crm/v3/objects/contacts/901?properties=…
        "npsloop_contact": {
            "id": "901",
            "properties": {
                "createdate": "2025-01-02T10:00:00.000Z",
                "email": "ravi@example.com",
                "firstname": "Ravi",
                "hs_object_id": "901",
                "lastmodifieddate": "2026-11-20T10:00:00.000Z",
                "hs_language": "pt-br",
                "hs_timezone": "america_slash_sao_paulo",
                "phone": "+55 11 91234-5678",
                "lifecyclestage": "customer",
                "plan": "enterprise",
            },
            "archived": False,
        },
    }
    response = _fetched(Provider.HUBSPOT, record, Fetch(response_id="5551212", survey_id=""))
    assert response.customer.id == "901"
    assert response.customer.attributes == {"lifecyclestage": "customer", "plan": "enterprise"}
    assert (response.customer.locale, response.customer.phone) == ("pt-BR", "+5511912345678")
    assert response.customer.timezone == "America/Sao_Paulo"
    assert response.attributes_set_aside == ()


def test_qualtrics_embedded_data_and_user_language() -> None:
    document = {
        "result": {
            "responseId": "R_abc123",
            "values": {
                "startDate": "2026-11-24T11:50:00Z",
                "endDate": "2026-11-24T11:51:00Z",
                "recordedDate": "2026-11-24T11:51:01Z",
                "status": 0,
                "ipAddress": "203.0.113.9",
                "progress": 100,
                "duration": 61,
                "finished": 1,
                "_recordId": "R_abc123",
                "locationLatitude": "51.5",
                "distributionChannel": "email",
                "userLanguage": "EN",
                "recipientEmail": "ola@example.com",
                "recipientFirstName": "Ola",
                "externalDataReference": "cus-77",
                "QID1": 9,
                "QID2_TEXT": "Great",
                "SC_0": 3,
                "plan": "enterprise",
                "Region": "EMEA",
            },
        }
    }
    response = _fetched(
        Provider.QUALTRICS,
        document,
        Fetch(response_id="R_abc123", survey_id="SV_1"),
        mapping=FieldMapping(score="QID1", comment="QID2_TEXT"),
    )
    assert (response.customer.id, response.customer.email) == ("cus-77", "ola@example.com")
    assert response.customer.attributes == {"plan": "enterprise", "region": "EMEA"}
    assert response.customer.locale == "en"


# --- the sources file -----------------------------------------------------------------------

SOURCES = """\
sources:
  acme-typeform:
    provider: typeform
    secrets: [{value: typeform-secret}]
    attributes:
      map: {Plan Tier: plan, lang: locale}
      include: [region]
      exclude: [internal_note]
"""


def test_a_sources_file_gives_a_source_its_attribute_rules() -> None:
    [source] = parse_sources(SOURCES, {}).values()
    assert source.attributes == AttributeRules(
        map={"Plan Tier": "plan", "lang": "locale"}, include=("region",), exclude=("internal_note",)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("lang: locale", "lang: Language"),
            "sources.yaml:6: sources.acme-typeform.attributes.map",
        ),
        (("[internal_note]", "[region]"), "sources.yaml:5: sources.acme-typeform.attributes"),
        (("provider: typeform", "provider: canonical\n    tokens: [{value: shop-token}]"), ":6:"),
    ],
    ids=["bad-target", "included-and-excluded", "canonical-has-none"],
)
def test_wrong_attribute_rules_stop_ingest_naming_the_line(
    change: tuple[str, str], message: str
) -> None:
    with pytest.raises(SourcesError, match=message):
        parse_sources(SOURCES.replace(*change), {}, origin="sources.yaml")


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=250),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(fields=st.lists(st.tuples(st.text(max_size=60), _VALUES), max_size=40))
def test_whatever_a_vendor_sends_the_customer_is_one_the_event_can_carry(
    fields: list[tuple[str, object]],
) -> None:
    found = read_profile(fields, DEFAULT)
    Customer(
        id="c",
        attributes=found.attributes,
        locale=found.locale,
        timezone=found.timezone,
        phone=found.phone,
    )
    assert len(found.set_aside) <= 21
