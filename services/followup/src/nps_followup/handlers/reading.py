"""Reading cases and the closed-loop figures."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from nps_followup.adapters.figures import FigureFilter, FigureRow, closed_loop_figures
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.access import CaseScope
from nps_followup.domain.cases import (
    Case,
    CaseStatus,
    SetAside,
    calendar_for,
)
from nps_followup.domain.figures import Rates, rates
from nps_followup.domain.queue import (
    Cursor,
    Place,
    QueueFilter,
    decode_cursor,
    encode_cursor,
)
from nps_followup.handlers.common import PolicyInForce


@dataclass(frozen=True, slots=True)
class FollowUp:
    """What followup did with one response: the case it opened, or why it did not act on it."""

    case: Case | None
    set_aside: SetAside | None


async def follow_up_of(repo: FollowupRepository, response_id: uuid.UUID) -> FollowUp | None:
    """The case opened from the response, or its record as set aside; None if neither."""
    case_id = (await repo.cases_for_responses([response_id])).get(response_id)
    if case_id is not None:
        return FollowUp(await repo.get_case(case_id), None)
    held = await repo.set_aside_response(response_id)
    return None if held is None else FollowUp(None, held)


async def list_cases(
    repo: FollowupRepository,
    *,
    customer_id: str | None,
    status: CaseStatus | Sequence[CaseStatus] | None,
    limit: int,
    offset: int,
    filters: QueueFilter | None = None,
    scope: CaseScope | None = None,
) -> list[Case]:
    """Cases newest first (the queue, most urgent first, is `queue_page`)."""
    return await repo.list_cases(
        customer_id=customer_id,
        status=status,
        limit=limit,
        offset=offset,
        filters=filters,
        scope=scope,
    )


@dataclass(frozen=True, slots=True)
class QueuePage:
    """One page of the queue, and the cursors to the pages either side (None: no more)."""

    cases: list[Case]
    as_of: datetime
    next_cursor: str | None
    previous_cursor: str | None


async def queue_page(
    repo: FollowupRepository,
    *,
    filters: QueueFilter,
    scope: CaseScope | None,
    cursor: str | None,
    limit: int,
    offset: int = 0,
    now: datetime,
) -> QueuePage:
    """A page of the queue in urgency order: the first (as of `now`), or the one a cursor of
    an earlier page points to (as of that first page's `now`). BadCursor if `cursor` is not
    one of this queue's for these filters."""
    fingerprint = filters.fingerprint()
    at = decode_cursor(cursor, filters=filters) if cursor else None
    as_of = at.as_of if at else now
    backwards = at.backwards if at else False
    found = await repo.case_queue(
        filters=filters,
        scope=scope,
        as_of=as_of,
        after=at.place if at else None,
        backwards=backwards,
        limit=limit + 1,  # one more: is there a page beyond?
        offset=offset,
    )
    more = len(found) > limit
    shown = (found[1:] if more else found) if backwards else found[:limit]

    def boundary(place: Place, *, back: bool) -> str:
        return encode_cursor(Cursor(as_of=as_of, place=place, backwards=back, filters=fingerprint))

    if not shown:
        return QueuePage(cases=[], as_of=as_of, next_cursor=None, previous_cursor=None)
    later = more if not backwards else True
    earlier = more if backwards else at is not None or offset > 0
    return QueuePage(
        cases=[case for case, _ in shown],
        as_of=as_of,
        next_cursor=boundary(shown[-1][1], back=False) if later else None,
        previous_cursor=boundary(shown[0][1], back=True) if earlier else None,
    )


def business_time_left(case: Case, *, policy: PolicyInForce, now: datetime) -> timedelta | None:
    """Business time of the case's team until its contact deadline (zero once it has passed);
    None without a deadline or a team of the policy."""
    if case.due_at is None or case.team not in policy.policy.teams:
        return None
    calendar = calendar_for(policy.policy, case.team, policy.holidays_for)
    return calendar.business_time_between(now, case.due_at)


def business_time_runs_until(
    case: Case, *, policy: PolicyInForce, now: datetime
) -> datetime | None:
    """While the case's business time runs down (its team is at work and the deadline is
    ahead), when it stops: the end of the working day or the deadline, whichever is first.
    None when it stands still: a page can count `business_time_left` down until then."""
    if case.due_at is None or case.due_at <= now or case.team not in policy.policy.teams:
        return None
    calendar = calendar_for(policy.policy, case.team, policy.holidays_for)
    closes = calendar.at_work_until(now)
    return None if closes is None else min(closes, case.due_at)


async def get_case(repo: FollowupRepository, case_id: uuid.UUID) -> Case | None:
    return await repo.get_case(case_id)


@dataclass(frozen=True, slots=True)
class GroupFigures:
    #: The grouping the group belongs to: team, owner, segment, day, week, month or all.
    grouping: str
    group: str | None
    counts: FigureRow
    rates: Rates


async def figures(
    repo: FollowupRepository,
    *,
    group_by: str | Sequence[str],
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    only: FigureFilter | None = None,
) -> list[GroupFigures]:
    """Closed-loop figures per group of each grouping asked (team, owner, segment,
    day/week/month, or all), of `only` the cases of a team, source or segment when given;
    several groupings cost one pass over the cases, not one each."""
    rows = await closed_loop_figures(
        repo.session,
        groupings=(group_by,) if isinstance(group_by, str) else group_by,
        start=start,
        end=end,
        now=now,
        only=only,
    )
    return [
        GroupFigures(
            grouping=row.grouping,
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
