import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from nps_events import ActionStatus, Channel, Segment
from nps_events.ids import derive_id


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class ActionState(StrEnum):
    """Where an action stands: planned until notify reports its outcome."""

    PLANNED = "planned"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @classmethod
    def from_result(cls, status: ActionStatus) -> "ActionState":
        return cls(status.value)


@dataclass(frozen=True, slots=True)
class PlannedAction:
    action_id: uuid.UUID
    channel: Channel
    template: str


@dataclass(frozen=True, slots=True)
class CasePlan:
    case_id: uuid.UUID
    due_at: datetime
    actions: tuple[PlannedAction, ...]


@dataclass(frozen=True, slots=True)
class FollowupPolicy:
    """The follow-up rules in force. (A policy engine replaces this fixed rule later.)"""

    detractor_contact_within: timedelta = timedelta(days=2)


def case_id_for(response_id: uuid.UUID) -> uuid.UUID:
    return derive_id("case", str(response_id))


def plan_follow_up(
    *,
    response_id: uuid.UUID,
    segment: Segment,
    has_email: bool,
    now: datetime,
    policy: FollowupPolicy,
) -> CasePlan | None:
    """A detractor opens a case due within the contact window, with an apology email if the
    customer has an address; promoters and passives open none (yet)."""
    if segment is not Segment.DETRACTOR:
        return None
    case_id = case_id_for(response_id)
    actions: tuple[PlannedAction, ...] = ()
    if has_email:
        template = "detractor_apology"
        actions = (
            PlannedAction(derive_id("action", str(case_id), template), Channel.EMAIL, template),
        )
    return CasePlan(case_id=case_id, due_at=now + policy.detractor_contact_within, actions=actions)


@dataclass(frozen=True, slots=True)
class Action:
    action_id: uuid.UUID
    channel: str
    template: str
    state: ActionState
    provider_message_id: str | None
    reason: str | None
    requested_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Case:
    case_id: uuid.UUID
    response_id: uuid.UUID
    source: str
    survey_id: str
    customer_id: str
    customer_email: str | None
    customer_name: str | None
    segment: Segment
    score: int
    comment: str | None
    status: CaseStatus
    opened_at: datetime
    due_at: datetime
    actions: tuple[Action, ...] = ()
