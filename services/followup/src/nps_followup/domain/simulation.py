"""What a policy would have done with responses followup has already seen, without doing any
of it: the replay behind `nps-followup policy simulate`.

The rules are the policy's own code, called as the consumer calls it: `Policy.rule_for` and
`response_window` with `not_acted_on` (history and old answers), `plan_case` (the rule, the
deadlines on the team's calendar, the actions moved by delivery and quiet hours), `takes_turn`
and `choose_owner` (owners), `held_back` (do-not-contact, no address, SMS consent, frequency
cap). What the replay cannot know, it assumes, and says so here:

- nobody works a simulated case: it stays the customer's active case (a later answer of theirs
  joins it instead of opening another) until its contact deadline, as if the customer were
  reached just in time; an automated case never blocks one;
- round-robin starts at each team's first member;
- the do-not-contact list is today's, for the whole period;
- a message counts as sent when it is not held back (notify's failures are not replayed);
- the frequency cap counts only the replay's own messages (none before the period, and no
  assignment notices: those go to staff).
"""

import heapq
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from nps_events import Customer, ResponseScored, Segment
from nps_followup.domain.cases import (
    HolidaysFor,
    NotActedOn,
    PlannedAction,
    not_acted_on,
    plan_case,
)
from nps_followup.domain.contact_rules import held_back
from nps_followup.domain.ownership import choose_owner, takes_turn
from nps_followup.domain.policy import ActionKind, Policy

#: Stand-ins for the customer's address and number, which the stored record does not keep:
#: the contact rules only ask whether there is one.
_EMAIL = "customer@example.com"
_PHONE = "+10000000000"

UNASSIGNED = "(unassigned)"
AUTOMATED = "(automated)"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What followup keeps of every scored response it consumed, for replays: what the rules
    read, and no PII (whether the customer has an email address or a phone number, not which).
    `received_at` is when followup applied the policy to it."""

    response_id: uuid.UUID
    customer_id: str
    source: str
    survey_id: str
    segment: Segment
    score: int
    revision: int
    responded_at: datetime
    received_at: datetime
    backfill: bool
    has_email: bool
    has_phone: bool
    timezone: str | None
    attributes: dict[str, str]

    @classmethod
    def of(cls, response: ResponseScored, *, received_at: datetime) -> "StoredResponse":
        customer = response.customer
        return cls(
            response_id=response.response_id,
            customer_id=customer.id,
            source=response.source,
            survey_id=response.survey_id,
            segment=response.segment,
            score=response.score,
            revision=response.revision,
            responded_at=response.responded_at,
            received_at=received_at,
            backfill=response.backfill,
            has_email=customer.email is not None,
            has_phone=customer.phone is not None,
            timezone=customer.timezone,
            attributes=dict(customer.attributes),
        )

    def customer(self) -> Customer:
        """The customer as the rules see them: stand-in address and number where they had one."""
        return Customer(
            id=self.customer_id,
            email=_EMAIL if self.has_email else None,
            phone=_PHONE if self.has_phone else None,
            timezone=self.timezone,
            attributes=self.attributes,
        )


@dataclass
class Outcome:
    """What one policy would have done with the responses replayed."""

    responses: int = 0
    #: Responses no rule applies to (and no active case of the customer's takes).
    no_rule: int = 0
    #: Responses not acted on, by reason (`backfill`, `older_than_window`, `holdout`).
    not_acted_on: Counter[str] = field(default_factory=Counter)
    #: Responses that joined the customer's active case instead of opening one.
    attached: int = 0
    #: Cases opened, by team (`(automated)`: messages alone, nobody works them).
    cases_per_team: Counter[str] = field(default_factory=Counter)
    #: Cases a person works, by the UTC day they opened.
    cases_per_day: Counter[date] = field(default_factory=Counter)
    #: Messages and tickets that would have gone out, by (channel, template or priority).
    messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Messages a contact rule held back (not sent), by rule.
    held_back: Counter[str] = field(default_factory=Counter)
    #: Messages a contact rule moved to later (`delivery_hours`, `quiet_hours`), by rule.
    moved: Counter[str] = field(default_factory=Counter)
    #: Contact deadlines per person (`(unassigned)` for cases nobody owns), by the UTC day due.
    deadlines: dict[str, Counter[date]] = field(default_factory=dict)

    def deadline_load(self) -> dict[str, tuple[int, int]]:
        """Per person: (contact deadlines in all, most of them due on one day)."""
        return {
            person: (sum(days.values()), max(days.values()))
            for person, days in sorted(self.deadlines.items())
        }


@dataclass(order=True, frozen=True, slots=True)
class _Due:
    at: datetime
    seq: int
    customer: Customer = field(compare=False)
    action: PlannedAction = field(compare=False)


def simulate(
    responses: Iterable[StoredResponse],
    *,
    policy: Policy,
    holidays_for: HolidaysFor,
    opted_out: Mapping[str, set[str]],
    as_answered: bool = False,
) -> Outcome:
    """Replay `responses` (in the order followup received them) through `policy`. Each is
    replayed at the moment followup received it, with its `backfill` flag; `as_answered`
    replays each at the moment the customer answered instead, as live (imported history then
    counts as if it had come in on the day).

    Actions fire in time order across customers, so that the frequency cap sees every message
    sent before it."""
    replay = _Replay(policy, holidays_for, opted_out)
    for stored in sorted(responses, key=lambda r: (_moment(r, as_answered), r.response_id)):
        now = _moment(stored, as_answered)
        replay.fire_until(now)
        replay.take(stored, now, backfill=stored.backfill and not as_answered)
    replay.fire_until(None)
    return replay.out


def _moment(stored: StoredResponse, as_answered: bool) -> datetime:
    return stored.responded_at if as_answered else stored.received_at


class _Replay:
    def __init__(
        self, policy: Policy, holidays_for: HolidaysFor, opted_out: Mapping[str, set[str]]
    ) -> None:
        self.policy = policy
        self.holidays_for = holidays_for
        self.opted_out = opted_out
        self.cap = policy.contact.frequency_cap.calendar()
        self.out = Outcome()
        self.active: dict[str, datetime] = {}  # customer → their simulated case's deadline
        self.turns: Counter[str] = Counter()
        self.last_message: dict[str, datetime] = {}
        self.queue: list[_Due] = []
        self.seq = 0

    def fire_until(self, moment: datetime | None) -> None:
        """Send (or hold back) every planned action due by `moment` (None: all of them)."""
        while self.queue and (moment is None or self.queue[0].at <= moment):
            due = heapq.heappop(self.queue)
            kind = due.action.kind
            held = held_back(
                kind=kind,
                customer=due.customer,
                opted_out=self.opted_out.get(due.customer.id, set()),
                last_message_at=self.last_message.get(due.customer.id),
                exempt=due.action.exempt_from_frequency_cap,
                cap=self.cap,
                now=due.at,
            )
            if held is not None:
                self.out.held_back[held[0]] += 1
                continue
            detail = due.action.template or due.action.priority.value
            self.out.messages[(kind.value, detail)] += 1
            if kind is not ActionKind.TICKET:
                self.last_message[due.customer.id] = due.at

    def take(self, stored: StoredResponse, now: datetime, *, backfill: bool) -> None:
        """Apply the policy to one response, as the consumer does."""
        out = self.out
        out.responses += 1
        rule = self.policy.rule_for(
            segment=stored.segment,
            source=stored.source,
            survey=stored.survey_id,
            attributes=stored.attributes,
        )
        reason = not_acted_on(
            backfill=backfill,
            responded_at=stored.responded_at,
            now=now,
            window=self.policy.response_window(rule).calendar(),
        )
        working = self.active.get(stored.customer_id)
        if working is not None and working <= now:
            del self.active[stored.customer_id]
            working = None
        if reason is not None:
            if rule is not None or working is not None:
                out.not_acted_on[reason.value] += 1
            else:
                out.no_rule += 1
        elif working is not None:
            out.attached += 1
        elif rule is not None and rule.holds_out(stored.customer_id):
            out.not_acted_on[NotActedOn.HOLDOUT.value] += 1
        else:
            self.open(stored, now)

    def open(self, stored: StoredResponse, now: datetime) -> None:
        customer = stored.customer()
        plan = plan_case(
            response_id=stored.response_id,
            segment=stored.segment,
            source=stored.source,
            survey_id=stored.survey_id,
            customer=customer,
            now=now,
            policy=self.policy,
            holidays_for=self.holidays_for,
        )
        if plan is None:
            self.out.no_rule += 1
            return
        self.out.cases_per_team[plan.team or AUTOMATED] += 1
        for action in plan.actions:
            if action.held_by is not None:
                self.out.moved[action.held_by] += 1
            self.seq += 1
            heapq.heappush(self.queue, _Due(action.at, self.seq, customer, action))
        if plan.team is None or plan.due_at is None or not plan.status.is_active:
            return
        self.out.cases_per_day[now.astimezone(UTC).date()] += 1
        self.active[stored.customer_id] = plan.due_at
        turn = 0
        if takes_turn(plan.owner_rule, stored.attributes):
            turn = self.turns[plan.team]
            self.turns[plan.team] += 1
        owner = None
        if plan.owner_rule is not None:
            owner = choose_owner(
                plan.owner_rule,
                members=self.policy.teams[plan.team].members,
                attributes=stored.attributes,
                turn=turn,
            )
        due_day = plan.due_at.astimezone(UTC).date()
        self.out.deadlines.setdefault(owner or UNASSIGNED, Counter())[due_day] += 1
