"""Followup's HTTP API for customer-success teams: cases, their lifecycle and timeline, the
do-not-contact list, and the policy in force."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from nps_events import (
    Actor,
    ActorKind,
    Line,
    Segment,
)
from nps_events.text import clean_line
from nps_followup.adapters.repository import FigureFilter, FollowupRepository
from nps_followup.domain.access import CaseScope, scope_of
from nps_followup.domain.cases import Case, CaseStatus
from nps_followup.domain.escalation import Rung, ladder_of
from nps_followup.domain.lifecycle import LifecycleError, UnknownRootCause, transitions_from
from nps_followup.domain.policy import ActionKind, Duration, Rule
from nps_followup.domain.queue import BadCursor, QueueFilter
from nps_followup.entrypoints.do_not_contact_routes import do_not_contact_routes
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
    business_time_left,
    business_time_runs_until,
    close_case,
    figures,
    follow_up_of,
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


class ActionOut(BaseModel):
    action_id: uuid.UUID
    channel: str = Field(description="email, sms, ticket or staff.")
    template: str | None
    state: str = Field(
        description="scheduled, planned (requested from notify), sent, failed, skipped (a "
        "contact rule held it back: see reason) or unknown (interrupted mid-send: check by hand)."
    )
    provider_message_id: str | None
    reason: str | None
    scheduled_for: datetime | None
    requested_at: datetime
    updated_at: datetime


class CustomerOut(BaseModel):
    id: str
    email: str | None
    name: str | None
    phone: str | None = Field(default=None, description="E.164, when the source gave one.")
    locale: str | None = Field(default=None, description="Preferred language, e.g. pt-BR.")
    timezone: str | None = Field(
        default=None, description="IANA time zone the customer gave (null: not given)."
    )
    attributes: dict[str, str] = Field(
        default_factory=dict, description="What the source says about the customer (plan…)."
    )


class RungOut(BaseModel):
    step: str = Field(description="reminder, escalation or second_level.")
    at: datetime = Field(description="When the step fires if nobody reaches the customer.")
    recipient: str | None = Field(description="Who it tells (null: nobody the policy names).")
    role: str = Field(description="owner, lead or second_level.")
    level: int = Field(description="The escalation level it raises the case to (0: reminder).")
    state: str = Field(
        description="done (taken), next (what happens next), later, or stopped (someone "
        "reached the customer first)."
    )


class ActorOut(BaseModel):
    kind: str = Field(description="person, program or system.")
    id: str = Field(description="The token's subject, the program's client id, or `system`.")
    name: str | None = Field(description="The person's email address or name.")
    rule: str | None = Field(description="For `system`: the policy rule it applied.")


class TimelineEntryOut(BaseModel):
    entry_id: uuid.UUID
    kind: str = Field(
        description="opened, assigned, action_skipped, reminded, escalated_1, escalated_2, "
        "contact, resolved, closed, reopened, response_attached, ticket_status."
    )
    at: datetime
    actor: str | None = Field(description="Who did it, as people read it (`system` if npsloop).")
    by: ActorOut | None = Field(description="Who did it, in full.")
    details: dict[str, Any]


class CaseOut(BaseModel):
    case_id: uuid.UUID
    response_id: uuid.UUID
    source: str
    survey_id: str
    customer: CustomerOut
    segment: str
    score: int
    comment: str | None
    status: str = Field(description="open, contacted, resolved, closed or automated.")
    rule: str = Field(description="The policy rule that opened the case.")
    team: str | None
    owner: str | None
    opened_at: datetime
    due_at: datetime | None = Field(description="When a person must have reached the customer.")
    remind_at: datetime | None
    second_level_at: datetime | None
    escalation_level: int
    first_contact_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    root_cause: str | None
    latest_score: int | None = Field(description="The customer's latest score since the case.")
    recovered: bool = Field(description="A detractor who later scored as a promoter.")
    actions: list[ActionOut]
    timeline: list[TimelineEntryOut] = Field(
        default_factory=list, description="Only on GET /v1/cases/{case_id}."
    )
    transitions: list[str] = Field(
        default_factory=list,
        description="What the case's status allows now, of assign, contact, resolve, close and "
        "reopen (the caller's role may still refuse it).",
    )
    business_hours_left: float | None = Field(
        default=None,
        description="Business hours of the case's team until `due_at` (0 once it has passed); "
        "null without a deadline or a team.",
    )
    business_seconds_left: int | None = Field(
        default=None,
        description="The same in whole seconds, as of the answer's `now` (lists) or now.",
    )
    business_time_runs_until: datetime | None = Field(
        default=None,
        description="While the team is at work and the deadline ahead, when that stops (the "
        "end of the working day, or the deadline): until then business time runs like the "
        "clock, so a page may count `business_seconds_left` down; null while it stands still.",
    )
    themes: list[str] = Field(
        default_factory=list, description="Themes of the comment, as scoring tagged them."
    )
    ladder: list[RungOut] = Field(
        default_factory=list,
        description="Only on GET /v1/cases/{case_id}: the escalation ladder, in order of time.",
    )

    @classmethod
    def of(
        cls,
        case: Case,
        *,
        business_left: timedelta | None = None,
        runs_until: datetime | None = None,
        ladder: list[Rung] | None = None,
    ) -> "CaseOut":
        customer = case.customer
        return cls(
            transitions=transitions_from(case.status),
            business_hours_left=None
            if business_left is None
            else round(business_left.total_seconds() / 3600, 1),
            business_seconds_left=None
            if business_left is None
            else int(business_left.total_seconds()),
            business_time_runs_until=runs_until,
            themes=list(case.themes),
            ladder=[
                RungOut(
                    step=r.step.value,
                    at=r.at,
                    recipient=r.recipient,
                    role=r.role,
                    level=r.level,
                    state=r.state.value,
                )
                for r in ladder or ()
            ],
            case_id=case.case_id,
            response_id=case.response_id,
            source=case.source,
            survey_id=case.survey_id,
            customer=CustomerOut(
                id=case.customer_id,
                email=case.customer_email,
                name=case.customer_name,
                phone=customer.phone if customer else None,
                locale=customer.locale if customer else None,
                timezone=customer.timezone if customer else None,
                attributes=dict(customer.attributes) if customer else {},
            ),
            segment=case.segment.value,
            score=case.score,
            comment=case.comment,
            status=case.status.value,
            rule=case.rule,
            team=case.team,
            owner=case.owner,
            opened_at=case.opened_at,
            due_at=case.due_at,
            remind_at=case.remind_at,
            second_level_at=case.second_level_at,
            escalation_level=case.escalation_level,
            first_contact_at=case.first_contact_at,
            resolved_at=case.resolved_at,
            closed_at=case.closed_at,
            root_cause=case.root_cause,
            latest_score=case.latest_score,
            recovered=case.recovered,
            actions=[
                ActionOut(
                    action_id=a.action_id,
                    channel=a.channel,
                    template=a.template,
                    state=a.state.value,
                    provider_message_id=a.provider_message_id,
                    reason=a.reason,
                    scheduled_for=a.scheduled_for,
                    requested_at=a.requested_at,
                    updated_at=a.updated_at,
                )
                for a in case.actions
            ],
            timeline=[
                TimelineEntryOut(
                    entry_id=e.entry_id,
                    kind=e.kind,
                    at=e.at,
                    actor=e.actor.label() if e.actor else None,
                    by=ActorOut(
                        kind=e.actor.kind.value, id=e.actor.id, name=e.actor.name, rule=e.actor.rule
                    )
                    if e.actor
                    else None,
                    details=e.details,
                )
                for e in case.timeline
            ],
        )


class ResponseFollowUpOut(BaseModel):
    """What followup did with a response."""

    response_id: uuid.UUID
    acted_on: bool = Field(
        description="true: a case was opened for it (`case_id`); false: it was set aside "
        "(`reason`): it opened no case and sent nothing."
    )
    case_id: uuid.UUID | None = None
    reason: Literal["backfill", "older_than_window"] | None = Field(
        default=None,
        description="Why it was not acted on: backfill (imported as history with "
        "?backfill=true) or older_than_window (answered longer ago than the rule's "
        "act_on_responses_within).",
    )
    rule: str | None = Field(
        default=None,
        description="The policy rule that would have applied (null: none; only the "
        "customer's case would have recorded it).",
    )
    window: str | None = Field(
        default=None, description="The rule's act_on_responses_within, e.g. `7 days`."
    )
    customer_id: str | None = None
    segment: str | None = None
    score: int | None = None
    responded_at: datetime | None = None
    recorded_at: datetime | None = Field(default=None, description="When followup set it aside.")


class CaseList(BaseModel):
    items: list[CaseOut]
    limit: int
    offset: int
    sort: str
    now: datetime = Field(description="When the business time left of each case was counted.")
    as_of: datetime | None = Field(
        default=None,
        description="sort=urgency: the instant the order is taken at (who is breached). A "
        "cursor keeps its first page's, so a walk through the pages skips no case and shows "
        "none twice.",
    )
    next_cursor: str | None = Field(
        default=None,
        description="sort=urgency: pass it as `cursor` for the next page; null on the last.",
    )
    previous_cursor: str | None = Field(
        default=None,
        description="sort=urgency: pass it as `cursor` for the page before; null on the first.",
    )


def _case_out(case: Case, *, policy: PolicyInForce, now: datetime, ladder: bool = False) -> CaseOut:
    """The case as the API shows it, with the business time left to its deadline, counted in
    its team's calendar, and (`ladder`: a case read with its timeline) its escalation ladder."""
    return CaseOut.of(
        case,
        business_left=business_time_left(case, policy=policy, now=now),
        runs_until=business_time_runs_until(case, policy=policy, now=now),
        ladder=ladder_of(case, team=policy.policy.teams.get(case.team or "")) if ladder else None,
    )


def _invalid(field: str, message: str) -> Problem:
    return Problem(
        422,
        "Invalid request",
        f"{field}: {message}",
        errors=[{"field": field, "message": message}],
    )


class FiguresRow(BaseModel):
    group: str | None = Field(description="The team, owner, segment or period start (UTC).")
    cases: int = Field(description="Cases people work (not automated), opened in the range.")
    open: int = Field(description="Of those, still open or contacted (not yet resolved).")
    breached: int = Field(description="Contacted after the deadline, or past it uncontacted.")
    contacted: int
    contacted_in_time: int = Field(description="First contact at or before the deadline.")
    closed: int
    sla_compliance: float | None = Field(
        description="Contacted in time / (contacted in time + breached); null if none settled."
    )
    closed_loop_rate: float | None = Field(description="Closed / cases.")
    recovery_rate: float | None = Field(
        description="Detractors who answered again and now score 9–10 / those who answered again."
    )
    time_to_first_contact_p50_seconds: float | None
    time_to_first_contact_p90_seconds: float | None
    time_to_resolution_p50_seconds: float | None
    time_to_resolution_p90_seconds: float | None


class FiguresOut(BaseModel):
    group_by: str
    start: datetime | None
    end: datetime | None
    filter: dict[str, str] = Field(
        default_factory=dict, description="The team, source and segment asked for, if any."
    )
    groups: list[FiguresRow]


class MatchOut(BaseModel):
    segment: str
    source: list[str] | None = Field(description="Any of these sources; null: any source.")
    survey: list[str] | None = Field(description="Any of these surveys; null: any survey.")
    attributes: dict[str, list[str]] = Field(
        description="Each customer attribute must have one of its values."
    )


class LadderStepOut(BaseModel):
    step: str = Field(description="reminder, escalation or second_level.")
    when: str = Field(description="e.g. `4 business hours before the deadline`.")
    tells: str = Field(
        description="owner (else the team's lead), lead, or second_level (else the lead)."
    )


class CaseRuleOut(BaseModel):
    team: str
    owner: str = Field(description="account_owner, round_robin or unassigned.")
    contact_within: str = Field(description="The contact deadline, e.g. `2 business days`.")
    ladder: list[LadderStepOut]


class MessageOut(BaseModel):
    kind: str = Field(description="email, sms or ticket.")
    template: str | None
    after: str = Field(description="Calendar time after the response, e.g. `1 day`.")
    priority: str | None = Field(description="For a ticket: low, normal, high or urgent.")
    exempt_from_frequency_cap: bool


def _said(duration: Duration) -> str:
    """`1 business day`, `4 business hours`: as people write it (the policy file's words)."""
    text = str(duration)
    return text[:-1] if duration.amount == 1 else text


class RuleOut(BaseModel):
    name: str
    when: MatchOut
    specificity: int = Field(
        description="How many conditions beyond the segment: the most specific match applies."
    )
    case: CaseRuleOut | None = Field(description="null: the messages alone, nobody's case.")
    actions: list[MessageOut]

    @classmethod
    def of(cls, rule: Rule) -> "RuleOut":
        case = rule.case
        ladder = []
        if case is not None:
            if case.remind_before is not None:
                ladder.append(
                    LadderStepOut(
                        step="reminder",
                        when=f"{_said(case.remind_before)} before the deadline",
                        tells="owner",
                    )
                )
            ladder.append(LadderStepOut(step="escalation", when="at the deadline", tells="lead"))
            if case.second_level_after is not None:
                ladder.append(
                    LadderStepOut(
                        step="second_level",
                        when=f"{_said(case.second_level_after)} after the deadline",
                        tells="second_level",
                    )
                )
        return cls(
            name=rule.name,
            when=MatchOut(
                segment=rule.when.segment.value,
                source=list(rule.when.source) if rule.when.source is not None else None,
                survey=list(rule.when.survey) if rule.when.survey is not None else None,
                attributes={k: list(v) for k, v in rule.when.attributes.items()},
            ),
            specificity=rule.when.specificity,
            case=None
            if case is None
            else CaseRuleOut(
                team=case.team,
                owner=case.owner.value,
                contact_within=_said(case.contact_within),
                ladder=ladder,
            ),
            actions=[
                MessageOut(
                    kind=a.kind.value,
                    template=a.template,
                    after=_said(a.after),
                    priority=a.priority.value if a.kind is ActionKind.TICKET else None,
                    exempt_from_frequency_cap=a.exempt_from_frequency_cap,
                )
                for a in rule.actions
            ],
        )


class PolicyOut(BaseModel):
    rules: list[RuleOut] = Field(description="In the order the policy file lists them.")
    teams: list[str]
    root_causes: list[str]


_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such case (problem+json)."},
    409: {"description": "The case's state does not allow it (problem+json)."},
    422: {"description": "Invalid input, e.g. a root cause outside the taxonomy."},
}


def _in_utc_range(value: datetime) -> bool:
    """Whether `value` is a time PostgreSQL and Python can hold once in UTC (0001-01-01T00:00
    at +14:00 is not)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


def actor_of(principal: Principal) -> Actor:
    """The timeline's and the events' actor for the caller of a request."""
    if principal.is_program:
        client = clean_line(principal.client_id or principal.subject)[:200] or "program"
        return Actor(kind=ActorKind.PROGRAM, id=client, name=client)
    name = clean_line(principal.actor)[:254] or None
    return Actor(kind=ActorKind.PERSON, id=clean_line(principal.subject)[:200] or "?", name=name)


def _scope(policy: PolicyInForce, principal: Principal) -> CaseScope | None:
    """The cases `principal` may see; None: every case (an admin)."""
    if has_role(principal, Role.ADMIN):
        return None
    return scope_of(policy.policy, email=principal.email, groups=principal.groups)


def _check_sees(policy: PolicyInForce, principal: Principal, case: Case) -> None:
    visible = _scope(policy, principal)
    if visible is not None and not visible.sees(case):
        raise forbidden(
            principal,
            Role.AGENT,
            f"Case {case.case_id} belongs to team {case.team or '(none)'}, which is not "
            "yours, and you do not own it.",
        )


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
        _check_sees(policy, principal, current)
        case = await step(repo)
    return _case_out(case, policy=policy, now=now)


def router(
    *, sessions: SessionFactory, clock: Clock, policy: PolicyInForce, access: Access
) -> APIRouter:
    """The routes, each behind `access`: agents work their teams' cases (and those they own),
    leads also assign, close and reopen them, admins everything, viewers only the figures."""
    api = APIRouter()
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
        visible = _scope(policy, principal)
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
            items=[_case_out(c, policy=policy, now=now) for c in cases],
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
        _check_sees(policy, principal, case)
        return _case_out(case, policy=policy, now=clock.now(), ladder=True)

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
            lambda repo: close_case(repo, case_id, actor=actor_of(principal), now=clock.now()),
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

    _response_routes(api, sessions=sessions, policy=policy, access=access)
    do_not_contact_routes(api, sessions=sessions, clock=clock, access=access)
    _figure_routes(api, sessions=sessions, clock=clock, policy=policy, access=access)
    return api


def _response_routes(
    api: APIRouter, *, sessions: SessionFactory, policy: PolicyInForce, access: Access
) -> None:
    """What followup did with a response (agents): its case, or why it set it aside."""
    Agent = Annotated[Principal, access.require(Role.AGENT)]  # noqa: N806 - a type

    @api.get(
        "/v1/responses/{response_id}",
        response_model=ResponseFollowUpOut,
        response_model_exclude_none=True,
        summary="What followup did with a response: its case, or why it did not act on it",
        responses={
            404: {
                "description": "followup opened no case from it and did not set it aside: not "
                "received yet, no rule applies to it, or it joined the customer's case "
                "(problem+json)."
            }
        },
    )
    async def get_response_follow_up(
        principal: Agent, response_id: uuid.UUID
    ) -> ResponseFollowUpOut:
        async with sessions() as session:
            found = await follow_up_of(FollowupRepository(session), response_id)
        if found is None:
            raise Problem(
                404,
                "Not found",
                f"followup opened no case for response {response_id} and did not set it aside.",
            )
        if found.case is not None:
            _check_sees(policy, principal, found.case)
            return ResponseFollowUpOut(
                response_id=response_id, acted_on=True, case_id=found.case.case_id
            )
        held = found.set_aside
        assert held is not None  # noqa: S101 - one of the two is set
        return ResponseFollowUpOut(
            response_id=response_id,
            acted_on=False,
            reason=held.reason.value,
            rule=held.rule,
            window=held.window,
            customer_id=held.customer_id,
            segment=held.segment.value,
            score=held.score,
            responded_at=held.responded_at,
            recorded_at=held.recorded_at,
        )


def _figure_routes(
    api: APIRouter, *, sessions: SessionFactory, clock: Clock, policy: PolicyInForce, access: Access
) -> None:
    """Figures and the policy in short: no customer's data, any role (viewer and up)."""
    Viewer = Annotated[Principal, access.require(Role.VIEWER)]  # noqa: N806 - a type

    @api.get(
        "/v1/figures",
        response_model=FiguresOut,
        summary="Closed-loop figures: SLA compliance, time to contact and resolution, rates",
    )
    async def get_figures(
        _: Viewer,
        *,
        group_by: Literal["all", "team", "owner", "segment", "day", "week", "month"] = "all",
        start: Annotated[datetime | None, Query(description="Cases opened at or after.")] = None,
        end: Annotated[datetime | None, Query(description="Cases opened before.")] = None,
        team: Annotated[Line | None, Query(max_length=100, description="Only its cases.")] = None,
        source: Annotated[Line | None, Query(max_length=100, description="Only its cases.")] = None,
        segment: Annotated[Segment | None, Query(description="Only its cases.")] = None,
        survey_id: Annotated[
            Line | None, Query(max_length=200, description="Only the cases of its answers.")
        ] = None,
    ) -> FiguresOut:
        for name, value in (("start", start), ("end", end)):
            if value is not None and value.tzinfo is None:
                raise Problem(
                    422,
                    "Invalid request",
                    f"{name} needs a time zone offset.",
                    errors=[{"field": name, "message": "needs a time zone offset"}],
                )
            if value is not None and not _in_utc_range(value):
                raise Problem(
                    422,
                    "Invalid request",
                    f"{name} is outside years 1–9999 in UTC.",
                    errors=[{"field": name, "message": "is outside years 1–9999 in UTC"}],
                )
        async with sessions() as session:
            groups = await figures(
                FollowupRepository(session),
                group_by=group_by,
                start=start,
                end=end,
                now=clock.now(),
                only=FigureFilter(
                    team=team,
                    source=source,
                    segment=segment.value if segment else None,
                    survey_id=survey_id,
                ),
            )
        return FiguresOut(
            group_by=group_by,
            start=start,
            end=end,
            filter={
                k: v
                for k, v in (
                    ("team", team),
                    ("source", source),
                    ("segment", segment.value if segment else None),
                    ("survey_id", survey_id),
                )
                if v is not None
            },
            groups=[
                FiguresRow(
                    group=g.group,
                    cases=g.counts.cases,
                    open=g.counts.open,
                    breached=g.counts.breached,
                    contacted=g.counts.contacted,
                    contacted_in_time=g.counts.on_time,
                    closed=g.counts.closed,
                    sla_compliance=g.rates.sla_compliance,
                    closed_loop_rate=g.rates.closed_loop_rate,
                    recovery_rate=g.rates.recovery_rate,
                    time_to_first_contact_p50_seconds=g.counts.first_contact_p50,
                    time_to_first_contact_p90_seconds=g.counts.first_contact_p90,
                    time_to_resolution_p50_seconds=g.counts.resolution_p50,
                    time_to_resolution_p90_seconds=g.counts.resolution_p90,
                )
                for g in groups
            ],
        )

    @api.get(
        "/v1/policy",
        response_model=PolicyOut,
        summary="The policy in force: its rules (match, deadline, ladder, messages), read-only",
    )
    async def get_policy(_: Viewer) -> PolicyOut:
        """Rules name teams and roles, never a person: any role may read them."""
        p = policy.policy
        return PolicyOut(
            rules=[RuleOut.of(r) for r in p.rules],
            teams=sorted(p.teams),
            root_causes=list(p.root_causes),
        )
