"""Cases over HTTP: the lists (newest or most urgent first), one case with its timeline, and
the lifecycle people drive (assign, contact, resolve, close, reopen)."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from nps_events import Line, Segment
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.cases import Case, CaseStatus
from nps_followup.domain.lifecycle import LifecycleError, UnknownRootCause
from nps_followup.domain.queue import BadCursor, QueueFilter
from nps_followup.entrypoints.callers import actor_of, check_sees, visible_to
from nps_followup.entrypoints.case_models import CaseList, CaseOut, case_out
from nps_followup.entrypoints.inputs import (
    AssignIn,
    CloseIn,
    ContactIn,
    ReopenIn,
    ResolveIn,
    SourceName,
    ThemeId,
)
from nps_followup.handlers import (
    CaseNotFound,
    PolicyInForce,
    UnknownOwner,
    assign_case,
    close_case,
    get_case,
    list_cases,
    queue_page,
    record_contact,
    reopen_case,
    resolve_case,
)
from nps_kit.access import Access, forbidden, has_role
from nps_kit.auth import Principal, Role
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.http import Problem


def _invalid(field: str, message: str) -> Problem:
    return Problem(
        422,
        "Invalid request",
        f"{field}: {message}",
        errors=[{"field": field, "message": message}],
    )


_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such case (problem+json)."},
    409: {"description": "The case's state does not allow it (problem+json)."},
    422: {"description": "Invalid input, e.g. a root cause outside the taxonomy."},
}


@asynccontextmanager
async def _repository(
    sessions: SessionFactory, policy: PolicyInForce
) -> AsyncIterator[FollowupRepository]:
    """A unit of work whose refusals become problems (404, 409, 422)."""
    try:
        async with unit_of_work(sessions) as session:
            yield FollowupRepository(session)
    except CaseNotFound as exc:
        raise Problem(404, "Not found", str(exc)) from None
    except LifecycleError as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    except UnknownRootCause as exc:
        raise Problem(
            422, "Unknown root cause", str(exc), root_causes=list(policy.policy.root_causes)
        ) from None
    except UnknownOwner as exc:
        raise Problem(
            422,
            "Unknown owner",
            f"{exc}: an owner must be one of its people.",
            errors=[{"field": "owner", "message": "is not a member of the case's team"}],
            members=sorted(exc.members),
        ) from None


async def _transition(
    sessions: SessionFactory,
    policy: PolicyInForce,
    principal: Principal,
    case_id: uuid.UUID,
    step: Callable[[FollowupRepository], Awaitable[Case]],
    *,
    now: datetime,
) -> CaseOut:
    """Run `step` on a case the caller may see: 404 if there is none, 403 if it is another
    team's (and not theirs)."""
    async with _repository(sessions, policy) as repo:
        current = await get_case(repo, case_id)
        if current is None:
            raise CaseNotFound(f"No case {case_id}.")
        check_sees(policy, principal, current)
        case = await step(repo)
    return case_out(case, policy=policy, now=now)


def case_routes(
    api: APIRouter,
    *,
    sessions: SessionFactory,
    clock: Clock,
    policy: PolicyInForce,
    access: Access,
) -> None:
    """Cases and their lifecycle: agents work their teams' cases (and those they own), leads
    also assign (to anyone of the team, or by the rule), close and reopen them."""
    Agent = Annotated[Principal, access.require(Role.AGENT)]  # noqa: N806 - a type
    Lead = Annotated[Principal, access.require(Role.LEAD)]  # noqa: N806 - a type

    @api.get(
        "/v1/cases",
        response_model=CaseList,
        summary="List follow-up cases, newest or most urgent first",
    )
    async def list_case_pages(
        principal: Agent,
        *,
        customer_id: Annotated[Line | None, Query(max_length=200)] = None,
        status: Annotated[
            list[CaseStatus] | None,
            Query(description="Repeat it for several (status=open&status=contacted)."),
        ] = None,
        sort: Annotated[
            Literal["newest", "urgency"],
            Query(
                description="newest: by opening, newest first; urgency: breached first (open, "
                "past the contact deadline), then by deadline, soonest first."
            ),
        ] = "newest",
        owner: Annotated[Line | None, Query(max_length=254)] = None,
        team: Annotated[Line | None, Query(max_length=100)] = None,
        segment: Annotated[
            list[Segment] | None, Query(description="promoter, passive or detractor; repeat it.")
        ] = None,
        source: Annotated[
            list[SourceName] | None,
            Query(max_length=20, description="The survey source (e.g. delighted); repeat it."),
        ] = None,
        theme: Annotated[
            list[ThemeId] | None,
            Query(max_length=20, description="Cases whose comment has any of these themes."),
        ] = None,
        score_min: Annotated[int | None, Query(ge=0, le=10)] = None,
        score_max: Annotated[int | None, Query(ge=0, le=10)] = None,
        customer: Annotated[
            Line | None,
            Query(
                min_length=1,
                max_length=200,
                description="Part of the customer's name, email address or id, any case.",
            ),
        ] = None,
        cursor: Annotated[
            str | None,
            Query(
                max_length=1000,
                description="sort=urgency: `next_cursor` or `previous_cursor` of a page.",
            ),
        ] = None,
        limit: int = Query(default=50, ge=1, le=500),
        offset: int = Query(default=0, ge=0, le=1_000_000_000),
    ) -> CaseList:
        """An agent or lead sees their teams' cases and those they own; an admin, all.
        Filters combine (all must hold; a repeated one matches any of its values). With
        sort=urgency, page with the cursors the answer gives: page 20 costs what page 1 does."""
        visible = visible_to(policy, principal)
        if visible is not None and team is not None and team not in visible.teams:
            raise forbidden(principal, Role.AGENT, f"Team {team} is not one of yours.")
        if score_min is not None and score_max is not None and score_min > score_max:
            raise _invalid("score_min", "is above score_max")
        if cursor is not None and sort != "urgency":
            raise _invalid("cursor", "pages only sort=urgency")
        if cursor is not None and offset:
            raise _invalid("cursor", "goes without offset")
        filters = QueueFilter(
            statuses=tuple(dict.fromkeys(status or ())),
            segments=tuple(sorted({s.value for s in segment or ()})),
            sources=tuple(sorted(set(source or ()))),
            themes=tuple(sorted(set(theme or ()))),
            score_min=score_min,
            score_max=score_max,
            owner=owner,
            team=team,
            customer=customer,
            customer_id=customer_id,
        )
        now = clock.now()
        async with sessions() as session:
            repo = FollowupRepository(session)
            if sort == "urgency":
                try:
                    page = await queue_page(
                        repo,
                        filters=filters,
                        scope=visible,
                        cursor=cursor,
                        limit=limit,
                        offset=offset,
                        now=now,
                    )
                except BadCursor as exc:
                    raise _invalid("cursor", str(exc)) from None
                cases = page.cases
            else:
                page = None
                cases = await list_cases(
                    repo,
                    customer_id=None,  # in `filters`
                    status=status,
                    filters=filters,
                    limit=limit,
                    offset=offset,
                    scope=visible,
                )
        return CaseList(
            items=[case_out(c, policy=policy, now=now) for c in cases],
            limit=limit,
            offset=offset,
            sort=sort,
            now=now,
            as_of=page.as_of if page else None,
            next_cursor=page.next_cursor if page else None,
            previous_cursor=page.previous_cursor if page else None,
        )

    @api.get(
        "/v1/cases/{case_id}",
        response_model=CaseOut,
        summary="One case with its actions and timeline",
        responses={404: _ERRORS[404]},
    )
    async def get_case_with_timeline(principal: Agent, case_id: uuid.UUID) -> CaseOut:
        async with sessions() as session:
            case = await get_case(FollowupRepository(session), case_id)
        if case is None:
            raise Problem(404, "Not found", f"No case {case_id}.")
        check_sees(policy, principal, case)
        return case_out(case, policy=policy, now=clock.now(), ladder=True)

    @api.post(
        "/v1/cases/{case_id}/assign",
        response_model=CaseOut,
        summary="Assign an owner, by hand or by the rule",
        responses=_ERRORS,
    )
    async def assign_owner(principal: Agent, case_id: uuid.UUID, body: AssignIn) -> CaseOut:
        """A lead (or admin) gives the case to any person of its team, or lets the rule
        choose; an agent can only take a case of their queue themselves."""
        lead = has_role(principal, Role.LEAD)
        if not lead and (body.owner is None or body.owner.lower() != (principal.email or "")):
            raise forbidden(
                principal,
                Role.LEAD,
                "An agent can take a case themselves (owner: your own email address); "
                "assigning it to someone else, or by the rule, needs the role lead.",
            )
        return await _transition(
            sessions,
            policy,
            principal,
            case_id,
            lambda repo: assign_case(
                repo,
                case_id,
                owner=body.owner,
                actor=actor_of(principal),
                now=clock.now(),
                policy=policy,
            ),
            now=clock.now(),
        )

    @api.post(
        "/v1/cases/{case_id}/contacts",
        response_model=CaseOut,
        summary="Record a contact attempt (channel, outcome, note)",
        responses=_ERRORS,
    )
    async def record_contact_attempt(
        principal: Agent, case_id: uuid.UUID, body: ContactIn
    ) -> CaseOut:
        return await _transition(
            sessions,
            policy,
            principal,
            case_id,
            lambda repo: record_contact(
                repo,
                case_id,
                channel=body.channel,
                outcome=body.outcome,
                note=body.note,
                actor=actor_of(principal),
                now=clock.now(),
            ),
            now=clock.now(),
        )

    @api.post(
        "/v1/cases/{case_id}/resolve",
        response_model=CaseOut,
        summary="Resolve with a root cause from the policy's taxonomy",
        responses=_ERRORS,
    )
    async def resolve_with_root_cause(
        principal: Agent, case_id: uuid.UUID, body: ResolveIn
    ) -> CaseOut:
        return await _transition(
            sessions,
            policy,
            principal,
            case_id,
            lambda repo: resolve_case(
                repo,
                case_id,
                root_cause=body.root_cause,
                note=body.note,
                actor=actor_of(principal),
                now=clock.now(),
                policy=policy,
            ),
            now=clock.now(),
        )

    @api.post(
        "/v1/cases/{case_id}/close",
        response_model=CaseOut,
        summary="Close a resolved case",
        responses=_ERRORS,
    )
    async def close_resolved_case(principal: Lead, case_id: uuid.UUID, body: CloseIn) -> CaseOut:
        return await _transition(
            sessions,
            policy,
            principal,
            case_id,
            lambda repo: close_case(
                repo, case_id, actor=actor_of(principal), now=clock.now(), policy=policy
            ),
            now=clock.now(),
        )

    @api.post(
        "/v1/cases/{case_id}/reopen",
        response_model=CaseOut,
        summary="Reopen a resolved or closed case",
        responses=_ERRORS,
    )
    async def reopen_finished_case(principal: Lead, case_id: uuid.UUID, body: ReopenIn) -> CaseOut:
        return await _transition(
            sessions,
            policy,
            principal,
            case_id,
            lambda repo: reopen_case(
                repo,
                case_id,
                reason=body.reason,
                actor=actor_of(principal),
                now=clock.now(),
                policy=policy,
            ),
            now=clock.now(),
        )
