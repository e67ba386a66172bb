"""Followup's use cases. Each runs inside the caller's unit of work."""

import uuid
from datetime import datetime

from nps_events import ActionResultReported, CaseOpened, Event, ResponseScored, SendEmail
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.cases import (
    Action,
    ActionState,
    Case,
    CaseStatus,
    FollowupPolicy,
    plan_follow_up,
)

CONSUMER = "followup"


async def open_cases(
    repo: FollowupRepository, scored: list[ResponseScored], *, now: datetime, policy: FollowupPolicy
) -> list[Case]:
    """Open a case for each new response the policy says needs one; queue its events. An
    update of a response that already has a case (a late comment, a changed score) is recorded
    on that case: no second case, no second email."""
    fresh = await repo.claim(CONSUMER, (str(s.event_id()) for s in scored))
    existing = await repo.cases_for_responses(s.response_id for s in scored)
    cases: list[Case] = []
    events: list[Event] = []
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
            continue
        plan = plan_follow_up(
            response_id=response.response_id,
            segment=response.segment,
            has_email=response.customer.email is not None,
            now=now,
            policy=policy,
        )
        if plan is None:
            continue
        case = Case(
            case_id=plan.case_id,
            response_id=response.response_id,
            source=response.source,
            survey_id=response.survey_id,
            customer_id=response.customer.id,
            customer_email=response.customer.email,
            customer_name=response.customer.name,
            segment=response.segment,
            score=response.score,
            comment=response.comment,
            status=CaseStatus.OPEN,
            opened_at=now,
            due_at=plan.due_at,
            actions=tuple(
                Action(
                    action_id=planned.action_id,
                    channel=planned.channel.value,
                    template=planned.template,
                    state=ActionState.PLANNED,
                    provider_message_id=None,
                    reason=None,
                    requested_at=now,
                    updated_at=now,
                )
                for planned in plan.actions
            ),
        )
        cases.append(case)
        existing[response.response_id] = case.case_id
        events.append(
            CaseOpened(
                case_id=case.case_id,
                response_id=case.response_id,
                customer_id=case.customer_id,
                segment=case.segment,
                score=case.score,
                opened_at=now,
                due_at=case.due_at,
            )
        )
        events.extend(
            SendEmail(
                action_id=planned.action_id,
                case_id=case.case_id,
                customer=response.customer,
                template=planned.template,
                score=response.score,
                comment=response.comment,
                requested_at=now,
            )
            for planned in plan.actions
        )
    await repo.add_cases(cases)
    await repo.publish_later(events, now=now)
    return cases


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


async def list_cases(
    repo: FollowupRepository,
    *,
    customer_id: str | None,
    status: CaseStatus | None,
    limit: int,
    offset: int,
) -> list[Case]:
    return await repo.list_cases(customer_id=customer_id, status=status, limit=limit, offset=offset)


async def get_case(repo: FollowupRepository, case_id: uuid.UUID) -> Case | None:
    return await repo.get_case(case_id)
