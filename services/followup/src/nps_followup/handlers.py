"""Followup's use cases. Each runs inside the caller's unit of work."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from nps_events import (
    ActionResultReported,
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
    ContactOptOut,
    ContactOutcome,
    CreateTicket,
    Customer,
    Event,
    NotifyStaff,
    QuietHours,
    RaiseTicketPriority,
    ResponseScored,
    SendEmail,
    SendSms,
    StaffReason,
    TicketStatusChanged,
)
from nps_events import TicketPriority as EventTicketPriority
from nps_events.ids import derive_id
from nps_events.text import email_error, is_staff_recipient
from nps_followup.adapters.repository import (
    ActionRow,
    DueTimer,
    FigureRow,
    FollowupRepository,
)
from nps_followup.domain import lifecycle
from nps_followup.domain.access import CaseScope
from nps_followup.domain.cases import (
    Action,
    ActionState,
    Case,
    CasePlan,
    CaseStatus,
    HolidaysFor,
    TimelineEntry,
    TimerKind,
    account_owner,
    calendar_for,
    choose_owner,
    contact_block,
    is_recovered,
    plan_case,
    plan_ladder,
)
from nps_followup.domain.figures import Rates, rates
from nps_followup.domain.policy import ActionKind, OwnerRule, Policy, Rule, TicketPriority
from nps_kit.logging import get_logger

CONSUMER = "followup"

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PolicyInForce:
    """The validated policy and the teams' public holidays, built once at start-up."""

    policy: Policy
    holidays_for: HolidaysFor


class CaseNotFound(LookupError):  # noqa: N818 - named for what it is
    pass


class UnknownOwner(ValueError):  # noqa: N818 - named for what it is
    """An owner who is not a member of the case's team: never emailed the case."""

    def __init__(self, owner: str, team: str | None, members: frozenset[str]) -> None:
        where = f"team {team!r}" if team else "any team"
        super().__init__(f"{owner} is not a member of {where} in the follow-up policy")
        self.owner = owner
        self.team = team
        self.members = members


def team_members(policy: Policy, team: str | None) -> frozenset[str]:
    """Who may own a case of `team` (every team's people when it has none): its members, its
    lead and its second level, as the policy names them (lower-cased)."""
    teams = [policy.teams[team]] if team in policy.teams else list(policy.teams.values())
    return frozenset(
        person.lower()
        for t in teams
        for person in (*t.members, t.lead, t.second_level)
        if person is not None
    )


def _entry(
    case_id: uuid.UUID,
    kind: str,
    now: datetime,
    *,
    origin: str,
    actor: Actor,
    **details: Any,
) -> TimelineEntry:
    """A timeline entry whose id derives from what caused it (`origin`), so a redelivered
    cause records it once. An automatic step's `actor` is `Actor.system(rule)`."""
    return TimelineEntry(
        derive_id("timeline", str(case_id), kind, origin), kind, now, actor, details
    )


def _customer_of(case: Case) -> Customer:
    return case.customer or Customer(
        id=case.customer_id, email=case.customer_email, name=case.customer_name
    )


# --- responses --------------------------------------------------------------------------


async def open_cases(
    repo: FollowupRepository,
    scored: list[ResponseScored],
    *,
    now: datetime,
    policy: PolicyInForce,
) -> list[Case]:
    """Apply the policy to each new response: open its case with the deadlines of the rule in
    force, assign its owner, schedule its actions (those due now are requested at once).

    An update of a response that already has a case (a late comment, a changed score) is
    recorded on that case. A response of a customer who has a case a person still works is
    attached to it instead of opening a second one. A later answer of a customer whose earlier
    case is done is recorded on that case too (the score change: a recovered detractor).

    The whole batch takes a fixed number of statements, whatever its size."""
    fresh = await repo.claim(CONSUMER, (str(s.event_id()) for s in scored))
    existing = await repo.cases_for_responses(s.response_id for s in scored)
    todo: list[ResponseScored] = []
    for response in scored:
        if str(response.event_id()) not in fresh:
            continue
        fresh.discard(str(response.event_id()))
        if response.response_id in existing:
            await repo.update_case_response(
                existing[response.response_id],
                score=response.score,
                segment=response.segment,
                comment=response.comment,
            )
        else:
            todo.append(response)
    customers = {r.customer.id for r in todo}
    active = await repo.active_cases_of(customers)
    earlier = await repo.latest_worked_cases_of(customers - active.keys())
    batch = _Opening(now=now)
    for response in todo:
        customer = response.customer.id
        if response.response_id in batch.response_ids:
            continue  # two versions of a new response in one batch: the first opens the case
        if customer in active:
            active[customer] = batch.attach(active[customer], response)
            continue
        if customer in earlier:
            earlier[customer] = batch.attach(earlier[customer], response)
        plan = plan_case(
            response_id=response.response_id,
            segment=response.segment,
            source=response.source,
            survey_id=response.survey_id,
            customer=response.customer,
            now=now,
            policy=policy.policy,
            holidays_for=policy.holidays_for,
        )
        if plan is not None:
            case = batch.add(response, plan)
            if case.status.is_active:
                active[customer] = case
    await batch.assign_owners(repo, policy.policy)
    return await batch.write(repo, policy.policy)


@dataclass
class _Opening:
    """The cases one batch of responses opens, and what it records on existing cases."""

    now: datetime
    new: dict[uuid.UUID, tuple[Case, CasePlan, ResponseScored]] = field(default_factory=dict)
    response_ids: set[uuid.UUID] = field(default_factory=set)
    scores: dict[uuid.UUID, Case] = field(default_factory=dict)
    timeline: list[tuple[uuid.UUID, TimelineEntry]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    notices: list[tuple[uuid.UUID, Action]] = field(default_factory=list)
    recipients: dict[uuid.UUID, str] = field(default_factory=dict)

    def add(self, response: ResponseScored, plan: CasePlan) -> Case:
        case = Case(
            case_id=plan.case_id,
            response_id=response.response_id,
            source=response.source,
            survey_id=response.survey_id,
            customer_id=response.customer.id,
            customer_email=response.customer.email,
            customer_name=response.customer.name,
            customer=response.customer,
            segment=response.segment,
            score=response.score,
            comment=response.comment,
            status=plan.status,
            opened_at=self.now,
            due_at=plan.due_at,
            remind_at=plan.remind_at,
            second_level_at=plan.second_level_at,
            rule=plan.rule,
            team=plan.team,
            actions=tuple(
                Action(
                    action_id=a.action_id,
                    channel=a.kind.value,
                    template=a.template,
                    state=ActionState.SCHEDULED,
                    provider_message_id=None,
                    reason=None,
                    requested_at=self.now,
                    updated_at=self.now,
                    scheduled_for=a.at,
                )
                for a in plan.actions
            ),
        )
        self.new[case.case_id] = (case, plan, response)
        self.response_ids.add(response.response_id)
        return case

    def attach(self, case: Case, response: ResponseScored) -> Case:
        """Record a later answer of the customer on `case`; return the case as it becomes."""
        previous = case.latest_score if case.latest_score is not None else case.score
        recovered = is_recovered(case.segment, response.segment)
        entry = _entry(
            case.case_id,
            "response_attached",
            self.now,
            origin=str(response.event_id()),
            actor=Actor.system(case.rule),
            response_id=str(response.response_id),
            previous_score=previous,
            score=response.score,
            segment=response.segment.value,
            recovered=recovered,
        )
        case = replace(case, latest_score=response.score, recovered=recovered)
        if case.case_id in self.new:
            _, plan, opening = self.new[case.case_id]
            self.new[case.case_id] = (case, plan, opening)
        else:
            self.scores[case.case_id] = case
        self.timeline.append((case.case_id, entry))
        self.events.append(
            CaseResponseAttached(
                entry_id=entry.entry_id,
                case_id=case.case_id,
                customer_id=case.customer_id,
                at=self.now,
                response_id=response.response_id,
                previous_score=previous,
                score=response.score,
                segment=response.segment,
                recovered=recovered,
                actor=entry.actor,
            )
        )
        return case

    async def assign_owners(self, repo: FollowupRepository, policy: Policy) -> None:
        """Owners by rule; round-robin turns reserved per team in one statement each."""
        needs_turn: dict[str, list[uuid.UUID]] = {}
        for case, plan, response in self.new.values():
            by_account = plan.owner_rule is OwnerRule.ACCOUNT_OWNER and bool(
                account_owner(response.customer.attributes)
            )
            takes_turn = plan.owner_rule not in (None, OwnerRule.UNASSIGNED) and not by_account
            if plan.team is not None and takes_turn:
                needs_turn.setdefault(plan.team, []).append(case.case_id)
        turns: dict[uuid.UUID, int] = {}
        for team, case_ids in sorted(needs_turn.items()):
            first = await repo.reserve_turns(team, len(case_ids))
            turns.update({case_id: first + i for i, case_id in enumerate(case_ids)})
        for case_id, (case, plan, response) in list(self.new.items()):
            if plan.team is None or plan.owner_rule is None:
                continue
            owner = choose_owner(
                plan.owner_rule,
                members=policy.teams[plan.team].members,
                attributes=response.customer.attributes,
                turn=turns.get(case_id, 0),
            )
            self.new[case_id] = (replace(case, owner=owner), plan, response)

    async def write(self, repo: FollowupRepository, policy: Policy) -> list[Case]:
        new = list(self.new.values())
        inserted = await repo.add_cases(
            [case for case, _, _ in new],
            [(case.case_id, t) for case, plan, _ in new for t in plan.timers],
            fired={t.timer_id for _, plan, _ in new for t in plan.timers if t.fire_at <= self.now},
            exempt={
                a.action_id for _, p, _ in new for a in p.actions if a.exempt_from_frequency_cap
            },
            priority={
                a.action_id: a.priority.value
                for _, p, _ in new
                for a in p.actions
                if a.kind is ActionKind.TICKET
            },
        )
        opened: list[Case] = []
        due_now: list[DueTimer] = []
        for case, plan, response in new:
            if case.case_id not in inserted:
                continue
            opened.append(case)
            self._opened(case, plan, origin=str(response.event_id()), policy=policy)
            due_now += [
                DueTimer(t.timer_id, case.case_id, t.kind, t.action_id, t.fire_at)
                for t in plan.timers
                if t.fire_at <= self.now
            ]
        await repo.record_latest_scores(list(self.scores.values()))
        await repo.add_timelines(self.timeline)
        await repo.add_actions_of(self.notices, exempt=set(), recipient=self.recipients)
        await repo.publish_later(self.events, now=self.now)
        if due_now:
            rows = {
                a.action_id: ActionRow(
                    a.action_id,
                    case.case_id,
                    a.kind.value,
                    a.template,
                    a.priority.value,
                    ActionState.SCHEDULED,
                    a.exempt_from_frequency_cap,
                )
                for case, plan, _ in new
                for a in plan.actions
            }
            cases = {case.case_id: case for case in opened}
            await _fire(repo, due_now, now=self.now, policy=policy, opened=(cases, rows))
        return opened

    def _opened(self, case: Case, plan: CasePlan, *, origin: str, policy: Policy) -> None:
        now = self.now
        opened = _entry(
            case.case_id,
            "opened",
            now,
            origin=origin,
            actor=Actor.system(plan.rule),
            rule=plan.rule,
            status=plan.status.value,
            due_at=plan.due_at.isoformat() if plan.due_at else None,
        )
        self.timeline.append((case.case_id, opened))
        if case.status is CaseStatus.OPEN and case.due_at is not None:
            self.events.append(
                CaseOpened(
                    case_id=case.case_id,
                    response_id=case.response_id,
                    customer_id=case.customer_id,
                    segment=case.segment,
                    score=case.score,
                    opened_at=now,
                    due_at=case.due_at,
                    actor=opened.actor,
                )
            )
        if case.owner is not None:
            assigned = _entry(
                case.case_id,
                "assigned",
                now,
                origin=origin,
                actor=Actor.system(plan.rule),
                owner=case.owner,
                by_rule=True,
            )
            self.timeline.append((case.case_id, assigned))
            self.events.append(
                CaseAssigned(
                    entry_id=assigned.entry_id,
                    case_id=case.case_id,
                    customer_id=case.customer_id,
                    at=now,
                    owner=case.owner,
                    by_rule=True,
                    actor=assigned.actor,
                )
            )
            if case.status is CaseStatus.OPEN:
                action, notice = _assignment_notice(
                    case, case.owner, origin=origin, now=now, policy=policy
                )
                self.notices.append((case.case_id, action))
                self.recipients[action.action_id] = case.owner
                self.events.append(notice)


def _assignment_notice(
    case: Case, owner: str, *, origin: str, now: datetime, policy: Policy
) -> tuple[Action, NotifyStaff]:
    """Tell a person that a case a person must work is now theirs, with its deadline. The
    action's id derives from what assigned it, so a redelivery asks once."""
    action_id = derive_id("staff-assigned", origin)
    return (
        _requested(action_id, "staff", f"case_{StaffReason.ASSIGNED.value}", now),
        NotifyStaff(
            action_id=action_id,
            case_id=case.case_id,
            customer_id=case.customer_id,
            recipient=owner,
            role="owner",
            reason=StaffReason.ASSIGNED,
            level=0,
            # The contact deadline, while nobody has reached the customer yet.
            due_at=case.due_at if case.status is CaseStatus.OPEN else None,
            segment=case.segment,
            score=case.score,
            requested_at=now,
            **_notice_details(case, policy),
        ),
    )


def _notice_details(case: Case, policy: Policy) -> dict[str, str | None]:
    """What a person told about a case needs to act on it: who the customer is and what they
    wrote, and the team (whose sender identity notify uses, and whose time zone the deadline
    is shown in)."""
    team = policy.teams.get(case.team or "")
    return {
        "team": case.team,
        "timezone": team.timezone if team is not None else None,
        "customer_name": case.customer_name,
        "comment": case.comment,
    }


# --- timers -------------------------------------------------------------------------------


async def sweep_due_timers(
    repo: FollowupRepository, *, now: datetime, policy: PolicyInForce, limit: int
) -> int:
    """Fire up to `limit` due timers; return how many fired. Safe with any number of
    sweepers: each claims its timers with SKIP LOCKED, in one transaction with their effects."""
    due = await repo.claim_due_timers(now, limit)
    if due:
        await _fire(repo, due, now=now, policy=policy.policy)
    return len(due)


@dataclass
class _Writes:
    """What one sweep writes, gathered so that it takes a handful of statements, not a few per
    timer (10,000 escalations must take seconds)."""

    timeline: list[tuple[uuid.UUID, TimelineEntry]] = field(default_factory=list)
    actions: list[tuple[uuid.UUID, Action]] = field(default_factory=list)
    priorities: dict[uuid.UUID, str] = field(default_factory=dict)
    recipients: dict[uuid.UUID, str] = field(default_factory=dict)
    states: list[tuple[uuid.UUID, ActionState, str | None]] = field(default_factory=list)
    cases: dict[uuid.UUID, Case] = field(default_factory=dict)
    messaged: set[str] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)

    async def flush(self, repo: FollowupRepository, now: datetime) -> None:
        await repo.set_action_states(self.states, at=now)
        await repo.add_actions_of(
            self.actions, exempt=set(), priority=self.priorities, recipient=self.recipients
        )
        await repo.save_cases(list(self.cases.values()))
        await repo.add_timelines(self.timeline)
        await repo.set_last_messages(self.messaged, now)
        await repo.publish_later(self.events, now=now)


async def _fire(
    repo: FollowupRepository,
    due: list[DueTimer],
    *,
    now: datetime,
    policy: Policy,
    opened: tuple[dict[uuid.UUID, Case], dict[uuid.UUID, ActionRow]] | None = None,
) -> None:
    """Fire `due` timers. `opened`: the cases (and their actions) this transaction has just
    inserted, with those timers already recorded as fired: nothing to read back or mark."""
    if opened is None:
        cases = await repo.cases_by_id(t.case_id for t in due)
        actions = await repo.actions_by_id(t.action_id for t in due if t.action_id is not None)
    else:
        cases, actions = opened
    customer_ids = [c.customer_id for c in cases.values()]
    opted_out = await repo.opted_out(customer_ids)
    last = await repo.last_messages(customer_ids)
    escalating = {
        t.case_id
        for t in due
        if t.kind in (TimerKind.ESCALATION, TimerKind.SECOND_LEVEL)
        and cases[t.case_id].status is CaseStatus.OPEN
    }
    tickets = await repo.tickets_of(escalating)
    writes = _Writes()
    for timer in due:
        case = cases[timer.case_id]
        if timer.kind is TimerKind.ACTION and timer.action_id is not None:
            row = actions.get(timer.action_id)
            if row is None or row.state is not ActionState.SCHEDULED:
                continue
            _dispatch(
                case,
                row,
                timer,
                now=now,
                policy=policy,
                opted_out=opted_out,
                last=last,
                into=writes,
            )
        elif case.status is CaseStatus.OPEN:
            cases[case.case_id] = _climb(
                case, timer, now=now, policy=policy, ticket=tickets.get(case.case_id), into=writes
            )
    if opened is None:
        await repo.finish_timers([t.timer_id for t in due], now)
    await writes.flush(repo, now)


def _dispatch(
    case: Case,
    row: ActionRow,
    timer: DueTimer,
    *,
    now: datetime,
    policy: Policy,
    opted_out: dict[str, set[str]],
    last: dict[str, datetime],
    into: _Writes,
) -> None:
    kind = ActionKind(row.channel)
    customer = _customer_of(case)
    blocked = contact_block(
        kind=kind,
        customer=customer,
        opted_out=opted_out.get(case.customer_id, set()),
        last_message_at=last.get(case.customer_id),
        exempt=row.exempt_from_cap,
        cap=policy.contact.frequency_cap.calendar(),
        now=now,
    )
    if blocked is not None:
        into.states.append((row.action_id, ActionState.SKIPPED, blocked))
        entry = _entry(
            case.case_id,
            "action_skipped",
            now,
            origin=str(timer.timer_id),
            actor=Actor.system(case.rule),
            action_id=str(row.action_id),
            channel=row.channel,
            reason=blocked,
        )
        into.timeline.append((case.case_id, entry))
        log.info("action.skipped", case_id=str(case.case_id), channel=row.channel)
        return
    into.states.append((row.action_id, ActionState.REQUESTED, None))
    if kind is ActionKind.TICKET:
        into.events.append(
            CreateTicket(
                action_id=row.action_id,
                case_id=case.case_id,
                customer=customer,
                priority=EventTicketPriority(row.priority or TicketPriority.NORMAL.value),
                title=(
                    f"NPS {case.segment.value} ({case.score}/10)"
                    + (f": contact by {case.due_at:%Y-%m-%d %H:%M} UTC" if case.due_at else "")
                ),
                score=case.score,
                segment=case.segment,
                comment=case.comment,
                requested_at=now,
            )
        )
        return
    last[case.customer_id] = now
    into.messaged.add(case.customer_id)
    assert row.template is not None  # noqa: S101 - the policy requires one for messages
    if kind is ActionKind.SMS:
        into.events.append(
            SendSms(
                action_id=row.action_id,
                case_id=case.case_id,
                customer=customer,
                template=row.template,
                locale=customer.locale or "en",
                requested_at=now,
                team=case.team,
                quiet_hours=QuietHours(
                    timezone=customer.timezone or policy.contact.default_customer_timezone,
                    start=f"{policy.contact.quiet_hours.start:%H:%M}",
                    end=f"{policy.contact.quiet_hours.end:%H:%M}",
                ),
            )
        )
        return
    into.events.append(
        SendEmail(
            action_id=row.action_id,
            case_id=case.case_id,
            customer=customer,
            template=row.template,
            locale=customer.locale or "en",
            score=case.score,
            comment=case.comment,
            requested_at=now,
            team=case.team,
            # A tool (`webhook:<name>`) cannot be replied to; a stored owner checked before
            # owners were is no one either.
            owner=case.owner if case.owner and email_error(case.owner) is None else None,
        )
    )


def _climb(
    case: Case,
    timer: DueTimer,
    *,
    now: datetime,
    policy: Policy,
    ticket: uuid.UUID | None,
    into: _Writes,
) -> Case:
    """One step of the escalation ladder for a case nobody has contacted yet."""
    team = policy.teams.get(case.team or "")
    lead = team.lead if team is not None else None
    origin = str(timer.timer_id)
    if timer.kind is TimerKind.REMINDER:
        # An owner stored before owners were checked may be no one a notice can reach.
        owner = case.owner if case.owner and is_staff_recipient(case.owner) else None
        recipient, role, level, reason = owner or lead, "owner", 0, StaffReason.REMINDER
    elif timer.kind is TimerKind.ESCALATION:
        recipient, role, level, reason = lead, "lead", 1, StaffReason.ESCALATION
    else:
        second = team.second_level if team is not None else None
        recipient, role, level, reason = second or lead, "second_level", 2, StaffReason.ESCALATION
    due_at = case.due_at or now
    entry = _entry(
        case.case_id,
        "reminded" if level == 0 else f"escalated_{level}",
        now,
        origin=origin,
        actor=Actor.system(case.rule),
        recipient=recipient,
        level=level,
    )
    into.timeline.append((case.case_id, entry))
    if level == 0:
        into.events.append(
            CaseReminded(
                entry_id=entry.entry_id,
                case_id=case.case_id,
                customer_id=case.customer_id,
                at=now,
                due_at=due_at,
                actor=entry.actor,
            )
        )
    else:
        case = replace(case, escalation_level=max(case.escalation_level, level))
        into.cases[case.case_id] = case
        into.events.append(
            CaseEscalated(
                entry_id=entry.entry_id,
                case_id=case.case_id,
                customer_id=case.customer_id,
                at=now,
                level=level,
                due_at=due_at,
                actor=entry.actor,
            )
        )
    if recipient is not None:
        action_id = derive_id("staff", origin)
        into.actions.append(
            (case.case_id, _requested(action_id, "staff", f"case_{reason.value}", now))
        )
        into.recipients[action_id] = recipient
        into.events.append(
            NotifyStaff(
                action_id=action_id,
                case_id=case.case_id,
                customer_id=case.customer_id,
                recipient=recipient,
                role=role,
                reason=reason,
                level=level,
                due_at=case.due_at,
                segment=case.segment,
                score=case.score,
                requested_at=now,
                **_notice_details(case, policy),
            )
        )
    if ticket is not None and level > 0:
        action_id = derive_id("raise-ticket", origin)
        priority = EventTicketPriority.URGENT
        into.actions.append((case.case_id, _requested(action_id, "ticket", "raise_priority", now)))
        into.priorities[action_id] = priority.value
        into.events.append(
            RaiseTicketPriority(
                action_id=action_id,
                case_id=case.case_id,
                customer_id=case.customer_id,
                ticket_action_id=ticket,
                priority=priority,
                requested_at=now,
            )
        )
    return case


def _requested(action_id: uuid.UUID, channel: str, template: str, now: datetime) -> Action:
    return Action(
        action_id=action_id,
        channel=channel,
        template=template,
        state=ActionState.REQUESTED,
        provider_message_id=None,
        reason=None,
        requested_at=now,
        updated_at=now,
    )


# --- action results and opt-outs -----------------------------------------------------------


async def record_action_results(
    repo: FollowupRepository, results: list[ActionResultReported], *, now: datetime
) -> list[uuid.UUID]:
    """Record each reported outcome on its action; return the ids of results for unknown actions."""
    fresh = await repo.claim(CONSUMER, (str(r.event_id()) for r in results))
    unknown: list[uuid.UUID] = []
    for result in results:
        if str(result.event_id()) not in fresh:
            continue
        fresh.discard(str(result.event_id()))
        found = await repo.record_action_outcome(
            result.action_id,
            state=ActionState.from_result(result.status),
            provider_message_id=result.provider_message_id,
            reason=result.reason,
            at=now,
        )
        if not found:
            unknown.append(result.event_id())
    return unknown


async def record_ticket_changes(
    repo: FollowupRepository, changes: list[TicketStatusChanged], *, now: datetime
) -> list[uuid.UUID]:
    """Record on its case each change a helpdesk reported of a ticket npsloop opened (an agent
    solved it, say). The case is not resolved by it: the owner resolves it with a root cause,
    and sees on the timeline that the helpdesk's side is done. Returns the ids of changes for
    unknown cases."""
    fresh = await repo.claim(CONSUMER, (str(c.event_id()) for c in changes))
    unknown: list[uuid.UUID] = []
    entries: list[tuple[uuid.UUID, TimelineEntry]] = []
    known = await repo.cases_by_id(c.case_id for c in changes)
    for change in changes:
        if str(change.event_id()) not in fresh:
            continue
        fresh.discard(str(change.event_id()))
        if change.case_id not in known:
            unknown.append(change.event_id())
            continue
        entries.append(
            (
                change.case_id,
                _entry(
                    change.case_id,
                    "ticket_status",
                    change.occurred_at,
                    origin=str(change.event_id()),
                    actor=Actor(kind=ActorKind.PROGRAM, id=change.helpdesk, name=change.helpdesk),
                    helpdesk=change.helpdesk,
                    ticket_id=change.ticket_id,
                    status=change.status,
                    previous_status=change.previous_status,
                ),
            )
        )
    await repo.add_timelines(entries)
    return unknown


async def record_opt_outs(
    repo: FollowupRepository, opt_outs: list[ContactOptOut], *, now: datetime
) -> None:
    """Put each customer who opted out on the do-not-contact list (for the given channel)."""
    fresh = await repo.claim(CONSUMER, (str(o.event_id()) for o in opt_outs))
    for opt_out in opt_outs:
        if str(opt_out.event_id()) in fresh:
            await repo.add_opt_out(
                opt_out.customer_id,
                opt_out.scope.value,
                source=opt_out.source,
                reason=opt_out.reason or f"provider event {opt_out.provider_event_id}",
                at=opt_out.occurred_at,
            )


# --- the lifecycle, driven by people ------------------------------------------------------


async def _load(repo: FollowupRepository, case_id: uuid.UUID) -> Case:
    case = await repo.get_case(case_id, for_update=True)
    if case is None:
        raise CaseNotFound(f"no case {case_id}")
    return case


async def _transition(
    repo: FollowupRepository, case: Case, entry: TimelineEntry, event: Event, *, now: datetime
) -> Case:
    await repo.save_case(case)
    await repo.add_timeline(case.case_id, [entry])
    await repo.publish_later([event], now=now)
    found = await repo.get_case(case.case_id)
    assert found is not None  # noqa: S101 - we hold its lock
    return found


async def assign_case(
    repo: FollowupRepository,
    case_id: uuid.UUID,
    *,
    owner: str | None,
    actor: Actor,
    now: datetime,
    policy: PolicyInForce,
) -> Case:
    """Give the case an owner: the one named, who must be a member of the case's team (any
    team's when it has none: `UnknownOwner`), or by the rule (account owner, round-robin)."""
    case = await _load(repo, case_id)
    by_rule = owner is None
    if owner is not None:
        members = team_members(policy.policy, case.team)
        if owner.lower() not in members:
            raise UnknownOwner(owner, case.team, members)
    if owner is None:
        team = policy.policy.teams.get(case.team or "")
        if team is None or case.team is None:
            raise lifecycle.LifecycleError("the case has no team to choose an owner from")
        attributes = _customer_of(case).attributes
        turn = 0 if account_owner(attributes) else await repo.next_turn(case.team)
        owner = choose_owner(
            OwnerRule.ACCOUNT_OWNER, members=team.members, attributes=attributes, turn=turn
        )
        assert owner is not None  # noqa: S101 - account_owner never leaves it unassigned
    changed = lifecycle.assign(case, owner)
    entry_id = uuid.uuid4()
    entry = TimelineEntry(entry_id, "assigned", now, actor, {"owner": owner, "by_rule": by_rule})
    if owner not in (case.owner, actor.name):
        # A new owner who did not take the case themselves learns of it.
        action, notice = _assignment_notice(
            changed, owner, origin=str(entry_id), now=now, policy=policy.policy
        )
        await repo.add_actions(
            case.case_id, [action], exempt=set(), recipient={action.action_id: owner}
        )
        await repo.publish_later([notice], now=now)
    return await _transition(
        repo,
        changed,
        entry,
        CaseAssigned(
            entry_id=entry_id,
            case_id=case.case_id,
            customer_id=case.customer_id,
            at=now,
            owner=owner,
            by_rule=by_rule,
            actor=actor,
        ),
        now=now,
    )


async def record_contact(
    repo: FollowupRepository,
    case_id: uuid.UUID,
    *,
    channel: str,
    outcome: ContactOutcome,
    note: str | None,
    actor: Actor,
    now: datetime,
) -> Case:
    """A person tried to reach the customer. The first `reached` stops the escalation ladder."""
    case = await _load(repo, case_id)
    changed, within = lifecycle.record_contact(case, outcome, now)
    if changed.first_contact_at is not None and case.first_contact_at is None:
        await repo.cancel_ladder(case.case_id, now)
    entry_id = uuid.uuid4()
    details: dict[str, object] = {
        "channel": channel,
        "outcome": outcome.value,
        "note": note,
        "within_sla": within,
    }
    return await _transition(
        repo,
        changed,
        TimelineEntry(entry_id, "contact", now, actor, details),
        CaseContactRecorded(
            entry_id=entry_id,
            case_id=case.case_id,
            customer_id=case.customer_id,
            at=now,
            channel=channel,
            outcome=outcome,
            within_sla=within,
            actor=actor,
        ),
        now=now,
    )


async def resolve_case(
    repo: FollowupRepository,
    case_id: uuid.UUID,
    *,
    root_cause: str,
    note: str | None,
    actor: Actor,
    now: datetime,
    policy: PolicyInForce,
) -> Case:
    case = await _load(repo, case_id)
    changed = lifecycle.resolve(case, root_cause, policy.policy.root_causes, now)
    await repo.cancel_ladder(case.case_id, now)
    entry_id = uuid.uuid4()
    return await _transition(
        repo,
        changed,
        TimelineEntry(entry_id, "resolved", now, actor, {"root_cause": root_cause, "note": note}),
        CaseResolved(
            entry_id=entry_id,
            case_id=case.case_id,
            customer_id=case.customer_id,
            at=now,
            root_cause=root_cause,
            actor=actor,
        ),
        now=now,
    )


async def close_case(
    repo: FollowupRepository, case_id: uuid.UUID, *, actor: Actor, now: datetime
) -> Case:
    case = await _load(repo, case_id)
    changed = lifecycle.close(case, now)
    entry_id = uuid.uuid4()
    return await _transition(
        repo,
        changed,
        TimelineEntry(entry_id, "closed", now, actor, {}),
        CaseClosed(
            entry_id=entry_id,
            case_id=case.case_id,
            customer_id=case.customer_id,
            at=now,
            actor=actor,
        ),
        now=now,
    )


async def reopen_case(
    repo: FollowupRepository,
    case_id: uuid.UUID,
    *,
    reason: str | None,
    actor: Actor,
    now: datetime,
    policy: PolicyInForce,
) -> Case:
    """Back to work. A case whose customer nobody has reached yet is open again, with a new
    contact deadline and escalation ladder from now (by its rule, or the rule that applies
    today if the policy no longer has it): the old ladder was cancelled at resolution."""
    case = await _load(repo, case_id)
    other = await repo.active_case_of(case.customer_id)
    if other is not None and other.case_id != case.case_id:
        raise lifecycle.LifecycleError(
            f"the customer has another case in progress ({other.case_id}); work that one"
        )
    changed = lifecycle.reopen(case)
    entry_id = uuid.uuid4()
    details: dict[str, object] = {"reason": reason}
    new_due_at = None
    if changed.status is CaseStatus.OPEN:
        rule = _rule_of(case, policy.policy)
        if rule is not None and rule.case is not None:
            ladder = plan_ladder(
                case.case_id,
                rule,
                now,
                calendar_for(policy.policy, rule.case.team, policy.holidays_for),
                round_=f"reopened:{entry_id}",
            )
            changed = replace(
                changed,
                due_at=ladder.due_at,
                remind_at=ladder.remind_at,
                second_level_at=ladder.second_level_at,
                escalation_level=0,
            )
            await repo.add_timers(case.case_id, ladder.timers)
            new_due_at = ladder.due_at
            details["due_at"] = new_due_at.isoformat()
    return await _transition(
        repo,
        changed,
        TimelineEntry(entry_id, "reopened", now, actor, details),
        CaseReopened(
            entry_id=entry_id,
            case_id=case.case_id,
            customer_id=case.customer_id,
            at=now,
            due_at=new_due_at,
            actor=actor,
        ),
        now=now,
    )


def _rule_of(case: Case, policy: Policy) -> Rule | None:
    """The rule that opened the case, or, if the policy has dropped it, the one that would."""
    named = next((rule for rule in policy.rules if rule.name == case.rule), None)
    if named is not None:
        return named
    return policy.rule_for(
        segment=case.segment,
        source=case.source,
        survey=case.survey_id,
        attributes=_customer_of(case).attributes,
    )


# --- reading ------------------------------------------------------------------------------


async def list_cases(
    repo: FollowupRepository,
    *,
    customer_id: str | None,
    status: CaseStatus | Sequence[CaseStatus] | None,
    limit: int,
    offset: int,
    owner: str | None = None,
    team: str | None = None,
    scope: CaseScope | None = None,
    urgent_first_at: datetime | None = None,
) -> list[Case]:
    return await repo.list_cases(
        customer_id=customer_id,
        status=status,
        limit=limit,
        offset=offset,
        owner=owner,
        team=team,
        scope=scope,
        urgent_first_at=urgent_first_at,
    )


def business_time_left(case: Case, *, policy: PolicyInForce, now: datetime) -> timedelta | None:
    """Business time of the case's team until its contact deadline (zero once it has passed);
    None without a deadline or a team of the policy."""
    if case.due_at is None or case.team not in policy.policy.teams:
        return None
    calendar = calendar_for(policy.policy, case.team, policy.holidays_for)
    return calendar.business_time_between(now, case.due_at)


async def get_case(repo: FollowupRepository, case_id: uuid.UUID) -> Case | None:
    return await repo.get_case(case_id)


@dataclass(frozen=True, slots=True)
class GroupFigures:
    group: str | None
    counts: FigureRow
    rates: Rates


async def figures(
    repo: FollowupRepository,
    *,
    group_by: str,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> list[GroupFigures]:
    """Closed-loop figures per group (team, owner, segment, day/week/month, or all)."""
    rows = await repo.figures(group_by=group_by, start=start, end=end, now=now)
    return [
        GroupFigures(
            group=row.group,
            counts=row,
            rates=rates(
                cases=row.cases,
                on_time=row.on_time,
                breached=row.breached,
                closed=row.closed,
                with_later_answer=row.with_later_answer,
                recovered=row.recovered,
            ),
        )
        for row in rows
    ]
