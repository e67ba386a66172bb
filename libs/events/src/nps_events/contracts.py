"""Generated contracts for downstream teams: a JSON Schema per event type and an AsyncAPI document.

`python -m nps_events.contracts contracts` (what `make contracts` runs) writes:

- `contracts/schemas/<ce_type>.json`: a JSON Schema (draft 2020-12) of the event's data, the
  Kafka message value. It is pydantic's *serialization* schema, because consumers read the
  JSON the producers serialised with `model_dump_json()`, not input that pydantic parses.
  (For these models both modes give the same schema today; serialization stays right if a
  model ever gets a custom serializer or a computed field.)
- `contracts/asyncapi.json`: an AsyncAPI 3.0.0 document of the whole system: every topic and
  its dead-letter topic as a channel, its messages with their CloudEvents headers and Kafka
  key, and the operations each service performs. It is self-contained: payloads are inlined
  under `components/schemas` (in AsyncAPI's default schema format, a superset of JSON Schema
  draft-07, which the pydantic schemas fit) rather than `$ref`s to the files above, so that
  AsyncAPI tooling needs no file resolution; both are generated from the same models.

Why JSON and not YAML: AsyncAPI documents may be JSON, and this package keeps its runtime
dependencies to what the models need (PyYAML would be a runtime dependency of every consumer
of `nps_events` for the sake of a build step). JSON is also valid YAML 1.2, so YAML-only
tools read it as it is.

Everything but `write_contracts` and `main` is pure: the builders return dicts, `render`
turns one into text. Output is deterministic (sorted keys, two-space indent, trailing
newline), so a diff of `contracts/` is a diff of the contract, and the contract test fails
when the checked-in files drift from the models.
"""

import argparse
import json
import re
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from nps_events.envelope import CONTENT_TYPE, SPEC_VERSION, encode
from nps_events.ids import derive_id
from nps_events.models import (
    EVENT_TYPES,
    ActionResultReported,
    ActionStatus,
    Actor,
    ActorKind,
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
    Transition,
)
from nps_events.topics import Topic, dlq

JSONObject = dict[str, Any]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_URL = "https://npsloop.dev/schemas/"
ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"

#: Version of the AsyncAPI document. Bump the minor version when adding an optional field;
#: anything else is a new topic version (`.v2`), and a new major version here.
API_VERSION = "1.9.0"

SCHEMAS_DIR = "schemas"
ASYNCAPI_FILE = "asyncapi.json"

#: The service that publishes each topic.
PRODUCERS: dict[Topic, str] = {
    Topic.RESPONSES: "ingest",
    Topic.SCORED: "scoring",
    Topic.CASES: "followup",
    Topic.ACTIONS: "followup",
    Topic.ACTION_RESULTS: "notify",
}

#: Event types that another service publishes too, onto their topic: notify's opt-out of a
#: customer who unsubscribed from a channel (Twilio's error 21610).
ALSO_PUBLISHED_BY: dict[type[Event], tuple[str, ...]] = {ContactOptOut: ("notify",)}

#: The services that consume each topic (and dead-letter what they cannot process).
CONSUMERS: dict[Topic, tuple[str, ...]] = {
    Topic.RESPONSES: ("scoring", "followup"),
    Topic.SCORED: ("followup",),
    Topic.CASES: (),
    Topic.ACTIONS: ("notify",),
    Topic.ACTION_RESULTS: ("followup",),
}

#: `ce_source` of each service's events; ingest's names the upstream source as well.
SOURCES: dict[str, str] = {
    "ingest": "/ingest/sources/{source}",
    "scoring": "/scoring",
    "followup": "/followup",
    "notify": "/notify",
}

SERVICE_DESCRIPTIONS: dict[str, str] = {
    "ingest": "Receives survey responses from upstream products and publishes them.",
    "scoring": "Segments each response into promoter, passive or detractor.",
    "followup": (
        "Applies the follow-up policy: opens cases with deadlines, plans and schedules actions, "
        "escalates on breach, and publishes each case's lifecycle."
    ),
    "notify": "Dispatches actions (email, SMS, helpdesk tickets, staff notices and signed "
    "outbound webhooks) and reports their outcome.",
}

DLQ_HEADERS: dict[str, JSONObject] = {
    "dlq_reason": {
        "type": "string",
        "maxLength": 4000,
        "description": (
            "Why the message was dead-lettered: `undecodable: <what is wrong>` (not a valid "
            "npsloop event), `unexpected event type ...`, a handler's rejection, or "
            "`gave up after <n> attempts: <error>`."
        ),
    },
    "dlq_topic": {"type": "string", "description": "The topic the message was consumed from."},
    "dlq_partition": {
        "type": "string",
        "pattern": "^[0-9]+$",
        "description": "Its partition there, in decimal.",
    },
    "dlq_offset": {
        "type": "string",
        "pattern": "^[0-9]+$",
        "description": "Its offset there, in decimal.",
    },
    "dlq_group": {"type": "string", "description": "The consumer group that gave up on it."},
    "dlq_at": {
        "type": "string",
        "format": "date-time",
        "description": "When it was dead-lettered (RFC 3339, UTC).",
    },
}


# --- JSON Schemas -------------------------------------------------------------------------


def schema_id(ce_type: str) -> str:
    """The `$id` of the JSON Schema of `ce_type`: an identifier, not necessarily a location."""
    return f"{SCHEMA_BASE_URL}{ce_type}.json"


def schema_path(ce_type: str) -> str:
    """Where the JSON Schema of `ce_type` lives, relative to the contracts directory."""
    return f"{SCHEMAS_DIR}/{ce_type}.json"


def event_json_schema(model: type[Event]) -> JSONObject:
    """The JSON Schema (draft 2020-12) of the data of `model`'s events: the Kafka value."""
    schema = model.model_json_schema(mode="serialization")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id(model.ce_type),
        **schema,
        "title": model.__name__,
        "x-cloudevents-type": model.ce_type,
        "x-kafka-topic": model.topic.value,
    }


def json_schemas() -> dict[str, JSONObject]:
    """Every event type's JSON Schema, by `ce_type`."""
    return {ce_type: event_json_schema(model) for ce_type, model in EVENT_TYPES.items()}


# --- Examples -------------------------------------------------------------------------------

EXAMPLE_TIME = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
_EXAMPLE_SOURCE = "acme-web"
_EXAMPLE_CUSTOMER = Customer(id="cus_0042", email="ada@example.com", name="Ada Lovelace")
_EXAMPLE_RESPONSE_ID = ResponseReceived.derive_response_id(_EXAMPLE_SOURCE, "r-1001")
_EXAMPLE_CASE_ID = derive_id("example", "case", str(_EXAMPLE_RESPONSE_ID))
_EXAMPLE_ACTION_ID = derive_id("example", "action", str(_EXAMPLE_CASE_ID))
_TICKET_ACTION_ID = derive_id("example", "ticket", str(_EXAMPLE_CASE_ID))
_EXAMPLE_DUE = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def _entry(kind: str) -> uuid.UUID:
    return derive_id("example", "entry", kind, str(_EXAMPLE_CASE_ID))


def example_events() -> list[Event]:
    """One example of every event type: a detractor's response followed through the system."""
    received = ResponseReceived(
        response_id=_EXAMPLE_RESPONSE_ID,
        source=_EXAMPLE_SOURCE,
        provider_response_id="r-1001",
        survey_id="relationship-2026-q4",
        customer=_EXAMPLE_CUSTOMER,
        score=3,
        comment="Support took a week to answer.",
        responded_at=EXAMPLE_TIME,
        received_at=EXAMPLE_TIME,
    )
    return [
        received,
        ContactOptOut(
            source=_EXAMPLE_SOURCE,
            customer_id=_EXAMPLE_CUSTOMER.id,
            scope=OptOutScope.EMAIL,
            provider_event_id="unsub-77",
            occurred_at=EXAMPLE_TIME,
        ),
        ResponseScored(
            response_id=_EXAMPLE_RESPONSE_ID,
            source=_EXAMPLE_SOURCE,
            survey_id="relationship-2026-q4",
            customer=_EXAMPLE_CUSTOMER,
            score=3,
            segment=Segment.DETRACTOR,
            comment="Support took a week to answer.",
            responded_at=EXAMPLE_TIME,
            scored_at=EXAMPLE_TIME,
            received_event_id=received.event_id(),
            previous_score=9,
            previous_segment=Segment.PROMOTER,
            transition=Transition.CHURN_RISK,
            themes=["support"],
        ),
        CaseOpened(
            case_id=_EXAMPLE_CASE_ID,
            response_id=_EXAMPLE_RESPONSE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            segment=Segment.DETRACTOR,
            score=3,
            opened_at=EXAMPLE_TIME,
            due_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
            actor=Actor.system("detractor"),
        ),
        SendEmail(
            action_id=_EXAMPLE_ACTION_ID,
            case_id=_EXAMPLE_CASE_ID,
            customer=_EXAMPLE_CUSTOMER,
            template="detractor_apology",
            score=3,
            comment="Support took a week to answer.",
            requested_at=EXAMPLE_TIME,
        ),
        CaseAssigned(
            entry_id=_entry("assigned"),
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            at=EXAMPLE_TIME,
            owner="alex@example.com",
            by_rule=True,
            actor=Actor.system("detractor"),
        ),
        CreateTicket(
            action_id=_TICKET_ACTION_ID,
            case_id=_EXAMPLE_CASE_ID,
            customer=_EXAMPLE_CUSTOMER,
            priority=TicketPriority.HIGH,
            title="Detractor (3/10): follow up within 2 business days",
            score=3,
            segment=Segment.DETRACTOR,
            comment="Support took a week to answer.",
            requested_at=EXAMPLE_TIME,
        ),
        SendSms(
            action_id=derive_id("example", "sms", str(_EXAMPLE_CASE_ID)),
            case_id=_EXAMPLE_CASE_ID,
            customer=_EXAMPLE_CUSTOMER,
            template="detractor_acknowledgement",
            requested_at=EXAMPLE_TIME,
            quiet_hours=QuietHours(timezone="Europe/Paris", start="21:00", end="08:00"),
        ),
        CaseReminded(
            entry_id=_entry("reminded"),
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            at=EXAMPLE_TIME,
            due_at=_EXAMPLE_DUE,
        ),
        NotifyStaff(
            action_id=derive_id("example", "staff", str(_EXAMPLE_CASE_ID)),
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            recipient="cs-lead@example.com",
            role="lead",
            reason=StaffReason.ESCALATION,
            level=1,
            due_at=_EXAMPLE_DUE,
            segment=Segment.DETRACTOR,
            score=3,
            requested_at=EXAMPLE_TIME,
        ),
        CaseEscalated(
            entry_id=_entry("escalated"),
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            at=_EXAMPLE_DUE,
            level=1,
            due_at=_EXAMPLE_DUE,
        ),
        RaiseTicketPriority(
            action_id=derive_id("example", "raise", str(_EXAMPLE_CASE_ID)),
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            ticket_action_id=_TICKET_ACTION_ID,
            priority=TicketPriority.URGENT,
            requested_at=_EXAMPLE_DUE,
        ),
        CaseContactRecorded(
            entry_id=_entry("contact"),
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            at=_EXAMPLE_DUE,
            channel="phone",
            outcome=ContactOutcome.REACHED,
            actor=Actor(
                kind=ActorKind.PERSON,
                id="46237bf2-5fb7-5c2e-aa3e-4c498b7c2cdd",
                name="alex@example.com",
            ),
            within_sla=False,
        ),
        CaseResolved(
            entry_id=_entry("resolved"),
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            at=_EXAMPLE_DUE,
            root_cause="support_experience",
        ),
        CaseClosed(
            entry_id=_entry("closed"),
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            at=_EXAMPLE_DUE,
        ),
        CaseReopened(
            entry_id=_entry("reopened"),
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            at=_EXAMPLE_DUE,
            due_at=_EXAMPLE_DUE + timedelta(days=2),
        ),
        CaseResponseAttached(
            entry_id=_entry("attached"),
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            at=_EXAMPLE_DUE,
            response_id=ResponseReceived.derive_response_id(_EXAMPLE_SOURCE, "r-2002"),
            previous_score=3,
            score=9,
            segment=Segment.PROMOTER,
            recovered=True,
        ),
        ResurveyRequested(
            entry_id=_entry("resurvey-requested"),
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            at=_EXAMPLE_DUE + timedelta(days=31),
            actor=Actor.system("detractor"),
            customer=_EXAMPLE_CUSTOMER,
            response_id=_EXAMPLE_RESPONSE_ID,
            source=_EXAMPLE_SOURCE,
            survey_id="relationship-2026-q4",
            score=3,
            segment=Segment.DETRACTOR,
            closed_at=_EXAMPLE_DUE + timedelta(days=1),
        ),
        RequestResurvey(
            action_id=derive_id("example", "request-resurvey", str(_EXAMPLE_CASE_ID)),
            case_id=_EXAMPLE_CASE_ID,
            endpoint="survey_tool",
            customer=_EXAMPLE_CUSTOMER,
            response_id=_EXAMPLE_RESPONSE_ID,
            source=_EXAMPLE_SOURCE,
            survey_id="relationship-2026-q4",
            score=3,
            segment=Segment.DETRACTOR,
            closed_at=_EXAMPLE_DUE + timedelta(days=1),
            requested_at=_EXAMPLE_DUE + timedelta(days=31),
            rule="detractor",
        ),
        ActionResultReported(
            action_id=_EXAMPLE_ACTION_ID,
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            channel=Channel.EMAIL,
            status=ActionStatus.SENT,
            provider_message_id="<20261124100000.1@mail.example.com>",
            occurred_at=EXAMPLE_TIME,
        ),
        TicketStatusChanged(
            helpdesk="zendesk",
            helpdesk_event_id="01HNXXXX-EXAMPLE",
            action_id=_EXAMPLE_ACTION_ID,
            case_id=_EXAMPLE_CASE_ID,
            customer_id=_EXAMPLE_CUSTOMER.id,
            ticket_id="35436",
            status="solved",
            previous_status="open",
            occurred_at=EXAMPLE_TIME,
        ),
    ]


def example_source(event: Event) -> str:
    """The `ce_source` the producer of `event` uses."""
    template = SOURCES[_producer(event.topic)]
    return template.format(source=getattr(event, "source", "unknown"))


def _message_example(event: Event) -> JSONObject:
    message = encode(event, source=example_source(event), time=EXAMPLE_TIME)
    return {
        "name": f"{_camel(type(event).__name__)}Example",
        "summary": f"Kafka key `{message.key.decode()}`.",
        "headers": {name: value.decode() for name, value in message.headers},
        "payload": json.loads(message.value),
    }


# --- AsyncAPI ------------------------------------------------------------------------------


def _producer(topic: Topic) -> str:
    try:
        return PRODUCERS[topic]
    except KeyError:
        raise LookupError(f"topic {topic.value} has no producer in nps_events.contracts") from None


def _publishers(model: type[Event]) -> str:
    """Who publishes `model`, in words: its topic's producer and any other."""
    return " and ".join((_producer(model.topic), *ALSO_PUBLISHED_BY.get(model, ())))


def _sources(model: type[Event]) -> str:
    return ", ".join(
        f"`{SOURCES[service]}` ({service})"
        for service in (_producer(model.topic), *ALSO_PUBLISHED_BY.get(model, ()))
    )


def _consumers(topic: Topic) -> tuple[str, ...]:
    try:
        return CONSUMERS[topic]
    except KeyError:
        raise LookupError(f"topic {topic.value} has no consumers in nps_events.contracts") from None


def _models_on(topic: Topic) -> list[type[Event]]:
    return [model for model in EVENT_TYPES.values() if model.topic == topic]


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _pascal(topic: Topic) -> str:
    return "".join(part.capitalize() for part in topic.name.split("_"))


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _words(name: str) -> str:
    words = re.findall(r"[A-Z][a-z0-9]*", name)
    return " ".join([words[0], *(w.lower() for w in words[1:])])


def _docstring(model: type[Event]) -> tuple[str, str]:
    """The summary line and the rest of `model`'s docstring."""
    lines = (model.__doc__ or "").strip().splitlines()
    summary = lines[0].strip() if lines else model.__name__
    rest = " ".join(line.strip() for line in lines[1:] if line.strip())
    return summary, rest


def _key_schema() -> JSONObject:
    return {
        "type": "string",
        "minLength": 1,
        "description": (
            "The customer's id (`customer.id` or `customer_id` in the data), UTF-8. All of a "
            "customer's events share it, so they stay in order on one partition."
        ),
    }


def _cloudevents_headers(model: type[Event], example: Event) -> JSONObject:
    subject = _UUID.sub("<uuid>", example.subject())
    return {
        "type": "object",
        "description": (
            "CloudEvents 1.0 attributes in Kafka binary mode: one UTF-8 header each. "
            "Consumers must ignore headers they do not know."
        ),
        "required": [
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_subject",
            "content-type",
        ],
        "properties": {
            "ce_specversion": {"type": "string", "const": SPEC_VERSION},
            "ce_id": {
                "type": "string",
                "format": "uuid",
                "description": (
                    "The event's id, deterministic: a redelivered or re-published event keeps "
                    "it. Delivery is at least once: de-duplicate on it."
                ),
            },
            "ce_source": {
                "type": "string",
                "format": "uri-reference",
                "description": f"Who produced the event: {_sources(model)}.",
            },
            "ce_type": {"type": "string", "const": model.ce_type},
            "ce_time": {
                "type": "string",
                "format": "date-time",
                "description": "When the event was produced (RFC 3339).",
            },
            "ce_subject": {
                "type": "string",
                "description": f"The entity the event is about: `{subject}`.",
            },
            "content-type": {"type": "string", "const": CONTENT_TYPE},
        },
    }


def _event_message(model: type[Event], example: Event) -> JSONObject:
    summary, rest = _docstring(model)
    description = (
        f"CloudEvents type `{model.ce_type}` on `{model.topic.value}`, published by "
        f"{_publishers(model)}. JSON Schema: `{schema_path(model.ce_type)}` "
        f"(`$id` {schema_id(model.ce_type)})."
    )
    return {
        "name": model.__name__,
        "title": _words(model.__name__),
        "summary": summary,
        "description": f"{rest}\n\n{description}" if rest else description,
        "contentType": CONTENT_TYPE,
        "headers": _cloudevents_headers(model, example),
        "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
        "bindings": {"kafka": {"key": _key_schema(), "bindingVersion": KAFKA_BINDING_VERSION}},
        "examples": [_message_example(example)],
        "x-cloudevents-type": model.ce_type,
    }


def _dead_letter_message() -> JSONObject:
    return {
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "A message a consumer could not process, as it was, plus why.",
        "description": (
            "The original key, value and headers, byte for byte (earlier `dlq_*` headers are "
            "replaced), plus the `dlq_*` headers. The value is usually the JSON data of an "
            "event of the original topic, but need not be valid: that may be why it is here."
        ),
        "headers": {
            "type": "object",
            "description": (
                "The original headers (normally the CloudEvents `ce_*` headers and "
                "`content-type`, but a broken message may lack them) plus these."
            ),
            "required": list(DLQ_HEADERS),
            "properties": DLQ_HEADERS,
        },
        "payload": {"description": "The original message value, unchanged; may be empty."},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": "The original key (the customer's id), or empty if none.",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _channels() -> JSONObject:
    channels: JSONObject = {}
    for topic in Topic:
        models = _models_on(topic)
        consumers = _consumers(topic)
        read_by = ", ".join(consumers) if consumers else "no npsloop service (downstream teams)"
        also = "".join(
            f" ({model.__name__} also by {', '.join(ALSO_PUBLISHED_BY[model])})"
            for model in models
            if model in ALSO_PUBLISHED_BY
        )
        channels[topic.value] = {
            "address": topic.value,
            "title": topic.value,
            "description": (
                f"Published by {_producer(topic)}{also}; consumed by {read_by}. Key: the "
                "customer's id, so one customer's events are in order on one partition."
            ),
            "messages": {
                model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}
                for model in models
            },
            "bindings": {"kafka": {"topic": topic.value, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        writers = (
            f"Written by {', '.join(consumers)} when it cannot process a message of "
            f"`{topic.value}`."
            if consumers
            else f"No npsloop service consumes `{topic.value}`, so none writes here; "
            "downstream consumers may follow the same convention."
        )
        channels[dlq(topic.value)] = {
            "address": dlq(topic.value),
            "title": dlq(topic.value),
            "description": f"Dead-letter topic of `{topic.value}`. {writers}",
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            "bindings": {
                "kafka": {"topic": dlq(topic.value), "bindingVersion": KAFKA_BINDING_VERSION}
            },
        }
    return channels


def _operation(service: str, action: str, channel: str, messages: list[str]) -> JSONObject:
    verb = "publishes to" if action == "send" else "consumes"
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in messages],
        "title": f"{service} {verb} {channel}",
        "tags": [{"name": service}],
        "x-npsloop-service": service,
    }


def _operations() -> JSONObject:
    operations: JSONObject = {}
    for topic in Topic:
        names = [model.__name__ for model in _models_on(topic)]
        producer = _producer(topic)
        operations[f"{producer}Send{_pascal(topic)}"] = _operation(
            producer, "send", topic.value, names
        )
        for model in _models_on(topic):
            for service in ALSO_PUBLISHED_BY.get(model, ()):
                operations[f"{service}Send{_pascal(topic)}"] = _operation(
                    service, "send", topic.value, [model.__name__]
                )
        for consumer in _consumers(topic):
            operations[f"{consumer}Receive{_pascal(topic)}"] = _operation(
                consumer, "receive", topic.value, names
            )
            operations[f"{consumer}Send{_pascal(topic)}Dlq"] = _operation(
                consumer, "send", dlq(topic.value), ["DeadLetter"]
            )
    return operations


def _component_schemas() -> JSONObject:
    _, top = models_json_schema(
        [(model, "serialization") for model in EVENT_TYPES.values()],
        ref_template="#/components/schemas/{model}",
    )
    schemas: JSONObject = top["$defs"]
    for model in EVENT_TYPES.values():
        schemas[model.__name__]["x-cloudevents-type"] = model.ce_type
    return schemas


def asyncapi_document() -> JSONObject:
    """The AsyncAPI 3.0.0 document of every topic, message and service operation."""
    examples = {type(event): event for event in example_events()}
    missing = [model.__name__ for model in EVENT_TYPES.values() if model not in examples]
    if missing:
        raise LookupError(f"no example in nps_events.contracts for {', '.join(missing)}")
    messages: JSONObject = {
        model.__name__: _event_message(model, examples[model]) for model in EVENT_TYPES.values()
    }
    messages["DeadLetter"] = _dead_letter_message()
    services = sorted({*PRODUCERS.values(), *(c for cs in CONSUMERS.values() for c in cs)})
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:npsloop:events",
        "info": {
            "title": "npsloop events",
            "version": API_VERSION,
            "description": (
                "The events npsloop's four services exchange on Kafka: NPS survey responses, "
                "their scores, follow-up cases and the actions taken. This document describes "
                "the whole system; each operation is tagged with the service that performs "
                "it.\n\n"
                "- Every message is a CloudEvents 1.0 event in Kafka binary mode: `ce_*` "
                "headers, JSON data as the value.\n"
                "- The key is the customer's id: one customer's events are in order on one "
                "partition.\n"
                "- Delivery is at least once and event ids are deterministic: de-duplicate on "
                "`ce_id`.\n"
                "- Every topic `<topic>` has a dead-letter topic `<topic>.dlq`.\n"
                "- Ignore fields and headers you do not know: adding an optional field is a "
                "minor change; anything else is a new topic version (`.v2`).\n\n"
                "See docs/events.md."
            ),
            "license": {"name": "Apache-2.0"},
            "tags": [{"name": s, "description": SERVICE_DESCRIPTIONS[s]} for s in services],
        },
        "servers": {
            "local": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": (
                    "The development broker of `make run` / `make up`; other environments' "
                    "brokers are configured per deployment."
                ),
            }
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": _channels(),
        "operations": _operations(),
        "components": {"schemas": _component_schemas(), "messages": messages},
    }


# --- Files ---------------------------------------------------------------------------------


def render(document: JSONObject) -> str:
    """`document` as deterministic JSON text: sorted keys, two-space indent, final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def contract_files() -> dict[str, str]:
    """Every generated file's text, by path relative to the contracts directory."""
    files = {schema_path(ce_type): render(schema) for ce_type, schema in json_schemas().items()}
    files[ASYNCAPI_FILE] = render(asyncapi_document())
    return dict(sorted(files.items()))


def stale_files(out_dir: Path) -> list[Path]:
    """Schema files in `out_dir` that the models no longer generate (e.g. a removed type)."""
    expected = set(contract_files())
    return sorted(
        path
        for path in (out_dir / SCHEMAS_DIR).glob("*.json")
        if path.relative_to(out_dir).as_posix() not in expected
    )


def write_contracts(out_dir: Path) -> list[Path]:
    """Write the contracts into `out_dir`, remove stale schemas; return the files changed."""
    changed: list[Path] = []
    for relative, text in contract_files().items():
        path = out_dir / relative
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(path)
    for path in stale_files(out_dir):
        path.unlink()
        changed.append(path)
    return changed


def check_contracts(out_dir: Path) -> list[str]:
    """What differs between `out_dir` and what the models generate; empty if up to date."""
    problems: list[str] = []
    for relative, text in contract_files().items():
        path = out_dir / relative
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from the models")
    problems.extend(f"{path}: no longer generated" for path in stale_files(out_dir))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nps_events.contracts",
        description="Generate JSON Schemas and the AsyncAPI document from the event models.",
    )
    parser.add_argument("out_dir", nargs="?", default="contracts", type=Path)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files are out of date"
    )
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir
    if args.check:
        problems = check_contracts(out_dir)
        for problem in problems:
            print(problem, file=sys.stderr)  # noqa: T201
        if problems:
            print("run `make contracts` to regenerate", file=sys.stderr)  # noqa: T201
        return 1 if problems else 0
    changed = write_contracts(out_dir)
    for path in changed:
        print(f"wrote {path}" if path.exists() else f"removed {path}")  # noqa: T201
    print(f"{len(changed)} file(s) changed in {out_dir}")  # noqa: T201
    return 0


__all__ = [
    "ALSO_PUBLISHED_BY",
    "API_VERSION",
    "CONSUMERS",
    "PRODUCERS",
    "asyncapi_document",
    "check_contracts",
    "contract_files",
    "event_json_schema",
    "example_events",
    "json_schemas",
    "main",
    "render",
    "schema_id",
    "schema_path",
    "write_contracts",
]

if __name__ == "__main__":
    raise SystemExit(main())
