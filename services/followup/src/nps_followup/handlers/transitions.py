"""The case lifecycle driven by people: assign, record a contact, resolve, close, reopen.
Each loads the case under lock, applies the domain transition, records it on the timeline
and publishes it."""

import uuid
from dataclasses import replace
from datetime import datetime

from nps_events import (
    Actor,
    CaseAssigned,
    CaseClosed,
    CaseContactRecorded,
    CaseReopened,
    CaseResolved,
    ContactOutcome,
    Event,
)
from nps_followup.domain import lifecycle
from nps_followup.domain.cases import Case, CaseStatus, TimelineEntry, calendar_for, plan_ladder
from nps_followup.domain.ownership import account_owner, choose_owner
from nps_followup.domain.policy import OwnerRule, Policy, Rule
from nps_followup.domain.resurvey import resurvey_timer
from nps_followup.handlers.common import (
    CaseNotFound,
    PolicyInForce,
    UnknownOwner,
    assignment_notice,
    customer_of,
    team_members,
)
from nps_followup.handlers.ports import CaseLifecycle


async def _load(repo: CaseLifecycle, case_id: uuid.UUID) -> Case:
    case = await repo.get_case(case_id, for_update=True)
    if case is None:
        raise CaseNotFound(f"no case {case_id}")
    return case


async def _transition(
    repo: CaseLifecycle, case: Case, entry: TimelineEntry, event: Event, *, now: datetime
) -> Case:
    await repo.save_cases([case])
    await repo.add_timelines([(case.case_id, entry)])
    await repo.publish_later([event], now=now)
    found = await repo.get_case(case.case_id)
    assert found is not None  # noqa: S101 - we hold its lock
    return found


async def assign_case(
    repo: CaseLifecycle,
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
        attributes = customer_of(case).attributes
        turn = 0 if account_owner(attributes) else await repo.reserve_turns(case.team, 1)
        owner = choose_owner(
            OwnerRule.ACCOUNT_OWNER, members=team.members, attributes=attributes, turn=turn
        )
        assert owner is not None  # noqa: S101 - account_owner never leaves it unassigned
    changed = lifecycle.assign(case, owner)
    entry_id = uuid.uuid4()
    entry = TimelineEntry(entry_id, "assigned", now, actor, {"owner": owner, "by_rule": by_rule})
    if owner not in (case.owner, actor.name):
        # A new owner who did not take the case themselves learns of it.
        action, notice = assignment_notice(
            changed, owner, origin=str(entry_id), now=now, policy=policy.policy
        )
        await repo.add_actions_of(
            [(case.case_id, action)], exempt=set(), recipient={action.action_id: owner}
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
    repo: CaseLifecycle,
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
    repo: CaseLifecycle,
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
    repo: CaseLifecycle,
    case_id: uuid.UUID,
    *,
    actor: Actor,
    now: datetime,
    policy: PolicyInForce,
) -> Case:
    """Close the loop. When the case's rule (or the policy) has `resurvey_after`, a durable
    timer asks the customer again that long after (`ResurveyRequested`, from the sweeper)."""
    case = await _load(repo, case_id)
    changed = lifecycle.close(case, now)
    entry_id = uuid.uuid4()
    details: dict[str, object] = {}
    after = policy.policy.resurvey_delay(_rule_of(case, policy.policy))
    if after is not None:
        timer = resurvey_timer(case.case_id, now, after, round_=f"closed:{entry_id}")
        await repo.add_timers(case.case_id, [timer])
        details["resurvey_at"] = timer.fire_at.isoformat()
        details["resurvey_after"] = str(after)
    return await _transition(
        repo,
        changed,
        TimelineEntry(entry_id, "closed", now, actor, details),
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
    repo: CaseLifecycle,
    case_id: uuid.UUID,
    *,
    reason: str | None,
    actor: Actor,
    now: datetime,
    policy: PolicyInForce,
) -> Case:
    """Back to work. A case whose customer nobody has reached yet is open again, with a new
    contact deadline and escalation ladder from now (by its rule, or the rule that applies
    today if the policy no longer has it): the old ladder was cancelled at resolution. A
    re-survey still pending from its closing is cancelled."""
    case = await _load(repo, case_id)
    other = await repo.active_case_of(case.customer_id)
    if other is not None and other.case_id != case.case_id:
        raise lifecycle.LifecycleError(
            f"the customer has another case in progress ({other.case_id}); work that one"
        )
    changed = lifecycle.reopen(case)
    entry_id = uuid.uuid4()
    details: dict[str, object] = {"reason": reason}
    # Back to work: the customer is not asked again about a case that is not closed.
    cancelled = await repo.cancel_resurvey(case.case_id, now)
    if cancelled is not None:
        details["resurvey_cancelled"] = cancelled.isoformat()
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
        attributes=customer_of(case).attributes,
    )
