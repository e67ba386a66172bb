import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class DispatchState(StrEnum):
    """A dispatch ledger entry. `sending` is written and committed before the provider call."""

    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Decision(StrEnum):
    SEND = "send"
    ALREADY_DONE = "already_done"
    REPORT_UNKNOWN = "report_unknown"


def decide(previous: DispatchState | None) -> Decision:
    """What to do with an action, given what the ledger already says about it.

    - Never seen: send it.
    - `sending`: an earlier attempt was interrupted between our record and the provider's
      answer. The provider may or may not have accepted it, and SMTP offers no way to ask. We
      choose at most once: never send it again, report it as `unknown` so a person checks.
    - Anything else: it is done; its result was already queued with the outcome.
    """
    if previous is None:
        return Decision.SEND
    if previous is DispatchState.SENDING:
        return Decision.REPORT_UNKNOWN
    return Decision.ALREADY_DONE


@dataclass(frozen=True, slots=True)
class Outcome:
    state: DispatchState
    provider_message_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class EmailJob:
    """One email to send for one action: to a customer (`SendEmail`) or to a member of the
    customer-success team (`NotifyStaff`). `channel` is what the result reports."""

    action_id: uuid.UUID
    case_id: uuid.UUID
    customer_id: str
    channel: str
    template: str
    to_address: str | None
    to_name: str | None = None
    context: Mapping[str, object] = field(default_factory=dict)
