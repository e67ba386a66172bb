"""The generated contracts in `contracts/` are what the event models say, and are valid.

- The checked-in files equal what `nps_events.contracts` generates now (run `make contracts`).
- Every JSON Schema is a valid draft 2020-12 schema that accepts real encoded events of its
  type and rejects invalid ones, agreeing with the pydantic models.
- The AsyncAPI document is valid against the official AsyncAPI 3.0.0 JSON Schema, vendored in
  `tests/contract/schemas/` (see the README there for its origin), validated offline.
- Every topic and its dead-letter topic is a channel; the operations are those of the design.
"""

import copy
import difflib
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaValidationError
from pydantic import ValidationError
from referencing import Registry, Resource

from nps_events import (
    EVENT_TYPES,
    ActionResultReported,
    ActionStatus,
    CaseAssigned,
    CaseClosed,
    CaseContactRecorded,
    CaseEscalated,
    CaseOpened,
    CaseReminded,
    CaseReopened,
    CaseResolved,
    CaseResponseAttached,
    Channel,
    ContactOptOut,
    ContactOutcome,
    CreateTicket,
    Customer,
    Event,
    NotifyStaff,
    OptOutScope,
    QuietHours,
    RaiseTicketPriority,
    RequestResurvey,
    ResponseReceived,
    ResponseScored,
    ResurveyRequested,
    Segment,
    SendEmail,
    SendSms,
    StaffReason,
    TicketPriority,
    TicketStatusChanged,
    Topic,
    contracts,
    decode,
    dlq,
    encode,
)
from nps_events.topics import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = ROOT / "contracts"
ASYNCAPI_SCHEMA = Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json"
#: sha256 of the vendored file, as recorded in tests/contract/schemas/README.md.
ASYNCAPI_SCHEMA_SHA256 = "d4571a420e6ffb7fcc7066c95a6db1202f299a3c51daa103d0706bf30f95e626"

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
CE_TYPES = sorted(EVENT_TYPES)


# --- drift ---------------------------------------------------------------------------------


def test_checked_in_contracts_match_the_models() -> None:
    problems = contracts.check_contracts(CONTRACTS_DIR)
    if problems:
        details = "\n".join(problems)
        diff = ""
        for relative, expected in contracts.contract_files().items():
            path = CONTRACTS_DIR / relative
            if path.exists() and path.read_text(encoding="utf-8") != expected:
                diff = "".join(
                    list(
                        difflib.unified_diff(
                            path.read_text(encoding="utf-8").splitlines(keepends=True),
                            expected.splitlines(keepends=True),
                            fromfile=f"{relative} (checked in)",
                            tofile=f"{relative} (from the models)",
                        )
                    )[:60]
                )
                break
        pytest.fail(
            "contracts/ is out of date with the event models; run `make contracts` "
            f"(python -m nps_events.contracts contracts) and commit the result.\n{details}\n{diff}"
        )


def test_generation_is_deterministic() -> None:
    assert contracts.contract_files() == contracts.contract_files()
    for text in contracts.contract_files().values():
        assert text.endswith("}\n")
        assert json.loads(text) is not None


def test_write_then_check_round_trips(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    stale = tmp_path / "schemas" / "io.npsloop.gone.v1.json"
    stale.write_text("{}\n")
    assert contracts.check_contracts(tmp_path)
    contracts.write_contracts(tmp_path)
    assert not stale.exists()
    assert contracts.check_contracts(tmp_path) == []
    assert contracts.write_contracts(tmp_path) == []


# --- JSON Schemas --------------------------------------------------------------------------


def _load_schema(ce_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (CONTRACTS_DIR / contracts.schema_path(ce_type)).read_text("utf-8")
    )
    return schema


def _validator(ce_type: str) -> Draft202012Validator:
    return Draft202012Validator(
        _load_schema(ce_type), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _customer(full: bool) -> Customer:
    if full:
        return Customer(
            id="cus_0042",
            email="ada@example.com",
            phone="+14155550123",
            name="Ada Lovelace",
            locale="fr-CA",
            timezone="America/Toronto",
            attributes={"plan": "enterprise", "region": "emea"},
        )
    return Customer(id="cus_0042")


def _events(full: bool) -> list[Event]:
    """One event of every type, with every optional field set (`full`) or left out."""
    response_id = ResponseReceived.derive_response_id("acme-web", "r-1")
    case_id = uuid.UUID("0b5f3c1e-52a4-4d1e-9a7e-3f1f0c2b9d10")
    action_id = uuid.UUID("6f1d2e3c-4b5a-4c7d-8e9f-0a1b2c3d4e5f")
    comment = "Slow support." if full else None
    received = ResponseReceived(
        response_id=response_id,
        source="acme-web",
        provider_response_id="r-1",
        survey_id="s-1",
        customer=_customer(full),
        score=3,
        comment=comment,
        responded_at=NOW,
        received_at=NOW,
    )
    return [
        received,
        ContactOptOut(
            source="acme-web",
            customer_id="cus_0042",
            scope=OptOutScope.SMS if full else OptOutScope.ALL,
            provider_event_id="u-1",
            occurred_at=NOW,
        ),
        ResponseScored(
            response_id=response_id,
            source="acme-web",
            survey_id="s-1",
            customer=_customer(full),
            score=3,
            segment=Segment.DETRACTOR,
            comment=comment,
            responded_at=NOW,
            scored_at=NOW,
            received_event_id=received.event_id(),
            revision=2 if full else 1,
        ),
        CaseOpened(
            case_id=case_id,
            response_id=response_id,
            customer_id="cus_0042",
            segment=Segment.DETRACTOR,
            score=3,
            opened_at=NOW,
            due_at=NOW,
        ),
        SendEmail(
            action_id=action_id,
            case_id=case_id,
            customer=_customer(full),
            template="detractor_apology",
            locale="fr-CA" if full else "en",
            score=3,
            comment=comment,
            requested_at=NOW,
        ),
        *_case_lifecycle(case_id, full),
        SendSms(
            action_id=action_id,
            case_id=case_id,
            customer=_customer(full),
            template="detractor_acknowledgement",
            locale="fr-CA" if full else "en",
            requested_at=NOW,
            quiet_hours=QuietHours(timezone="America/Toronto", start="21:00", end="08:00")
            if full
            else None,
        ),
        CreateTicket(
            action_id=action_id,
            case_id=case_id,
            customer=_customer(full),
            priority=TicketPriority.HIGH,
            title="Detractor",
            score=3,
            segment=Segment.DETRACTOR,
            comment=comment,
            requested_at=NOW,
        ),
        RaiseTicketPriority(
            action_id=action_id,
            case_id=case_id,
            customer_id="cus_0042",
            ticket_action_id=action_id,
            priority=TicketPriority.URGENT,
            requested_at=NOW,
        ),
        NotifyStaff(
            action_id=action_id,
            case_id=case_id,
            customer_id="cus_0042",
            recipient="lead@example.com",
            role="lead",
            reason=StaffReason.ESCALATION,
            level=1,
            due_at=NOW if full else None,
            segment=Segment.DETRACTOR,
            score=3,
            requested_at=NOW,
        ),
        ActionResultReported(
            action_id=action_id,
            case_id=case_id,
            customer_id="cus_0042",
            channel=Channel.EMAIL,
            status=ActionStatus.FAILED if full else ActionStatus.SENT,
            provider_message_id="<1@mail.example.com>" if full else None,
            reason="mailbox full" if full else None,
            occurred_at=NOW,
        ),
        TicketStatusChanged(
            helpdesk="zendesk",
            helpdesk_event_id="01HN-EXAMPLE",
            action_id=action_id,
            case_id=case_id,
            customer_id="cus_0042",
            ticket_id="35436",
            status="solved",
            previous_status="open" if full else None,
            occurred_at=NOW,
        ),
    ]


def _case_lifecycle(case_id: uuid.UUID, full: bool) -> list[Event]:
    common: dict[str, Any] = {"case_id": case_id, "customer_id": "cus_0042", "at": NOW}

    def entry(kind: str) -> uuid.UUID:
        return uuid.uuid5(case_id, kind)

    return [
        CaseAssigned(entry_id=entry("a"), owner="alex@example.com", by_rule=full, **common),
        CaseContactRecorded(
            entry_id=entry("c"),
            channel="phone",
            outcome=ContactOutcome.REACHED if full else ContactOutcome.NO_ANSWER,
            within_sla=True if full else None,
            **common,
        ),
        CaseReminded(entry_id=entry("m"), due_at=NOW, **common),
        CaseEscalated(entry_id=entry("e"), level=2 if full else 1, due_at=NOW, **common),
        CaseResolved(entry_id=entry("r"), root_cause="pricing_billing", **common),
        CaseClosed(entry_id=entry("x"), **common),
        CaseReopened(entry_id=entry("o"), due_at=NOW if full else None, **common),
        CaseResponseAttached(
            entry_id=entry("t"),
            response_id=case_id,
            previous_score=3,
            score=9,
            segment=Segment.PROMOTER,
            recovered=True,
            resurvey_requested_at=NOW if full else None,
            **common,
        ),
        ResurveyRequested(
            entry_id=entry("s"),
            customer=_customer(full),
            response_id=case_id,
            source="acme-web",
            survey_id="relationship-2026-q4",
            score=3,
            segment=Segment.DETRACTOR,
            closed_at=NOW,
            **common,
        ),
        RequestResurvey(
            action_id=entry("q"),
            case_id=case_id,
            endpoint="survey_tool",
            customer=_customer(full),
            response_id=case_id,
            source="acme-web",
            survey_id="relationship-2026-q4",
            score=3,
            segment=Segment.DETRACTOR,
            closed_at=NOW,
            requested_at=NOW,
            rule="detractor" if full else None,
        ),
    ]


def _encoded_examples() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for full in (True, False):
        for event in _events(full):
            message = encode(event, source="/test", time=NOW)
            yield event.ce_type, "full" if full else "minimal", json.loads(message.value)


ENCODED = list(_encoded_examples())


def test_examples_cover_every_event_type() -> None:
    assert {ce_type for ce_type, _, _ in ENCODED} == set(EVENT_TYPES)
    assert {type(e) for e in contracts.example_events()} == set(EVENT_TYPES.values())


@pytest.mark.parametrize("ce_type", CE_TYPES)
def test_schema_is_a_valid_draft_2020_12_schema(ce_type: str) -> None:
    schema = _load_schema(ce_type)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://npsloop.dev/schemas/{ce_type}.json"
    assert schema["title"] == EVENT_TYPES[ce_type].__name__
    assert schema["x-cloudevents-type"] == ce_type
    assert schema["x-kafka-topic"] == EVENT_TYPES[ce_type].topic.value
    # Consumers must accept fields added later: no schema may forbid unknown properties.
    assert "additionalProperties" not in json.dumps(schema)


@pytest.mark.parametrize(
    ("ce_type", "variant", "payload"),
    ENCODED,
    ids=[f"{ce_type}-{variant}" for ce_type, variant, _ in ENCODED],
)
def test_schema_accepts_real_encoded_events(
    ce_type: str, variant: str, payload: dict[str, Any]
) -> None:
    _validator(ce_type).validate(payload)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = payload
        for name in parents:
            target = target[name]
        target[last] = value

    return mutate


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    def mutate(payload: dict[str, Any]) -> None:
        del payload[name]

    return mutate


#: (ce_type, what is wrong, mutation): each makes a real payload invalid.
INVALID: list[tuple[str, str, Callable[[dict[str, Any]], None]]] = [
    ("io.npsloop.response.received.v1", "score 11", _set("score", 11)),
    ("io.npsloop.response.received.v1", "score -1", _set("score", -1)),
    ("io.npsloop.response.received.v1", "score 9.5", _set("score", 9.5)),
    ("io.npsloop.response.received.v1", "no customer", _drop("customer")),
    ("io.npsloop.response.received.v1", "empty customer id", _set("customer.id", "")),
    ("io.npsloop.response.received.v1", "bad email", _set("customer.email", "ada@")),
    ("io.npsloop.response.received.v1", "two emails", _set("customer.email", "x@y.z,bob")),
    ("io.npsloop.response.received.v1", "NUL in comment", _set("comment", "bad\u0000byte")),
    ("io.npsloop.response.received.v1", "ESC in comment", _set("comment", "a\u001b[31m")),
    ("io.npsloop.response.received.v1", "line break in name", _set("customer.name", "Eve\nBcc")),
    ("io.npsloop.response.received.v1", "NUL in customer id", _set("customer.id", "c\u00001")),
    ("io.npsloop.response.received.v1", "phone not E.164", _set("customer.phone", "555-0123")),
    ("io.npsloop.response.received.v1", "response_id not a UUID", _set("response_id", "r-1")),
    ("io.npsloop.customer.opted-out.v1", "unknown scope", _set("scope", "fax")),
    ("io.npsloop.customer.opted-out.v1", "no customer", _drop("customer_id")),
    (
        "io.npsloop.response.received.v1",
        "attribute key with spaces",
        _set("customer.attributes", {"A B": "x"}),
    ),
    ("io.npsloop.response.scored.v1", "revision 0", _set("revision", 0)),
    ("io.npsloop.response.scored.v1", "score 11", _set("score", 11)),
    ("io.npsloop.response.scored.v1", "unknown segment", _set("segment", "angry")),
    ("io.npsloop.response.scored.v1", "no scored_at", _drop("scored_at")),
    ("io.npsloop.case.opened.v1", "score 11", _set("score", 11)),
    ("io.npsloop.case.opened.v1", "no due_at", _drop("due_at")),
    ("io.npsloop.action.send-email.v1", "score 11", _set("score", 11)),
    ("io.npsloop.action.send-email.v1", "bad template name", _set("template", "Apology!")),
    ("io.npsloop.action.send-email.v1", "bad locale", _set("locale", "english")),
    ("io.npsloop.action.send-sms.v1", "bad template name", _set("template", "Hi!")),
    ("io.npsloop.action.create-ticket.v1", "unknown priority", _set("priority", "meh")),
    ("io.npsloop.action.create-ticket.v1", "empty title", _set("title", "")),
    ("io.npsloop.action.raise-ticket-priority.v1", "no ticket", _drop("ticket_action_id")),
    ("io.npsloop.action.notify-staff.v1", "level 3", _set("level", 3)),
    ("io.npsloop.action.notify-staff.v1", "unknown reason", _set("reason", "bored")),
    ("io.npsloop.case.assigned.v1", "empty owner", _set("owner", "")),
    (
        "io.npsloop.case.assigned.v1",
        "two owners",
        _set("owner", "ok@team.example, outsider@example.org"),
    ),
    (
        "io.npsloop.action.notify-staff.v1",
        "two recipients",
        _set("recipient", "ok@team.example, outsider@example.org"),
    ),
    ("io.npsloop.action.notify-staff.v1", "a handle", _set("recipient", "@sam")),
    ("io.npsloop.case.contact-recorded.v1", "unknown outcome", _set("outcome", "maybe")),
    ("io.npsloop.case.reminded.v1", "no due_at", _drop("due_at")),
    ("io.npsloop.case.escalated.v1", "level 0", _set("level", 0)),
    ("io.npsloop.case.resolved.v1", "no root cause", _drop("root_cause")),
    ("io.npsloop.case.closed.v1", "no entry id", _drop("entry_id")),
    ("io.npsloop.case.reopened.v1", "no time", _drop("at")),
    ("io.npsloop.case.response-attached.v1", "score 11", _set("score", 11)),
    ("io.npsloop.case.resurvey-requested.v1", "no customer", _drop("customer")),
    ("io.npsloop.action.request-resurvey.v1", "no endpoint", _drop("endpoint")),
    (
        "io.npsloop.action.request-resurvey.v1",
        "endpoint with a slash",
        _set("endpoint", "../admin"),
    ),
    ("io.npsloop.action.result.v1", "unknown status", _set("status", "lost")),
    ("io.npsloop.action.result.v1", "unknown channel", _set("channel", "pigeon")),
    ("io.npsloop.action.result.v1", "no action_id", _drop("action_id")),
    ("io.npsloop.ticket.status-changed.v1", "empty status", _set("status", "")),
    ("io.npsloop.action.send-sms.v1", "quiet hour 25:00", _set("quiet_hours.start", "25:00")),
    ("io.npsloop.ticket.status-changed.v1", "no ticket_id", _drop("ticket_id")),
]


def test_invalid_cases_cover_every_event_type() -> None:
    assert {ce_type for ce_type, _, _ in INVALID} == set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("ce_type", "mutation"),
    [(ce_type, mutate) for ce_type, _, mutate in INVALID],
    ids=[f"{ce_type}-{what}" for ce_type, what, _ in INVALID],
)
def test_schema_rejects_invalid_events_as_the_model_does(
    ce_type: str, mutation: Callable[[dict[str, Any]], None]
) -> None:
    payload = copy.deepcopy(next(p for t, v, p in ENCODED if t == ce_type and v == "full"))
    mutation(payload)
    with pytest.raises(SchemaValidationError):
        _validator(ce_type).validate(payload)
    with pytest.raises(ValidationError):
        EVENT_TYPES[ce_type].model_validate_json(json.dumps(payload))


# --- AsyncAPI ------------------------------------------------------------------------------


def _asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (CONTRACTS_DIR / contracts.ASYNCAPI_FILE).read_text("utf-8")
    )
    return document


def _asyncapi_validator() -> Draft7Validator:
    """A validator of AsyncAPI 3.0.0 documents that never touches the network.

    Every $ref of the bundled schema is to a definition embedded in it (found by its $id) or to
    the draft-07 meta-schema, which jsonschema ships; a `Registry()` retrieves nothing else.
    """
    schema = json.loads(ASYNCAPI_SCHEMA.read_text("utf-8"))
    registry: Registry[Any] = Registry().with_resource(
        schema["$id"], Resource.from_contents(schema)
    )
    return Draft7Validator(schema, registry=registry)


def test_vendored_asyncapi_schema_is_the_recorded_one() -> None:
    digest = hashlib.sha256(ASYNCAPI_SCHEMA.read_bytes()).hexdigest()
    assert digest == ASYNCAPI_SCHEMA_SHA256, "update tests/contract/schemas/README.md as well"


def test_asyncapi_document_is_valid_asyncapi_3_0_0() -> None:
    document = _asyncapi()
    assert document["asyncapi"] == "3.0.0"
    errors = sorted(
        _asyncapi_validator().iter_errors(document), key=lambda e: list(e.absolute_path)
    )
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10]
    )


def test_asyncapi_validation_is_not_vacuous() -> None:
    validator = _asyncapi_validator()
    broken = _asyncapi()
    broken["operations"]["ingestSendResponses"]["action"] = "publish"  # AsyncAPI 2 wording
    assert not validator.is_valid(broken)
    broken = _asyncapi()
    broken["channels"]["nps.responses.v1"]["bindings"]["kafka"]["partitions"] = 0
    assert not validator.is_valid(broken)


def _walk_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _walk_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"non-local $ref {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_ref_in_the_asyncapi_document_resolves() -> None:
    document = _asyncapi()
    for ref in _walk_refs(document):
        _resolve(document, ref)


def test_every_topic_and_its_dlq_is_a_channel() -> None:
    channels = _asyncapi()["channels"]
    addresses = {channel["address"] for channel in channels.values()}
    for topic in Topic:
        assert topic.value in addresses
        assert dlq(topic.value) in addresses
        assert channels[topic.value]["bindings"]["kafka"]["topic"] == topic.value
        dead = channels[dlq(topic.value)]["messages"]
        assert list(dead) == ["DeadLetter"]
    assert addresses == set(ALL_TOPICS)


def test_every_event_type_is_a_message_on_its_topic() -> None:
    document = _asyncapi()
    for ce_type, model in EVENT_TYPES.items():
        channel = document["channels"][model.topic.value]
        message = _resolve(document, channel["messages"][model.__name__]["$ref"])
        assert message["x-cloudevents-type"] == ce_type
        assert message["headers"]["properties"]["ce_type"]["const"] == ce_type
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        assert message["payload"] == {"$ref": f"#/components/schemas/{model.__name__}"}


def test_dead_letter_message_has_the_dlq_headers() -> None:
    message = _asyncapi()["components"]["messages"]["DeadLetter"]
    assert message["headers"]["required"] == [
        "dlq_reason",
        "dlq_topic",
        "dlq_partition",
        "dlq_offset",
        "dlq_group",
        "dlq_at",
    ]


def test_operations_are_those_of_the_design() -> None:
    document = _asyncapi()
    operations = {
        (
            op["x-npsloop-service"],
            op["action"],
            _resolve(document, op["channel"]["$ref"])["address"],
        )
        for op in document["operations"].values()
    }
    r, s, c, a, ar = (t.value for t in Topic)
    assert operations == {
        ("ingest", "send", r),
        ("scoring", "receive", r),
        ("scoring", "send", s),
        ("scoring", "send", dlq(r)),
        ("followup", "receive", r),
        ("followup", "receive", s),
        ("followup", "receive", ar),
        ("followup", "send", dlq(r)),
        ("followup", "send", c),
        ("followup", "send", a),
        ("followup", "send", dlq(s)),
        ("followup", "send", dlq(ar)),
        ("notify", "receive", a),
        ("notify", "send", ar),
        ("notify", "send", dlq(a)),
        ("notify", "send", r),  # opt-outs of customers who unsubscribed (Twilio's 21610)
    }
    for op in document["operations"].values():
        channel = op["channel"]["$ref"]
        for message in op["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/")
            _resolve(document, message["$ref"])


def test_message_examples_are_real_events_valid_against_the_schemas() -> None:
    document = _asyncapi()
    for name, message in document["components"]["messages"].items():
        if name == "DeadLetter":
            continue
        ce_type = message["x-cloudevents-type"]
        inline = Draft7Validator(
            {"$ref": f"#/components/schemas/{name}", "components": document["components"]},
            format_checker=Draft7Validator.FORMAT_CHECKER,
        )
        headers = Draft7Validator(message["headers"], format_checker=Draft7Validator.FORMAT_CHECKER)
        assert message["examples"]
        for example in message["examples"]:
            headers.validate(example["headers"])
            _validator(ce_type).validate(example["payload"])
            inline.validate(example["payload"])
            event = decode(
                [(k, v.encode()) for k, v in example["headers"].items()],
                json.dumps(example["payload"]).encode(),
            )
            assert event.type == ce_type
            assert event.id == str(event.data.event_id())


def test_encoded_events_match_the_message_headers_and_inline_schemas() -> None:
    document = _asyncapi()
    for full in (True, False):
        for event in _events(full):
            message = document["components"]["messages"][type(event).__name__]
            encoded = encode(event, source="/test", time=NOW)
            Draft7Validator(message["headers"]).validate(
                {k: v.decode() for k, v in encoded.headers}
            )
            Draft7Validator(message["bindings"]["kafka"]["key"]).validate(encoded.key.decode())
            Draft7Validator(
                {"$ref": f"#/components/schemas/{type(event).__name__}", **document}
            ).validate(json.loads(encoded.value))
