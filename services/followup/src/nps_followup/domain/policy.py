"""The follow-up policy as data: which rule applies to a response, which actions it plans and
which deadlines its case gets. Loaded from YAML by `adapters.policy_file`, validated here into
frozen models; a policy change applies to new cases only, because each case stores its own
deadlines when it opens."""

import re
from dataclasses import dataclass
from datetime import time
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from nps_events import Segment, StaffRecipient
from nps_events.hours import inside
from nps_followup.domain.content import Content, ThemeId
from nps_followup.domain.durations import (
    DEFAULT_RESPONSE_WINDOW,
    RESURVEY_OFF,
    AgeField,
    Duration,
    DurationField,
    DurationUnit,
    ResurveyField,
)
from nps_followup.domain.holdout import HoldoutShare, is_held_out
from nps_followup.domain.referrals import ReferralProgram

# What other modules import from here, wherever it lives now.
__all__ = [
    "DEFAULT_RESPONSE_WINDOW",
    "RESURVEY_OFF",
    "WEBHOOK_OFF",
    "ActionKind",
    "ActionRule",
    "AgeField",
    "CaseRule",
    "ContactRules",
    "Duration",
    "DurationField",
    "DurationUnit",
    "Hours",
    "Match",
    "OwnerRule",
    "Policy",
    "ResurveyField",
    "ResurveyWebhookField",
    "Rule",
    "Team",
    "TicketPriority",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name, e.g. Europe/Paris)"
        ) from None
    return name


ZoneName = Annotated[str, AfterValidator(_zone)]

#: What a rule writes to call no webhook when the policy's `resurvey_webhook` would name one.
WEBHOOK_OFF = "off"
_ENDPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _webhook_off(value: object) -> object:
    return None if isinstance(value, str) and value.strip() == WEBHOOK_OFF else value


def _endpoint_name(value: str) -> str:
    if _ENDPOINT_NAME.fullmatch(value) is None:
        raise ValueError(
            f"{value!r} is not an endpoint name: resurvey_webhook names an endpoint of "
            "notify's NOTIFY_WEBHOOKS (letters, digits, '_', '.' and '-', e.g. survey_tool), "
            "or is 'off'"
        )
    return value


#: The name of one of notify's outbound webhook endpoints (`NOTIFY_WEBHOOKS`), or `off`.
ResurveyWebhookField = Annotated[
    Annotated[str, AfterValidator(_endpoint_name)] | None, BeforeValidator(_webhook_off)
]


class Hours(_Frozen):
    """A daily window in local time, `09:00`–`17:00`. `end` before `start` spans midnight."""

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> "Hours":
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self

    def contains(self, moment: time) -> bool:
        return inside(moment, self.start, self.end)


class Team(_Frozen):
    """Who works cases, when they work, and where (for public holidays)."""

    timezone: ZoneName = "UTC"
    #: ISO 3166 country (and optional subdivision) whose public holidays the team takes off.
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    subdivision: str | None = None
    business_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    business_hours: Hours = Hours(start=time(9), end=time(17))
    #: Each person is one email address, or `webhook:<name>` for one of the team's tools.
    lead: StaffRecipient = Field(description="Who escalations go to.")
    second_level: StaffRecipient | None = Field(
        default=None, description="Who second-level escalations go to."
    )
    members: tuple[StaffRecipient, ...] = Field(min_length=1)

    @field_validator("business_days")
    @classmethod
    def _days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [d for d in value if d not in _WEEKDAYS]
        if unknown:
            raise ValueError(f"unknown weekday(s) {unknown}: use {', '.join(_WEEKDAYS)}")
        if not value:
            raise ValueError("a team needs at least one business day")
        return value

    @model_validator(mode="after")
    def _daytime_hours(self) -> "Team":
        if self.business_hours.end < self.business_hours.start:
            raise ValueError("business_hours must not span midnight")
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        return frozenset(_WEEKDAYS.index(d) for d in self.business_days)


class ActionKind(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    TICKET = "ticket"


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class ActionRule(_Frozen):
    """One action a rule plans: an email or SMS to the customer, or a helpdesk ticket."""

    kind: ActionKind
    template: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    after: DurationField = Duration(amount=0, unit=DurationUnit.MINUTES)
    priority: TicketPriority = TicketPriority.NORMAL
    #: A direct reply to what the customer just did (an acknowledgement) is not held back by
    #: the frequency cap; anything else is.
    exempt_from_frequency_cap: bool = False

    @model_validator(mode="after")
    def _template_for_messages(self) -> "ActionRule":
        if self.kind in (ActionKind.EMAIL, ActionKind.SMS) and self.template is None:
            raise ValueError(f"a {self.kind.value} action needs a template")
        if self.after.is_business:
            raise ValueError(
                "an action's `after` is calendar time: what the customer receives follows the "
                "customer's clock, not a team's business hours"
            )
        return self


class OwnerRule(StrEnum):
    #: The customer's `account_owner` attribute, if it names someone; else round-robin.
    ACCOUNT_OWNER = "account_owner"
    ROUND_ROBIN = "round_robin"
    UNASSIGNED = "unassigned"


class CaseRule(_Frozen):
    """A case worked by a person: who owns it and the deadlines of its escalation ladder."""

    team: str
    owner: OwnerRule = OwnerRule.ACCOUNT_OWNER
    contact_within: DurationField
    remind_before: DurationField | None = None
    second_level_after: DurationField | None = None

    @model_validator(mode="after")
    def _reminder_inside_window(self) -> "CaseRule":
        if self.remind_before is not None and (
            self.remind_before.is_business != self.contact_within.is_business
        ):
            raise ValueError(
                "remind_before and contact_within must both be business time or both calendar time"
            )
        return self


def _one_of(value: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a customer attribute's value is one of a rule's, in any letters: vendors and
    CRMs disagree on `Enterprise` and `enterprise`, and no company means two plans by them."""
    return value is not None and value.casefold() in {a.casefold() for a in allowed}


class Match(_Frozen):
    """Which responses a rule applies to. Every given condition must hold."""

    segment: Segment
    source: tuple[str, ...] | None = None
    survey: tuple[str, ...] | None = None
    attributes: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("source", "survey", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("attributes", mode="before")
    @classmethod
    def _attribute_values(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: (v,) if isinstance(v, str) else v for k, v in value.items()}
        return value

    def matches(
        self, *, segment: Segment, source: str, survey: str, attributes: dict[str, str]
    ) -> bool:
        return (
            segment is self.segment
            and (self.source is None or source in self.source)
            and (self.survey is None or survey in self.survey)
            and all(_one_of(attributes.get(k), allowed) for k, allowed in self.attributes.items())
        )

    def mismatch(self, *, source: str, survey: str, attributes: dict[str, str]) -> str | None:
        """The first condition (besides the segment) a response does not meet, in words; None
        if it meets them all."""
        if self.source is not None and source not in self.source:
            return f"source is {source!r}, not one of {list(self.source)}"
        if self.survey is not None and survey not in self.survey:
            return f"survey is {survey!r}, not one of {list(self.survey)}"
        for key, allowed in self.attributes.items():
            if not _one_of(attributes.get(key), allowed):
                value = attributes.get(key)
                said = "missing" if value is None else repr(value)
                return f"attribute {key} is {said}, not one of {list(allowed)}"
        return None

    @property
    def specificity(self) -> int:
        return (self.source is not None) + (self.survey is not None) + len(self.attributes)


class Rule(_Frozen):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    when: Match
    case: CaseRule | None = Field(
        default=None, description="A case for a person to work; none: the actions alone."
    )
    actions: tuple[ActionRule, ...] = ()
    act_on_responses_within: AgeField | None = Field(
        default=None,
        description="A response answered longer ago than this opens no case and sends "
        "nothing (it is recorded as not acted on); none: the policy's own setting.",
    )
    resurvey_after: ResurveyField = Field(
        default=None,
        description="How long after its case closed the customer is asked again (a "
        "`ResurveyRequested` event); `off`: never; left out: the policy's own setting. Only "
        "for rules with a `case` (a case a person closes).",
    )
    resurvey_webhook: ResurveyWebhookField = Field(
        default=None,
        description="The endpoint of notify's NOTIFY_WEBHOOKS that is also called, signed, "
        "when this rule's customer is asked again (an `action.request-resurvey`), so that the "
        "survey tool sends the survey; `off`: none; left out: the policy's own setting.",
    )
    content_by_theme: dict[ThemeId, Content] = Field(
        default_factory=dict,
        description="A page per theme of scoring's taxonomy for the rule's emails to show "
        "(passive education): the first theme listed here that the comment has wins.",
    )
    default_content: Content | None = Field(
        default=None, description="The page when the comment has no theme listed above."
    )

    @model_validator(mode="after")
    def _content_needs_an_email(self) -> "Rule":
        if (self.content_by_theme or self.default_content) and not any(
            a.kind is ActionKind.EMAIL for a in self.actions
        ):
            raise ValueError("content_by_theme and default_content are shown in emails: add one")
        return self

    holdout: HoldoutShare | None = Field(
        default=None,
        description="For a rule whose actions are automated messages only (no case, no "
        "ticket): the share of customers, e.g. `10%`, who receive nothing, chosen by a hash "
        "of the rule and the customer id, so that the impact figures can compare them with "
        "those who got the messages.",
    )

    def holds_out(self, customer_id: str) -> bool:
        """Whether the customer is in this rule's holdout: they receive none of its messages."""
        return self.holdout is not None and is_held_out(self.name, customer_id, self.holdout)

    def holdout_refused(self) -> str | None:
        """Why this rule may not hold anyone out, or None if it may (or sets no holdout).
        Only automated messages can be held out: a rule that opens a case or a ticket is a
        person's work for an unhappy customer, and not contacting such customers on purpose
        is not something a policy line should make easy."""
        if self.holdout is None:
            return None
        if self.case is not None:
            return (
                "a holdout is for automated messages only: this rule opens a case for a person "
                "to contact the customer, and npsloop does not hold back that contact on purpose"
            )
        if any(a.kind is ActionKind.TICKET for a in self.actions):
            return (
                "a holdout is for automated messages only: this rule opens a helpdesk ticket, "
                "which is a person's work"
            )
        if not self.actions:
            return "a holdout needs messages to hold back: this rule sends none"
        return None


class ContactRules(_Frozen):
    """What protects the customer from us."""

    #: Messages that are not exempt wait for this long after the last message to the customer;
    #: one that would break the cap is skipped, with the reason on the case.
    frequency_cap: DurationField = Duration(amount=7, unit=DurationUnit.DAYS)
    #: No SMS inside these hours of the customer's local time.
    quiet_hours: Hours = Hours(start=time(21), end=time(8))
    #: Scheduled messages (not immediate replies) arrive in this window of the customer's day.
    delivery_hours: Hours = Hours(start=time(9), end=time(18))
    #: Time zone of customers who did not give one.
    default_customer_timezone: ZoneName = "UTC"

    @field_validator("frequency_cap")
    @classmethod
    def _calendar_cap(cls, value: Duration) -> Duration:
        if value.is_business:
            raise ValueError("the frequency cap is calendar time (the customer's, not a team's)")
        return value


class Policy(_Frozen):
    """The whole follow-up policy."""

    version: int = Field(ge=1, le=1, description="The policy format version: 1.")
    teams: dict[str, Team] = Field(min_length=1)
    contact: ContactRules = ContactRules()
    root_causes: tuple[str, ...] = Field(
        min_length=1, description="The taxonomy a resolved case's root cause is chosen from."
    )
    rules: tuple[Rule, ...] = Field(min_length=1)
    act_on_responses_within: AgeField = Field(
        default=DEFAULT_RESPONSE_WINDOW,
        description="How old a response may be (since the customer answered) and still open a "
        "case or send anything, for rules that do not say.",
    )
    resurvey_after: ResurveyField = Field(
        default=None,
        description="How long after a case closed the customer is asked again, for rules with "
        "a case that do not say; none (the default) or `off`: no re-survey.",
    )

    resurvey_webhook: ResurveyWebhookField = Field(
        default=None,
        description="The endpoint of notify's NOTIFY_WEBHOOKS called, signed, with each "
        "re-survey (besides the `case.resurvey-requested` event), for rules that do not say; "
        "none (the default): no call.",
    )

    referral: ReferralProgram | None = Field(
        default=None,
        description="Referral links in the emails of promoter cases; none: no referral codes.",
    )

    def resurvey_delay(self, rule: Rule | None) -> Duration | None:
        """How long after a case of `rule` closes its customer is asked again (calendar time),
        or None for no re-survey: the rule's `resurvey_after` when it has one (`off` included),
        else the policy's. A rule that opens no case for a person to close has none."""
        if rule is None or rule.case is None:
            return None
        if "resurvey_after" in rule.model_fields_set:
            return rule.resurvey_after
        return self.resurvey_after

    def resurvey_webhook_for(self, rule: Rule | None) -> str | None:
        """The endpoint a re-survey of a case under `rule` is also sent to (None: no call): the
        rule's `resurvey_webhook` when it has one (`off` included), else the policy's. Read
        when the customer is asked, so a rule that has left the policy since its case closed
        takes the policy's."""
        if rule is not None and "resurvey_webhook" in rule.model_fields_set:
            return rule.resurvey_webhook
        return self.resurvey_webhook

    def response_window(self, rule: Rule | None) -> Duration:
        """How old a response under `rule` may be and still be acted on (calendar time)."""
        within = rule.act_on_responses_within if rule is not None else None
        return within or self.act_on_responses_within

    def inconsistencies(self) -> list[tuple[tuple[str | int, ...], str]]:
        """What is wrong across sections (a rule naming an unknown team…), each with where."""
        found: list[tuple[tuple[str | int, ...], str]] = []
        names: set[str] = set()
        seen: set[tuple[object, ...]] = set()
        for index, rule in enumerate(self.rules):
            if rule.name in names:
                found.append((("rules", index, "name"), f"rule name {rule.name!r} is repeated"))
            names.add(rule.name)
            if rule.case is not None and rule.case.team not in self.teams:
                found.append(
                    (
                        ("rules", index, "case", "team"),
                        f"team {rule.case.team!r} is not under teams "
                        f"({', '.join(sorted(self.teams))})",
                    )
                )
            if rule.case is None and rule.resurvey_after is not None:
                found.append(
                    (
                        ("rules", index, "resurvey_after"),
                        "a re-survey follows a case a person closes, and this rule opens none: "
                        "give it a `case`, or leave resurvey_after out",
                    )
                )
            if rule.resurvey_webhook is not None and self.resurvey_delay(rule) is None:
                found.append(
                    (
                        ("rules", index, "resurvey_webhook"),
                        "resurvey_webhook is called when a customer is asked again, and this "
                        "rule asks nobody again (no resurvey_after applies to it, or it opens "
                        "no case): set resurvey_after, or leave resurvey_webhook out",
                    )
                )
            refused = rule.holdout_refused()
            if refused is not None:
                found.append((("rules", index, "holdout"), refused))
            key = (
                rule.when.segment,
                rule.when.source,
                rule.when.survey,
                tuple(
                    sorted(
                        (k, tuple(sorted({v.casefold() for v in vs})))
                        for k, vs in rule.when.attributes.items()
                    )
                ),
            )
            if key in seen:
                found.append(
                    (("rules", index, "when"), "matches exactly what an earlier rule matches")
                )
            seen.add(key)
        if self.resurvey_webhook is not None and all(
            self.resurvey_delay(rule) is None for rule in self.rules
        ):
            found.append(
                (
                    ("resurvey_webhook",),
                    "resurvey_webhook is called when a customer is asked again, and no rule "
                    "asks anyone again: set resurvey_after, or leave resurvey_webhook out",
                )
            )
        return found

    def rule_for(
        self, *, segment: Segment, source: str, survey: str, attributes: dict[str, str]
    ) -> Rule | None:
        """The most specific matching rule; among equally specific ones, the first listed."""
        return self.choose(
            segment=segment, source=source, survey=survey, attributes=attributes
        ).rule

    def choose(
        self, *, segment: Segment, source: str, survey: str, attributes: dict[str, str]
    ) -> "RuleChoice":
        """The rule that applies (as `rule_for`) and why: every other rule of the segment, with
        the reason it lost (less specific, listed later, or the condition it does not meet)."""
        best: int | None = None
        for index, rule in enumerate(self.rules):
            if rule.when.matches(
                segment=segment, source=source, survey=survey, attributes=attributes
            ) and (best is None or rule.when.specificity > self.rules[best].when.specificity):
                best = index
        considered = []
        for index, rule in enumerate(self.rules):
            if index == best or rule.when.segment is not segment:
                continue
            miss = rule.when.mismatch(source=source, survey=survey, attributes=attributes)
            if miss is None:
                assert best is not None  # noqa: S101 - a matching rule means a best one
                miss = (
                    "matches too, but is less specific"
                    if rule.when.specificity < self.rules[best].when.specificity
                    else "matches too, as specifically, but is listed after"
                )
            considered.append(Considered(rule.name, index, miss))
        return RuleChoice(None if best is None else self.rules[best], best, tuple(considered))


@dataclass(frozen=True, slots=True)
class Considered:
    """A rule of the response's segment that did not apply, and why."""

    rule: str
    index: int
    outcome: str


@dataclass(frozen=True, slots=True)
class RuleChoice:
    """The rule that applies to a response (None: none does), its position in the policy's
    `rules`, and the other rules of the segment that were considered."""

    rule: Rule | None
    index: int | None
    considered: tuple[Considered, ...]
