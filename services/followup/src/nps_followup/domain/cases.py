"""Cases and their plans: which rule a response falls under, which deadlines its case gets
(stored on the case, so a policy change applies to new cases only), and which actions to
schedule when, on the team's business clock and the customer's own clock (the contact rules
are `contact_rules`'; who owns a case, `ownership`'s)."""

import uuid
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from nps_events import ActionStatus, Actor, Customer, Segment
from nps_events.ids import derive_id
from nps_followup.domain.calendar import BusinessCalendar
from nps_followup.domain.contact_rules import customer_zone, scheduled_delivery
from nps_followup.domain.policy import (
    ActionKind,
    Considered,
    Duration,
    OwnerRule,
    Policy,
    Rule,
    RuleChoice,
    TicketPriority,
)


class CaseStatus(StrEnum):
    """`open` until a person reaches the customer (`contacted`), then `resolved` (with a root
    cause) and `closed`. `automated`: the policy handles it with messages alone; nobody works
    it, and it never blocks a case for the same customer."""

    OPEN = "open"
    CONTACTED = "contacted"
    RESOLVED = "resolved"
    CLOSED = "closed"
    AUTOMATED = "automated"

    @property
    def is_active(self) -> bool:
        """A case a person still has to work: a new response of the customer joins it."""
        return self in (CaseStatus.OPEN, CaseStatus.CONTACTED)


class ActionState(StrEnum):
    """Where an action stands: `scheduled` until its time comes, `planned` once its command
    went to notify, then what notify reports; `skipped` when a contact rule held it back.
    The values are stored and shown by the case API as they are."""

    SCHEDULED = "scheduled"
    #: The command went to notify, which has not reported yet.
    PLANNED = "planned"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"

    @classmethod
    def from_result(cls, status: ActionStatus) -> "ActionState":
        return cls(status.value)


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What notify reported of one action: where it stands now, the provider's id of what was
    sent, and why it failed if it did."""

    action_id: uuid.UUID
    state: ActionState
    provider_message_id: str | None
    reason: str | None


class TimerKind(StrEnum):
    ACTION = "action"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    SECOND_LEVEL = "second_level"
    #: Ask the customer again, some time after their case closed (`domain.resurvey`).
    RESURVEY = "resurvey"


@dataclass(frozen=True, slots=True)
class PlannedAction:
    action_id: uuid.UUID
    kind: ActionKind
    template: str | None
    priority: TicketPriority
    at: datetime
    exempt_from_frequency_cap: bool
    #: The contact rule that moved it from when the policy planned it (`delivery_hours`,
    #: `quiet_hours`), or None.
    held_by: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedTimer:
    timer_id: uuid.UUID
    kind: TimerKind
    fire_at: datetime
    action_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class CasePlan:
    case_id: uuid.UUID
    rule: str
    status: CaseStatus
    team: str | None
    owner_rule: OwnerRule | None
    due_at: datetime | None
    remind_at: datetime | None
    second_level_at: datetime | None
    actions: tuple[PlannedAction, ...]
    timers: tuple[PlannedTimer, ...]
    #: Where the rule is in the policy's `rules`, and the other rules of the segment.
    rule_index: int = 0
    considered: tuple[Considered, ...] = ()

    def why(
        self,
        policy: Policy,
        memo: dict[tuple[object, ...], tuple[object, object]] | None = None,
    ) -> dict[str, object]:
        """Why the case is as it is, for its `opened` timeline entry: the rule and the others
        considered, the calendar and time zone its deadline was counted in, and the contact
        rules that moved an action. With `memo` (one per batch), the rules considered and the
        deadline's calendar, the same for the batch's cases of a rule, are built once and
        shared by their entries (which nothing changes)."""
        key = (self.rule_index, self.considered)
        shared = memo.get(key) if memo is not None else None
        if shared is None:
            shared = self._why_rule(policy)
            if memo is not None:
                memo[key] = shared
        considered, deadline = shared
        return {
            "rule_index": self.rule_index,
            "considered": considered,
            "deadline": deadline,
            "held_back": [
                {"action_id": str(a.action_id), "channel": a.kind.value, "contact_rule": a.held_by}
                for a in self.actions
                if a.held_by is not None
            ],
        }

    def _why_rule(self, policy: Policy) -> tuple[object, object]:
        rule = policy.rules[self.rule_index]
        deadline: dict[str, object] | None = None
        if rule.case is not None:
            team = policy.teams[rule.case.team]
            deadline = {
                "contact_within": str(rule.case.contact_within),
                "team": rule.case.team,
                "timezone": team.timezone,
                "business_days": list(team.business_days),
                "business_hours": f"{team.business_hours.start:%H:%M}-"
                f"{team.business_hours.end:%H:%M}",
                "holidays": "-".join(p for p in (team.country, team.subdivision) if p) or None,
            }
        return (
            [{"rule": c.rule, "index": c.index, "outcome": c.outcome} for c in self.considered],
            deadline,
        )


class NotActedOn(StrEnum):
    """Why followup did not act on a response a rule would have acted on."""

    #: Imported as history (`backfill` on the event).
    BACKFILL = "backfill"
    #: Answered longer ago than the rule's `act_on_responses_within`.
    OLDER_THAN_WINDOW = "older_than_window"
    #: The customer is in the rule's `holdout`: they receive none of its messages, and the
    #: impact figures compare them with those who did (`domain/holdout.py`).
    HOLDOUT = "holdout"


@dataclass(frozen=True, slots=True)
class SetAside:
    """A response followup did not act on, and why: what an operator reads."""

    response_id: uuid.UUID
    customer_id: str
    source: str
    survey_id: str
    segment: Segment
    score: int
    responded_at: datetime
    reason: NotActedOn
    #: The rule that would have applied; None when only the customer's case would have.
    rule: str | None
    #: The rule's `act_on_responses_within` (e.g. `7 days`).
    window: str
    recorded_at: datetime


def not_acted_on(
    *, backfill: bool, responded_at: datetime, now: datetime, window: timedelta
) -> NotActedOn | None:
    """Why a response must open no case and send nothing, or None if it may: history imported
    as back-fill never does, nor a response answered more than `window` before `now` (a
    customer who answered long ago is not told "we will be in touch within two days")."""
    if backfill:
        return NotActedOn.BACKFILL
    if now - responded_at > window:
        return NotActedOn.OLDER_THAN_WINDOW
    return None


def case_id_for(response_id: uuid.UUID) -> uuid.UUID:
    return derive_id("case", str(response_id))


def action_id_for(case_id: uuid.UUID, index: int, kind: str, template: str | None) -> uuid.UUID:
    return _action_id(str(case_id), index, kind, template)


def timer_id_for(case_id: uuid.UUID, kind: TimerKind, detail: str = "") -> uuid.UUID:
    return _timer_id(str(case_id), kind, detail)


# The ids of a case's actions and timers from the case id's text, which a plan writes once for
# all of them (about five per case: ~0.75 µs each; a detractor's plan 61 → 57.5 µs).


def _action_id(case: str, index: int, kind: str, template: str | None) -> uuid.UUID:
    return derive_id("action", case, str(index), kind, template or "")


def _timer_id(case: str, kind: TimerKind, detail: str = "") -> uuid.UUID:
    return derive_id("timer", case, kind.value, detail)


HolidaysFor = Callable[[str], Container[date]]


def calendar_for(policy: Policy, team: str, holidays_for: HolidaysFor) -> BusinessCalendar:
    return BusinessCalendar.of(policy.teams[team], holidays_for(team))


def plan_case(
    *,
    response_id: uuid.UUID,
    segment: Segment,
    source: str,
    survey_id: str,
    customer: Customer,
    now: datetime,
    policy: Policy,
    holidays_for: HolidaysFor,
) -> CasePlan | None:
    """The case the policy opens for this response, or None if no rule applies."""
    return Planner(policy, holidays_for, now).plan(
        response_id=response_id,
        segment=segment,
        source=source,
        survey_id=survey_id,
        customer=customer,
    )


class Planner:
    """`plan_case` for the responses of one batch, planned at one `now`: what is the same for
    many of them is worked out once per batch rather than once per response: the rule chosen
    (and the others considered) for a segment, source, survey and the values of the
    attributes the rules name; a case rule's deadlines from `now` (three walks of the team's
    calendar); an action's delivery time in a customer's time zone; a rule's response
    window. Its plans are those of `plan_case` (a unit test compares them)."""

    __slots__ = (
        "_choices",
        "_deadlines",
        "_deliveries",
        "_keys",
        "_windows",
        "holidays_for",
        "now",
        "policy",
    )

    def __init__(self, policy: Policy, holidays_for: HolidaysFor, now: datetime) -> None:
        self.policy = policy
        self.holidays_for = holidays_for
        self.now = now
        #: The attributes some rule's `when` names: the only ones a choice depends on.
        self._keys = tuple(sorted({k for r in policy.rules for k in r.when.attributes}))
        self._choices: dict[tuple[object, ...], RuleChoice] = {}
        self._deadlines: dict[str, tuple[datetime, datetime | None, datetime | None]] = {}
        self._deliveries: dict[tuple[int, int, str | None], tuple[datetime, str | None]] = {}
        self._windows: dict[str | None, tuple[Duration, timedelta]] = {}

    def choose(
        self, *, segment: Segment, source: str, survey: str, attributes: dict[str, str]
    ) -> RuleChoice:
        """`Policy.choose`, once per distinct segment, source, survey and named attributes."""
        key = (segment, source, survey, *(attributes.get(k) for k in self._keys))
        choice = self._choices.get(key)
        if choice is None:
            choice = self._choices[key] = self.policy.choose(
                segment=segment, source=source, survey=survey, attributes=attributes
            )
        return choice

    def response_window(self, rule: Rule | None) -> tuple[Duration, timedelta]:
        """`Policy.response_window` of `rule`, with its calendar length, once per rule."""
        key = None if rule is None else rule.name
        window = self._windows.get(key)
        if window is None:
            duration = self.policy.response_window(rule)
            window = self._windows[key] = (duration, duration.calendar())
        return window

    def deadlines(self, rule: Rule) -> tuple[datetime, datetime | None, datetime | None]:
        """`deadlines` of a case of `rule` opened at `now`, once per rule."""
        times = self._deadlines.get(rule.name)
        if times is None:
            assert rule.case is not None  # noqa: S101 - callers check
            calendar = calendar_for(self.policy, rule.case.team, self.holidays_for)
            times = self._deadlines[rule.name] = deadlines(rule, self.now, calendar)
        return times

    def plan(
        self,
        *,
        response_id: uuid.UUID,
        segment: Segment,
        source: str,
        survey_id: str,
        customer: Customer,
        choice: RuleChoice | None = None,
    ) -> CasePlan | None:
        """The case the policy opens for this response (`choice`: what `choose` gave for it,
        when the caller asked already), or None if no rule applies."""
        if choice is None:
            choice = self.choose(
                segment=segment, source=source, survey=survey_id, attributes=customer.attributes
            )
        rule = choice.rule
        if rule is None or choice.index is None:
            return None
        now, policy = self.now, self.policy
        case_id = case_id_for(response_id)
        case = str(case_id)
        planned = []
        for index, a in enumerate(rule.actions):
            # The same for every customer of a zone: `customer_zone` reads only `timezone`.
            key = (choice.index, index, customer.timezone)
            delivery = self._deliveries.get(key)
            if delivery is None:
                delivery = self._deliveries[key] = scheduled_delivery(
                    a.kind,
                    planned=now + a.after.calendar(),
                    delayed=a.after.amount > 0,
                    zone=customer_zone(customer, policy),
                    policy=policy,
                )
            planned.append(
                PlannedAction(
                    action_id=_action_id(case, index, a.kind.value, a.template),
                    kind=a.kind,
                    template=a.template,
                    priority=a.priority,
                    at=delivery[0],
                    exempt_from_frequency_cap=a.exempt_from_frequency_cap,
                    held_by=delivery[1],
                )
            )
        actions = tuple(planned)
        timers = [
            PlannedTimer(
                _timer_id(case, TimerKind.ACTION, str(a.action_id)),
                TimerKind.ACTION,
                a.at,
                a.action_id,
            )
            for a in actions
        ]
        due_at = remind_at = second_level_at = None
        if rule.case is not None:
            due_at, remind_at, second_level_at = self.deadlines(rule)
            timers.extend(_ladder_timers(case, due_at, remind_at, second_level_at))
        return CasePlan(
            case_id=case_id,
            rule=rule.name,
            status=CaseStatus.OPEN if rule.case is not None else CaseStatus.AUTOMATED,
            team=rule.case.team if rule.case is not None else None,
            owner_rule=rule.case.owner if rule.case is not None else None,
            due_at=due_at,
            remind_at=remind_at,
            second_level_at=second_level_at,
            actions=actions,
            timers=tuple(timers),
            rule_index=choice.index,
            considered=choice.considered,
        )


@dataclass(frozen=True, slots=True)
class Ladder:
    """A case's contact deadline, the owner's reminder before it and the second-level
    escalation after it, with the timers that fire them."""

    due_at: datetime
    remind_at: datetime | None
    second_level_at: datetime | None
    timers: tuple[PlannedTimer, ...]


def plan_ladder(
    case_id: uuid.UUID, rule: Rule, now: datetime, calendar: BusinessCalendar, *, round_: str = ""
) -> Ladder:
    """The escalation ladder of a case that needs a person's contact from `now` on. `round_`
    tells apart the timers of a later ladder (a reopened case) from the opening one's, whose
    ids stay as they always were."""
    due_at, remind_at, second_level_at = deadlines(rule, now, calendar)
    timers = _ladder_timers(str(case_id), due_at, remind_at, second_level_at, round_)
    return Ladder(due_at, remind_at, second_level_at, timers)


def _ladder_timers(
    case: str,
    due_at: datetime,
    remind_at: datetime | None,
    second_level_at: datetime | None,
    round_: str = "",
) -> tuple[PlannedTimer, ...]:
    """The timers of a ladder with these deadlines, for the case whose id's text is `case`."""
    timers = []
    if remind_at is not None:
        timers.append(
            PlannedTimer(_timer_id(case, TimerKind.REMINDER, round_), TimerKind.REMINDER, remind_at)
        )
    timers.append(
        PlannedTimer(_timer_id(case, TimerKind.ESCALATION, round_), TimerKind.ESCALATION, due_at)
    )
    if second_level_at is not None:
        timers.append(
            PlannedTimer(
                _timer_id(case, TimerKind.SECOND_LEVEL, round_),
                TimerKind.SECOND_LEVEL,
                second_level_at,
            )
        )
    return tuple(timers)


def deadlines(
    rule: Rule, now: datetime, calendar: BusinessCalendar
) -> tuple[datetime, datetime | None, datetime | None]:
    """(contact due, owner reminder, second-level escalation) of a case opened `now`."""
    assert rule.case is not None  # noqa: S101 - callers check
    case = rule.case
    due_at = calendar.add(now, case.contact_within)
    remind_at = None
    if case.remind_before is not None:
        lead = calendar.length(case.remind_before)
        window = calendar.length(case.contact_within)
        if lead < window:
            if case.contact_within.is_business:
                remind_at = calendar.add_business_time(now, window - lead)
            else:
                remind_at = due_at - lead
    second_level_at = (
        calendar.add(due_at, case.second_level_after)
        if case.second_level_after is not None
        else None
    )
    return due_at, remind_at, second_level_at


@dataclass(frozen=True, slots=True)
class Action:
    action_id: uuid.UUID
    channel: str
    template: str | None
    state: ActionState
    provider_message_id: str | None
    reason: str | None
    requested_at: datetime
    updated_at: datetime
    scheduled_for: datetime | None = None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    entry_id: uuid.UUID
    kind: str
    at: datetime
    actor: Actor | None
    details: dict[str, object] = field(default_factory=dict)


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
    due_at: datetime | None
    rule: str = ""
    team: str | None = None
    owner: str | None = None
    remind_at: datetime | None = None
    second_level_at: datetime | None = None
    escalation_level: int = 0
    first_contact_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    root_cause: str | None = None
    latest_score: int | None = None
    recovered: bool = False
    customer: Customer | None = None
    #: Themes of the comment, as scoring tagged them.
    themes: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()


def is_breached(case: Case, now: datetime) -> bool:
    """The case missed its contact deadline: nobody reached the customer by `due_at`, either
    because the first contact came late or because there is none yet and `due_at` has passed.
    A case without a deadline (automated) never breaches. The figures count these; the
    breached-cases gauge counts those still open. The repository's SQL says the same
    (`adapters.case_reads.breached`), and a test checks that the two agree."""
    if case.due_at is None:
        return False
    if case.first_contact_at is None:
        return case.due_at < now
    return case.first_contact_at > case.due_at


def is_recovered(first: Segment, latest: Segment) -> bool:
    """A detractor who later scores as a promoter is a recovered customer."""
    return first is Segment.DETRACTOR and latest is Segment.PROMOTER
