"""Event models: the data of every event npsloop publishes.

Rules for changing them (see docs/events.md): adding an optional field is a minor change;
anything else is a new topic version. Consumers ignore fields they do not know.
"""

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from nps_events.ids import derive_id
from nps_events.text import EmailAddress, Line, StaffRecipient, Text
from nps_events.topics import Topic


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must include a time zone offset, e.g. 2026-11-24T10:00:00Z")
    try:
        value.astimezone(UTC)  # what every consumer stores: 0001-01-01T00:00+14:00 has none
    except OverflowError:
        raise ValueError("must be within years 1–9999 in UTC") from None
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]

Score = Annotated[
    int,
    Field(ge=0, le=10, description="The answer to 'how likely are you to recommend us', 0 to 10."),
]


class Segment(StrEnum):
    """NPS segment of a score: promoter 9–10, passive 7–8, detractor 0–6."""

    PROMOTER = "promoter"
    PASSIVE = "passive"
    DETRACTOR = "detractor"


class Transition(StrEnum):
    """How a customer's segment moved since their previous response (another response of the
    same customer, answered earlier). Segments rank detractor < passive < promoter.

    - `first_response`: the customer has no earlier response.
    - `unchanged`: same segment (the score may still have moved within it: compare
      `previous_score`).
    - `improved`: up one step (detractor → passive, passive → promoter).
    - `declined`: down one step (promoter → passive, passive → detractor).
    - `recovered`: detractor → promoter, a win back.
    - `churn_risk`: promoter → detractor, a customer to call at once.

    Exactly one value applies; `recovered` and `churn_risk` are never also reported as
    `improved` or `declined`.
    """

    FIRST_RESPONSE = "first_response"
    UNCHANGED = "unchanged"
    IMPROVED = "improved"
    DECLINED = "declined"
    RECOVERED = "recovered"
    CHURN_RISK = "churn_risk"


class Channel(StrEnum):
    """How an action reaches its recipient. `staff` is a notification to a person of the
    customer-success team (owner, lead), not to the customer. `webhook` is a signed call to a
    tool of the company's (the survey tool asked to re-survey a customer: `request-resurvey`),
    not a message to the customer either; added in 1.9.0."""

    EMAIL = "email"
    SMS = "sms"
    TICKET = "ticket"
    STAFF = "staff"
    WEBHOOK = "webhook"


class ActionStatus(StrEnum):
    """Outcome of one dispatch.

    `unknown` means notify was interrupted between handing the message to the provider and
    recording the answer: it will not send it again (never twice), and a person should check.
    """

    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"


#: How a response's content is written for its event id: `json.dumps(content, sort_keys=True)`
#: exactly (ids already published depend on it), with one encoder instead of one per call.
_CONTENT = json.JSONEncoder(sort_keys=True)


class _Model(BaseModel):
    # Consumers must accept events with fields added after they were built.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Customer(_Model):
    """The customer who answered. PII: travels only in events that need it, never in logs."""

    id: Line = Field(
        min_length=1, max_length=200, description="The customer's id in the upstream product."
    )
    email: EmailAddress | None = Field(
        default=None,
        description="Email address to contact the customer at: exactly one address, without "
        "a display name.",
    )
    phone: str | None = Field(
        default=None,
        pattern=r"^\+[1-9][0-9]{6,14}$",
        description="Phone number in E.164 form, e.g. +14155550123.",
    )
    name: Line | None = Field(
        default=None, max_length=200, description="Display name: one line, no control characters."
    )
    locale: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2}(-[A-Z]{2})?$",
        description="Preferred language, e.g. en or pt-BR.",
    )
    timezone: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z_]+(/[A-Za-z0-9_+\-]+)*$",
        description="IANA time zone, e.g. Europe/Paris; what the customer receives respects it.",
    )
    attributes: dict[
        Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")],
        Annotated[Line, Field(max_length=200)],
    ] = Field(
        default_factory=dict,
        max_length=20,
        # pydantic renders the key pattern as patternProperties only, which lets other keys
        # through; propertyNames makes the schema refuse them as the model does.
        json_schema_extra={"propertyNames": {"pattern": r"^[a-z][a-z0-9_]{0,39}$"}},
        description="What the source says about the customer (plan, region, account_owner…), "
        "for policy and figures. Not PII.",
    )


class Event(_Model):
    """Base of every event: its CloudEvents type, topic, id, subject and partition key."""

    ce_type: ClassVar[str]
    topic: ClassVar[Topic]

    def event_id(self) -> uuid.UUID:
        """Deterministic CloudEvents id: the same input always yields the same id. Derived
        once per event (a response's takes a JSON dump and a UUIDv5: tens of µs) and kept."""
        return self._event_id

    @cached_property
    def _event_id(self) -> uuid.UUID:
        # An event is frozen, so its id never changes; `model_copy` drops the kept one.
        return self.derive_event_id()

    def derive_event_id(self) -> uuid.UUID:
        """The id, from the fields that identify the event; each event type defines it."""
        raise NotImplementedError

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("_event_id", None)
        return copied

    def subject(self) -> str:
        """CloudEvents subject: the entity the event is about."""
        raise NotImplementedError

    def partition_key(self) -> str:
        """Kafka message key: the customer, so one customer's events stay in order."""
        raise NotImplementedError


class ResponseReceived(Event):
    """A survey response, as received from an upstream product and normalised.

    The same response can arrive more than once: a retried or replayed delivery (same content,
    so the same event id: consumers de-duplicate it) or an update (Delighted, for one, sends the
    score first and the comment later: different content, so a new event id with the same
    `response_id`). Consumers treat a later event for a known `response_id` as an update of that
    response; per-customer ordering on the topic makes "later" well defined.
    """

    ce_type: ClassVar[str] = "io.npsloop.response.received.v1"
    topic: ClassVar[Topic] = Topic.RESPONSES

    response_id: uuid.UUID = Field(
        description="npsloop's id of the response, from `source` and `provider_response_id`."
    )
    source: Line = Field(
        min_length=1, max_length=100, description="The upstream source it came from."
    )
    provider_response_id: Line = Field(
        min_length=1, max_length=200, description="The response's id in the upstream product."
    )
    survey_id: Line = Field(min_length=1, max_length=200, description="The survey it answers.")
    customer: Customer
    score: Score
    comment: Text | None = Field(
        default=None,
        max_length=10_000,
        description="Free-text comment; may span lines (tab and line breaks, no other control "
        "character).",
    )
    responded_at: AwareDatetime = Field(description="When the customer answered.")
    received_at: AwareDatetime = Field(description="When npsloop received it.")
    backfill: bool = Field(
        default=False,
        description="True when the response was imported as history (ingest's batch or CSV "
        "import with `?backfill=true`): it is scored and counted in the figures, but followup "
        "opens no case and contacts nobody for it. Not part of the event id: the same answer "
        "sent live and imported again is the same event. Added in 1.7.0.",
    )

    @staticmethod
    def derive_response_id(source: str, provider_response_id: str) -> uuid.UUID:
        return derive_id("response", source, provider_response_id)

    def derive_event_id(self) -> uuid.UUID:
        """Derived from the response id and its content: a replay has the same id, an update
        a new one."""
        # `backfill` says how the answer arrived, not what it is: ids published before the
        # field existed stay as they were.
        content = self.model_dump(mode="json", exclude={"received_at", "backfill"})
        return derive_id("response-received", str(self.response_id), _CONTENT.encode(content))

    def subject(self) -> str:
        return f"responses/{self.response_id}"

    def partition_key(self) -> str:
        return self.customer.id


class ResponseScored(Event):
    """A response with its NPS segment. `revision` > 1 means an update of a response already
    scored (a comment added, a score changed): consumers update what they hold for it."""

    ce_type: ClassVar[str] = "io.npsloop.response.scored.v1"
    topic: ClassVar[Topic] = Topic.SCORED

    response_id: uuid.UUID
    source: Line
    survey_id: Line
    customer: Customer
    score: Score
    segment: Segment = Field(description="promoter (9–10), passive (7–8) or detractor (0–6).")
    comment: Text | None = None
    responded_at: AwareDatetime
    scored_at: AwareDatetime
    received_event_id: uuid.UUID = Field(description="The id of the ResponseReceived event scored.")
    revision: int = Field(
        default=1,
        ge=1,
        description="1 for the first version of the response, 2 for its first update…",
    )
    previous_score: int | None = Field(
        default=None,
        ge=0,
        le=10,
        description="The score of the same customer's previous response (the latest one "
        "answered before this one); null when there is none.",
    )
    previous_segment: Segment | None = Field(
        default=None, description="The segment of that previous response; null when none."
    )
    transition: Transition | None = Field(
        default=None,
        description="How the segment moved since the previous response. Null only in events "
        "scored before this field existed.",
    )
    themes: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]] | None = Field(
        default=None,
        max_length=50,
        description="Themes of the comment (ids of scoring's taxonomy, e.g. delivery, "
        "price), sorted; [] when the comment matched no theme; null when there is no comment.",
    )
    backfill: bool = Field(
        default=False,
        description="Copied from the ResponseReceived scored: history imported as back-fill. "
        "Counted in the figures; followup opens no case and contacts nobody for it. Added in "
        "1.7.0.",
    )

    def derive_event_id(self) -> uuid.UUID:
        return derive_id("scored", str(self.received_event_id))

    def subject(self) -> str:
        return f"responses/{self.response_id}"

    def partition_key(self) -> str:
        return self.customer.id


class ActorKind(StrEnum):
    PERSON = "person"  # a person signed in with the identity provider
    PROGRAM = "program"  # a program with a client-credentials token
    SYSTEM = "system"  # npsloop itself, applying a rule of the follow-up policy


class Actor(_Model):
    """Who caused a case event: a person or program (from their access token), or npsloop
    itself applying a policy rule. Added in 1.5.0."""

    kind: ActorKind
    id: Line = Field(
        min_length=1,
        max_length=200,
        description="The token's subject (a person), its client id (a program), or `system`.",
    )
    name: Line | None = Field(
        default=None,
        max_length=254,
        description="What people read: the person's email address or display name.",
    )
    rule: Line | None = Field(
        default=None,
        max_length=100,
        description="For `system`: the policy rule applied (the case's rule).",
    )

    @classmethod
    def system(cls, rule: str | None) -> "Actor":
        return cls(kind=ActorKind.SYSTEM, id="system", name="system", rule=rule)

    def label(self) -> str:
        """One line for a timeline: `alex@example.com`, `bi-dashboard`, `system`."""
        return self.name or self.id


class CaseOpened(Event):
    """A follow-up case was opened for a response."""

    ce_type: ClassVar[str] = "io.npsloop.case.opened.v1"
    topic: ClassVar[Topic] = Topic.CASES

    case_id: uuid.UUID
    response_id: uuid.UUID
    customer_id: Line
    segment: Segment
    score: Score
    opened_at: AwareDatetime
    due_at: AwareDatetime = Field(description="When a person must have contacted the customer.")
    actor: Actor | None = Field(
        default=None, description="Who opened it: `system`, with the rule. Added in 1.5.0."
    )

    def derive_event_id(self) -> uuid.UUID:
        return derive_id("case-opened", str(self.case_id))

    def subject(self) -> str:
        return f"cases/{self.case_id}"

    def partition_key(self) -> str:
        return self.customer_id


class _ActionCommand(Event):
    """Base of the commands to notify on `nps.actions.v1`: one action of one case each, whose
    id is the event's id, so notify acts on it once however often it is delivered."""

    topic: ClassVar[Topic] = Topic.ACTIONS

    action_id: uuid.UUID
    case_id: uuid.UUID

    def derive_event_id(self) -> uuid.UUID:
        return self.action_id

    def subject(self) -> str:
        return f"actions/{self.action_id}"


#: An address a customer may open from an email: http(s) only (never `javascript:`), one line.
WebLink = Annotated[str, Field(min_length=8, max_length=2_000, pattern=r"^https?://[^\s<>\"']+$")]


class ContentLink(_Model):
    """A page an email points the customer to, chosen by the follow-up policy from the themes
    of the customer's comment (passive education). Added in 1.8.0."""

    theme: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="The comment's theme it was chosen for (an id of scoring's taxonomy); "
        "null: the rule's default content, for a comment with no theme that has content.",
    )
    title: Line = Field(min_length=1, max_length=200, description="The link's text.")
    url: WebLink = Field(description="http or https.")
    summary: Line | None = Field(
        default=None, max_length=300, description="One short line shown under the link."
    )


class ReferralLink(_Model):
    """The promoter's own referral code and the link that carries it: whoever follows it is
    counted for that promoter when the referral is recorded (`POST /v1/referrals` on
    followup). Added in 1.8.0."""

    code: str = Field(
        pattern=r"^[a-z2-7]{16}$", description="Stable per customer; not derivable from the id."
    )
    url: WebLink = Field(description="The policy's referral URL with the code in it.")


class SendEmail(_ActionCommand):
    """Command to notify: send one templated email to a customer."""

    ce_type: ClassVar[str] = "io.npsloop.action.send-email.v1"

    action_id: uuid.UUID = Field(
        description="Unique per action; notify never sends one action twice."
    )
    case_id: uuid.UUID
    customer: Customer
    template: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$", description="Template name, e.g. detractor_apology."
    )
    locale: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    score: Score
    comment: Text | None = None
    requested_at: AwareDatetime
    team: Line | None = Field(
        default=None,
        max_length=100,
        description="The follow-up policy's team that owns the case: notify sends with that "
        "team's sender identity (from, reply-to, brand, signature). Added in 1.5.0.",
    )
    owner: EmailAddress | None = Field(
        default=None,
        description="The email address of the person who owns the case when it is sent (none "
        "when nobody does, or when the owner is a tool): with the team's reply_to_owner, the "
        "customer's reply reaches them. Added in 1.5.0.",
    )
    content: ContentLink | None = Field(
        default=None,
        description="A page chosen for this customer by their comment's themes (the policy's "
        "`content_by_theme`), for the template to show; null: none configured. Added in 1.8.0.",
    )
    referral: ReferralLink | None = Field(
        default=None,
        description="The customer's referral code and link (emails of promoter cases, when the "
        "policy has a `referral` program); null: none. Added in 1.8.0.",
    )

    def partition_key(self) -> str:
        return self.customer.id


class QuietHours(_Model):
    """Hours of the customer's local day when no message may reach them (21:00–08:00: the
    window crosses midnight when `start` is after `end`)."""

    timezone: Line = Field(
        min_length=1,
        max_length=64,
        description=(
            "The IANA time zone the hours are judged in, e.g. Europe/Paris: the customer's own "
            "if the tz database knows it, else the policy's default customer zone. Followup "
            "resolves it once, so every service judges the customer in the same zone."
        ),
    )
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, local.")
    end: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, local.")


class SendSms(_ActionCommand):
    """Command to notify: send one templated SMS to a customer who consented to SMS. Followup
    has already moved it out of the customer's quiet hours; `quiet_hours` lets notify respect
    them at send time too, when a delay (a provider's outage) pushes the send into them."""

    ce_type: ClassVar[str] = "io.npsloop.action.send-sms.v1"

    action_id: uuid.UUID = Field(description="Unique per action; notify never sends one twice.")
    case_id: uuid.UUID
    customer: Customer
    template: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Template name.")
    locale: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    requested_at: AwareDatetime
    quiet_hours: QuietHours | None = Field(
        default=None,
        description="Not sent inside these hours: an SMS that comes due then waits for their end.",
    )
    team: Line | None = Field(
        default=None,
        max_length=100,
        description="The follow-up policy's team that owns the case: notify sends with that "
        "team's sender identity (from, reply-to, brand, signature). Added in 1.5.0.",
    )

    def partition_key(self) -> str:
        return self.customer.id


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class CreateTicket(_ActionCommand):
    """Command to notify: open a helpdesk ticket for a case. The action id is the idempotency
    key at the helpdesk (e.g. Zendesk's `Idempotency-Key`); the ticket's id at the helpdesk
    comes back as the result's `provider_message_id`."""

    ce_type: ClassVar[str] = "io.npsloop.action.create-ticket.v1"

    action_id: uuid.UUID = Field(description="Unique per action; notify never creates it twice.")
    case_id: uuid.UUID
    customer: Customer
    priority: TicketPriority
    title: Line = Field(min_length=1, max_length=200, description="The ticket's title.")
    score: Score
    segment: Segment
    comment: Text | None = Field(default=None, max_length=10_000, description="What they wrote.")
    requested_at: AwareDatetime

    def partition_key(self) -> str:
        return self.customer.id


class RaiseTicketPriority(_ActionCommand):
    """Command to notify: raise the priority of the ticket an earlier `CreateTicket`
    (`ticket_action_id`) opened, because the case was escalated."""

    ce_type: ClassVar[str] = "io.npsloop.action.raise-ticket-priority.v1"

    action_id: uuid.UUID = Field(description="Unique per action.")
    case_id: uuid.UUID
    customer_id: Line
    ticket_action_id: uuid.UUID = Field(description="The action that created the ticket.")
    priority: TicketPriority
    requested_at: AwareDatetime

    def partition_key(self) -> str:
        return self.customer_id


class StaffReason(StrEnum):
    ASSIGNED = "assigned"
    REMINDER = "reminder"
    ESCALATION = "escalation"


class NotifyStaff(_ActionCommand):
    """Command to notify: tell a person of the customer-success team about a case (assigned to
    them, a deadline coming up, an escalation), with what they need to act on it: the
    customer's name and comment (PII, for the person who must call them back)."""

    ce_type: ClassVar[str] = "io.npsloop.action.notify-staff.v1"

    action_id: uuid.UUID = Field(description="Unique per action.")
    case_id: uuid.UUID
    customer_id: Line
    recipient: StaffRecipient = Field(
        description="The staff member: one email address, or webhook:<name> for one of the "
        "team's tools."
    )
    role: Line = Field(description="owner, lead or second_level.")
    reason: StaffReason
    level: int = Field(ge=0, le=2, description="Escalation level: 0 none, 1 lead, 2 second level.")
    due_at: AwareDatetime | None = Field(default=None, description="The case's contact deadline.")
    segment: Segment
    score: Score
    requested_at: AwareDatetime
    team: Line | None = Field(
        default=None,
        max_length=100,
        description="The follow-up policy's team that owns the case: notify sends with that "
        "team's sender identity (from, reply-to, brand, signature). Added in 1.5.0.",
    )
    timezone: Line | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z_]+(/[A-Za-z0-9_+\-]+)*$",
        description="The team's IANA time zone: the deadline is shown in it. Added in 1.5.0.",
    )
    customer_name: Line | None = Field(
        default=None,
        max_length=200,
        description="The customer's name, for the person who must contact them. Added in 1.5.0.",
    )
    comment: Text | None = Field(
        default=None,
        max_length=10_000,
        description="What the customer wrote (notify shows it shortened). Added in 1.5.0.",
    )

    def partition_key(self) -> str:
        return self.customer_id


#: The name of an outbound webhook endpoint of notify's (`NOTIFY_WEBHOOKS`).
EndpointName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class RequestResurvey(_ActionCommand):
    """Command to notify: ask the survey tool, by a signed call to one of notify's webhook
    endpoints (`endpoint`), to survey the customer again. Followup requests it beside
    `case.resurvey-requested` when the case's rule names a `resurvey_webhook`; the result comes
    back as an `action.result` with channel `webhook`. Added in 1.9.0."""

    ce_type: ClassVar[str] = "io.npsloop.action.request-resurvey.v1"

    action_id: uuid.UUID = Field(
        description="Unique per re-survey; the webhook's `webhook-id` is `msg_<action_id>`, "
        "so the survey tool de-duplicates a repeated call on it."
    )
    case_id: uuid.UUID
    endpoint: EndpointName = Field(
        description="The name of notify's webhook endpoint to call (`NOTIFY_WEBHOOKS`), as the "
        "policy's `resurvey_webhook` names it."
    )
    customer: Customer = Field(
        description="Whom to ask (PII): as in `case.resurvey-requested`, without the address of "
        "a channel they opted out of."
    )
    response_id: uuid.UUID = Field(description="The response the case was opened for.")
    source: Line = Field(min_length=1, max_length=100, description="The source of that response.")
    survey_id: Line = Field(
        min_length=1, max_length=200, description="The survey that response answered."
    )
    score: Score = Field(description="The score of that response: the one to compare with.")
    segment: Segment = Field(description="Its segment.")
    closed_at: AwareDatetime = Field(description="When the case closed.")
    requested_at: AwareDatetime = Field(description="When the re-survey was requested.")
    rule: Line | None = Field(
        default=None, max_length=100, description="The policy rule of the case."
    )

    def partition_key(self) -> str:
        return self.customer.id


class ActionResultReported(Event):
    """The outcome of dispatching one action."""

    ce_type: ClassVar[str] = "io.npsloop.action.result.v1"
    topic: ClassVar[Topic] = Topic.ACTION_RESULTS

    action_id: uuid.UUID
    case_id: uuid.UUID
    customer_id: Line
    channel: Channel
    status: ActionStatus
    provider_message_id: Line | None = Field(
        default=None,
        description="The provider's id of what was sent (e.g. the email's Message-ID).",
    )
    reason: Text | None = Field(
        default=None, max_length=2_000, description="Why it failed, if it did."
    )
    occurred_at: AwareDatetime

    def derive_event_id(self) -> uuid.UUID:
        return derive_id("action-result", str(self.action_id), self.status.value)

    def subject(self) -> str:
        return f"actions/{self.action_id}"

    def partition_key(self) -> str:
        return self.customer_id


class TicketStatusChanged(Event):
    """A helpdesk ticket that npsloop opened for a case changed status in the helpdesk (an
    agent solved it, say), as the helpdesk's signed webhook told notify."""

    ce_type: ClassVar[str] = "io.npsloop.ticket.status-changed.v1"
    topic: ClassVar[Topic] = Topic.ACTION_RESULTS

    helpdesk: Line = Field(min_length=1, max_length=40, description="zendesk, jira…")
    helpdesk_event_id: Line = Field(
        min_length=1,
        max_length=200,
        description="The helpdesk's id of the change: its replay is the same event.",
    )
    action_id: uuid.UUID = Field(description="The `CreateTicket` action that opened the ticket.")
    case_id: uuid.UUID
    customer_id: Line
    ticket_id: Line = Field(min_length=1, max_length=200, description="The helpdesk's ticket id.")
    status: Line = Field(
        min_length=1,
        max_length=40,
        description="The ticket's new status, lower case: open, pending, solved, closed…",
    )
    previous_status: Line | None = Field(default=None, max_length=40)
    occurred_at: AwareDatetime

    def derive_event_id(self) -> uuid.UUID:
        return derive_id("ticket-status", self.helpdesk, self.helpdesk_event_id)

    def subject(self) -> str:
        return f"actions/{self.action_id}"

    def partition_key(self) -> str:
        return self.customer_id


class _CaseEvent(Event):
    """Base of the case lifecycle events after `CaseOpened`: one per timeline entry."""

    topic: ClassVar[Topic] = Topic.CASES

    entry_id: uuid.UUID = Field(description="The case timeline entry this event records.")
    case_id: uuid.UUID
    customer_id: Line
    at: AwareDatetime = Field(description="When it happened.")
    actor: Actor | None = Field(
        default=None,
        description="Who did it: the person or program whose token the request carried, or "
        "`system` with the rule for automatic steps (reminders, escalations). Added in 1.5.0.",
    )

    def derive_event_id(self) -> uuid.UUID:
        return self.entry_id

    def subject(self) -> str:
        return f"cases/{self.case_id}"

    def partition_key(self) -> str:
        return self.customer_id


class CaseAssigned(_CaseEvent):
    """A case got an owner, by the policy's rule or by hand."""

    ce_type: ClassVar[str] = "io.npsloop.case.assigned.v1"

    owner: StaffRecipient = Field(
        description="Who owns the case: one email address, or webhook:<name>."
    )
    by_rule: bool = Field(description="True when the policy chose the owner.")


class ContactOutcome(StrEnum):
    REACHED = "reached"
    LEFT_MESSAGE = "left_message"
    NO_ANSWER = "no_answer"


class CaseContactRecorded(_CaseEvent):
    """A person of the team tried to contact the customer. `reached` meets the contact SLA."""

    ce_type: ClassVar[str] = "io.npsloop.case.contact-recorded.v1"

    channel: Line = Field(min_length=1, max_length=20, description="phone, email, meeting…")
    outcome: ContactOutcome
    within_sla: bool | None = Field(
        description="For the first `reached` contact: whether it met the deadline; else null."
    )


class CaseReminded(_CaseEvent):
    """The owner was reminded that the contact deadline is near."""

    ce_type: ClassVar[str] = "io.npsloop.case.reminded.v1"

    due_at: AwareDatetime


class CaseEscalated(_CaseEvent):
    """The contact deadline passed without contact: level 1 went to the team lead, level 2 to
    the second level."""

    ce_type: ClassVar[str] = "io.npsloop.case.escalated.v1"

    level: int = Field(ge=1, le=2)
    due_at: AwareDatetime


class CaseResolved(_CaseEvent):
    """The case was resolved, with a root cause from the policy's taxonomy."""

    ce_type: ClassVar[str] = "io.npsloop.case.resolved.v1"

    root_cause: Line = Field(min_length=1, max_length=100)


class CaseClosed(_CaseEvent):
    """The case was closed: the loop is closed."""

    ce_type: ClassVar[str] = "io.npsloop.case.closed.v1"


class CaseReopened(_CaseEvent):
    """A resolved or closed case was reopened."""

    ce_type: ClassVar[str] = "io.npsloop.case.reopened.v1"

    due_at: AwareDatetime | None = Field(
        default=None,
        description="The new contact deadline when nobody had reached the customer yet (the "
        "case is open again, with a new escalation ladder); none when it goes back to "
        "contacted, or when no rule of the policy applies to the case any more. Added in 1.3.0.",
    )


class CaseResponseAttached(_CaseEvent):
    """The customer answered again while the case was open (or later): the new response is
    recorded on the case, with the score change. `recovered`: a detractor now scores 9–10."""

    ce_type: ClassVar[str] = "io.npsloop.case.response-attached.v1"

    response_id: uuid.UUID
    previous_score: Score
    score: Score
    segment: Segment
    recovered: bool
    resurvey_requested_at: AwareDatetime | None = Field(
        default=None,
        description="Set when this is the customer's answer to the re-survey requested then "
        "(`case.resurvey-requested`): the first answer given after it. Added in 1.8.0.",
    )


class ResurveyRequested(_CaseEvent):
    """Ask the customer again: their case closed the rule's `resurvey_after` ago. npsloop sends
    no survey itself; the survey tool (or a team's integration) sends it, and followup links the
    customer's next answer to the case. Never published for a customer on the do-not-contact
    list for every channel, nor for one who has answered again since the case closed; a case
    reopened before the time cancels it. Added in 1.8.0."""

    ce_type: ClassVar[str] = "io.npsloop.case.resurvey-requested.v1"

    customer: Customer = Field(
        description="Whom to ask (PII): the customer as the case holds them, without the "
        "address of a channel they opted out of (email, sms)."
    )
    response_id: uuid.UUID = Field(description="The response the case was opened for.")
    source: Line = Field(min_length=1, max_length=100, description="The source of that response.")
    survey_id: Line = Field(
        min_length=1, max_length=200, description="The survey that response answered."
    )
    score: Score = Field(description="The score of that response: the one to compare with.")
    segment: Segment = Field(description="Its segment.")
    closed_at: AwareDatetime = Field(description="When the case closed.")


class OptOutScope(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    ALL = "all"


class ContactOptOut(Event):
    """A customer asked not to be contacted (a provider's unsubscribe event, or the API).
    Followup adds them to its do-not-contact list.

    Ingest publishes the survey tools' opt-outs; notify publishes one when a channel's provider
    refuses a message because the customer unsubscribed (Twilio's error 21610: they texted
    STOP), with `source` `notify` and the provider's words as `reason`."""

    ce_type: ClassVar[str] = "io.npsloop.customer.opted-out.v1"
    topic: ClassVar[Topic] = Topic.RESPONSES

    source: Line = Field(min_length=1, max_length=100)
    customer_id: Line = Field(min_length=1, max_length=200)
    scope: OptOutScope = OptOutScope.ALL
    provider_event_id: Line = Field(
        min_length=1, max_length=200, description="The provider's id of the opt-out."
    )
    occurred_at: AwareDatetime
    reason: Text | None = Field(
        default=None,
        max_length=2_000,
        description="Why the customer is on the list, in the provider's words when it said "
        "(notify: the SMS provider's refusal). Added in 1.6.0.",
    )

    def derive_event_id(self) -> uuid.UUID:
        return derive_id("opted-out", self.source, self.provider_event_id)

    def subject(self) -> str:
        return f"customers/{self.customer_id}"

    def partition_key(self) -> str:
        return self.customer_id


EVENT_TYPES: dict[str, type[Event]] = {
    model.ce_type: model
    for model in (
        ResponseReceived,
        ContactOptOut,
        ResponseScored,
        CaseOpened,
        CaseAssigned,
        CaseContactRecorded,
        CaseReminded,
        CaseEscalated,
        CaseResolved,
        CaseClosed,
        CaseReopened,
        CaseResponseAttached,
        ResurveyRequested,
        SendEmail,
        SendSms,
        CreateTicket,
        RaiseTicketPriority,
        NotifyStaff,
        RequestResurvey,
        ActionResultReported,
        TicketStatusChanged,
    )
}
