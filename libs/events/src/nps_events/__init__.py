"""npsloop's published language: the events its services exchange on Kafka.

This package is the contract with downstream teams. It depends on pydantic only and does
no I/O; `contracts/` is generated from it (see `nps_events.contracts`).
"""

from nps_events.envelope import CloudEvent, EnvelopeError, decode, encode
from nps_events.models import (
    EVENT_TYPES,
    ActionResultReported,
    ActionStatus,
    CaseOpened,
    Channel,
    ContactOptOut,
    Customer,
    Event,
    OptOutScope,
    ResponseReceived,
    ResponseScored,
    Segment,
    SendEmail,
    Transition,
)
from nps_events.topics import Topic, dlq

__all__ = [
    "EVENT_TYPES",
    "ActionResultReported",
    "ActionStatus",
    "CaseOpened",
    "Channel",
    "CloudEvent",
    "ContactOptOut",
    "Customer",
    "EnvelopeError",
    "Event",
    "OptOutScope",
    "ResponseReceived",
    "ResponseScored",
    "Segment",
    "SendEmail",
    "Topic",
    "Transition",
    "decode",
    "dlq",
    "encode",
]
