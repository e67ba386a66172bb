"""Sweeping due timers: scheduled actions dispatched (or skipped by a contact rule), and
the escalation ladder climbed for cases nobody has contacted yet."""

import uuid
from datetime import datetime

from nps_events import (
    CaseEscalated,
    CaseReminded,
    ContentLink,
    CreateTicket,
    NotifyStaff,
    RaiseTicketPriority,
    ReferralLink,
    RequestResurvey,
    ResurveyRequested,
    Segment,
    SendEmail,
    SendSms,
)
from nps_events import TicketPriority as EventTicketPriority
from nps_events.ids import derive_id
from nps_events.text import email_error
from nps_followup.adapters.repository import (
    ActionRow,
    DueTimer,
)
from nps_followup.domain.cases import ActionState, Case, CaseStatus, TimerKind
from nps_followup.domain.contact_rules import held_back, quiet_hours_for
from nps_followup.domain.content import choose_content
from nps_followup.domain.escalation import LADDER, ladder_step
from nps_followup.domain.policy import ActionKind, Policy, Rule, TicketPriority
from nps_followup.domain.referrals import ReferralCodes
from nps_followup.domain.resurvey import ResurveyRequest, Suppressed, resurvey_decision
from nps_followup.handlers.common import (
    PolicyInForce,
    customer_of,
    log,
    notice_details,
    requested_action,
    system_actor,
    timeline_entry,
)
from nps_followup.handlers.ports import TimerEffects, TimerSweep
from nps_followup.handlers.writes import BatchWrites


async def sweep_due_timers(
    repo: TimerSweep, *, now: datetime, policy: PolicyInForce, limit: int
) -> int:
    """Fire up to `limit` due timers; return how many fired. Safe with any number of
    sweepers: each claims its timers with SKIP LOCKED, in one transaction with their effects."""
    due = await repo.claim_due_timers(now, limit)
    if due:
        cases = await repo.cases_by_id(t.case_id for t in due)
        actions = await repo.actions_by_id(t.action_id for t in due if t.action_id is not None)
        writes = BatchWrites(now)
        await fire_timers(
            repo,
            due,
            cases=cases,
            actions=actions,
            now=now,
            policy=policy.policy,
            referrals=policy.referrals,
            into=writes,
        )
        await writes.flush(repo)
    return len(due)


async def fire_timers(
    repo: TimerEffects,
    due: list[DueTimer],
    *,
    cases: dict[uuid.UUID, Case],
    actions: dict[uuid.UUID, ActionRow],
    now: datetime,
    policy: Policy,
    into: BatchWrites,
    referrals: ReferralCodes | None = None,
) -> None:
    """Fire `due` timers, which the caller has already recorded as fired (the sweeper claimed
    them) or never wrote (a batch of new cases fires those due as they open): `cases` are
    their cases, locked or just inserted by this transaction, and `actions` the scheduled
    actions they name. What firing them changes goes `into` the caller's batch, which the
    caller flushes. With `referrals`, the emails of promoter cases carry the customer's
    referral link."""
    # Only dispatching and re-surveys read the contact rules: a sweep of escalations alone
    # skips the statement (a round trip, and two index probes per customer).
    customer_ids = {cases[t.case_id].customer_id for t in due if t.kind not in LADDER}
    opted_out, last = await repo.contact_history(customer_ids)
    escalating = {
        t.case_id
        for t in due
        if t.kind in (TimerKind.ESCALATION, TimerKind.SECOND_LEVEL)
        and cases[t.case_id].status is CaseStatus.OPEN
    }
    tickets = await repo.tickets_of(escalating)
    resurveying = [cases[t.case_id].customer_id for t in due if t.kind is TimerKind.RESURVEY]
    answered = await repo.latest_answers(resurveying) if resurveying else {}
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
                referrals=referrals,
                opted_out=opted_out,
                last=last,
                into=into,
            )
        elif timer.kind is TimerKind.RESURVEY:
            _resurvey(
                case,
                timer,
                now=now,
                policy=policy,
                opted_out=opted_out.get(case.customer_id, set()),
                answered_again_at=answered.get(case.customer_id),
                into=into,
            )
        elif timer.kind in LADDER and case.status is CaseStatus.OPEN:
            _climb(case, timer, now=now, policy=policy, ticket=tickets.get(case.case_id), into=into)


def _dispatch(
    case: Case,
    row: ActionRow,
    timer: DueTimer,
    *,
    now: datetime,
    policy: Policy,
    referrals: ReferralCodes | None,
    opted_out: dict[str, set[str]],
    last: dict[str, datetime],
    into: BatchWrites,
) -> None:
    kind = ActionKind(row.channel)
    customer = customer_of(case)
    blocked = held_back(
        kind=kind,
        customer=customer,
        opted_out=opted_out.get(case.customer_id, set()),
        last_message_at=last.get(case.customer_id),
        exempt=row.exempt_from_cap,
        cap=policy.contact.frequency_cap.calendar(),
        now=now,
    )
    if blocked is not None:
        contact_rule, reason = blocked
        into.states.append((row.action_id, ActionState.SKIPPED, reason))
        entry = timeline_entry(
            case.case_id,
            "action_skipped",
            now,
            origin=str(timer.timer_id),
            actor=system_actor(case.rule),
            action_id=str(row.action_id),
            channel=row.channel,
            contact_rule=contact_rule,
            reason=reason,
        )
        into.timeline.append((case.case_id, entry))
        log.info("action.skipped", case_id=str(case.case_id), channel=row.channel)
        return
    into.states.append((row.action_id, ActionState.PLANNED, None))
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
                quiet_hours=quiet_hours_for(customer, policy),
            )
        )
        return
    referral = _referral(case, referrals)
    if referral is not None:
        into.referral_codes.append((referral.code, case.customer_id, case.case_id))
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
            content=_content(case, policy),
            referral=referral,
        )
    )


def _resurvey(
    case: Case,
    timer: DueTimer,
    *,
    now: datetime,
    policy: Policy,
    opted_out: set[str],
    answered_again_at: datetime | None,
    into: BatchWrites,
) -> None:
    """Ask the customer again (a `ResurveyRequested` for the survey tool and, when the case's
    rule names a `resurvey_webhook`, a `RequestResurvey` for notify to call it with), or record
    on the case why not."""
    decision = resurvey_decision(
        case, customer_of(case), opted_out=opted_out, answered_again_at=answered_again_at
    )
    if decision is None or case.closed_at is None:
        return
    origin = str(timer.timer_id)
    if isinstance(decision, Suppressed):
        entry = timeline_entry(
            case.case_id,
            "resurvey_skipped",
            now,
            origin=origin,
            actor=system_actor(case.rule),
            contact_rule=decision.contact_rule,
            reason=decision.reason,
        )
        into.timeline.append((case.case_id, entry))
        log.info("resurvey.skipped", case_id=str(case.case_id), contact_rule=decision.contact_rule)
        return
    # Read now, not when the case closed: it says where requests go, so a changed endpoint
    # (or one turned off) applies to every re-survey asked from now on.
    endpoint = policy.resurvey_webhook_for(_rule(case, policy))
    action_id = derive_id("request-resurvey", origin)
    webhook = {} if endpoint is None else {"webhook": endpoint, "action_id": str(action_id)}
    entry = timeline_entry(
        case.case_id,
        "resurvey_requested",
        now,
        origin=origin,
        actor=system_actor(case.rule),
        closed_at=case.closed_at.isoformat(),
        source=case.source,
        survey_id=case.survey_id,
        score=case.score,
        **webhook,
    )
    into.timeline.append((case.case_id, entry))
    into.resurveys.append(
        ResurveyRequest(case.case_id, case.customer_id, timer.timer_id, case.closed_at, now)
    )
    into.events.append(
        ResurveyRequested(
            entry_id=entry.entry_id,
            case_id=case.case_id,
            customer_id=case.customer_id,
            at=now,
            actor=entry.actor,
            customer=decision,
            response_id=case.response_id,
            source=case.source,
            survey_id=case.survey_id,
            score=case.score,
            segment=case.segment,
            closed_at=case.closed_at,
        )
    )
    if endpoint is not None:
        into.request(
            case.case_id,
            requested_action(action_id, "webhook", "request_resurvey", now),
            recipient=f"webhook:{endpoint}",
        )
        into.events.append(
            RequestResurvey(
                action_id=action_id,
                case_id=case.case_id,
                endpoint=endpoint,
                customer=decision,
                response_id=case.response_id,
                source=case.source,
                survey_id=case.survey_id,
                score=case.score,
                segment=case.segment,
                closed_at=case.closed_at,
                requested_at=now,
                rule=case.rule,
            )
        )
    log.info("resurvey.requested", case_id=str(case.case_id), webhook=endpoint is not None)


def _rule(case: Case, policy: Policy) -> Rule | None:
    """The case's rule in the policy in force (None if it has left the policy since)."""
    return next((r for r in policy.rules if r.name == case.rule), None)


def _content(case: Case, policy: Policy) -> ContentLink | None:
    """The page the case's rule gives for the comment's themes (none if the rule has left the
    policy since the case opened)."""
    rule = _rule(case, policy)
    if rule is None:
        return None
    return choose_content(case.themes, by_theme=rule.content_by_theme, default=rule.default_content)


def _referral(case: Case, referrals: ReferralCodes | None) -> ReferralLink | None:
    """A promoter's referral link, when the policy has a referral program."""
    if referrals is None or case.segment is not Segment.PROMOTER:
        return None
    return referrals.link_for(case.customer_id)


def _climb(
    case: Case,
    timer: DueTimer,
    *,
    now: datetime,
    policy: Policy,
    ticket: uuid.UUID | None,
    into: BatchWrites,
) -> None:
    """One step of the escalation ladder for a case nobody has contacted yet."""
    step = ladder_step(timer.kind, owner=case.owner, team=policy.teams.get(case.team or ""))
    recipient, level = step.recipient, step.level
    origin = str(timer.timer_id)
    due_at = case.due_at or now
    entry = timeline_entry(
        case.case_id,
        "reminded" if not step.escalates else f"escalated_{level}",
        now,
        origin=origin,
        actor=system_actor(case.rule),
        recipient=recipient,
        level=level,
    )
    into.timeline.append((case.case_id, entry))
    if not step.escalates:
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
        # The level only rises, also when the batch fires two steps of the case.
        reached = into.levels.get(case.case_id, case.escalation_level)
        into.levels[case.case_id] = max(reached, level)
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
        into.request(
            case.case_id,
            requested_action(action_id, "staff", f"case_{step.reason.value}", now),
            recipient=recipient,
        )
        into.events.append(
            NotifyStaff(
                action_id=action_id,
                case_id=case.case_id,
                customer_id=case.customer_id,
                recipient=recipient,
                role=step.role,
                reason=step.reason,
                level=level,
                due_at=case.due_at,
                segment=case.segment,
                score=case.score,
                requested_at=now,
                **notice_details(case, policy),
            )
        )
    if ticket is not None and step.escalates:
        action_id = derive_id("raise-ticket", origin)
        priority = EventTicketPriority.URGENT
        into.request(
            case.case_id,
            requested_action(action_id, "ticket", "raise_priority", now),
            priority=priority.value,
        )
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
