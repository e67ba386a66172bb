"""Reading cases and the closed-loop figures."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from nps_followup.adapters.repository import (
    FigureFilter,
    FigureRow,
    FollowupRepository,
)
from nps_followup.domain.access import CaseScope
from nps_followup.domain.cases import (
    Case,
    CaseStatus,
    calendar_for,
)
from nps_followup.domain.figures import Rates, rates
from nps_followup.handlers.common import PolicyInForce


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
    only: FigureFilter | None = None,
) -> list[GroupFigures]:
    """Closed-loop figures per group (team, owner, segment, day/week/month, or all), of
    `only` the cases of a team, source or segment when given."""
    rows = await repo.figures(group_by=group_by, start=start, end=end, now=now, only=only)
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
