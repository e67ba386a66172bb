"""The cases as followup's API shows them."""

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from nps_followup.domain.cases import Case
from nps_followup.domain.escalation import Rung, ladder_of
from nps_followup.domain.lifecycle import transitions_from
from nps_followup.handlers import PolicyInForce, business_time_left, business_time_runs_until


class ActionOut(BaseModel):
    action_id: uuid.UUID
    channel: str = Field(
        description="email, sms, ticket, staff, or webhook (the survey tool asked to survey the "
        "customer again: template request_resurvey, docs/resurvey.md)."
    )
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
        "contact, resolved, closed, reopened, response_attached, ticket_status, "
        "resurvey_requested, resurvey_skipped (docs/resurvey.md), referral_recorded."
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


def case_out(case: Case, *, policy: PolicyInForce, now: datetime, ladder: bool = False) -> CaseOut:
    """The case as the API shows it, with the business time left to its deadline, counted in
    its team's calendar, and (`ladder`: a case read with its timeline) its escalation ladder."""
    return CaseOut.of(
        case,
        business_left=business_time_left(case, policy=policy, now=now),
        runs_until=business_time_runs_until(case, policy=policy, now=now),
        ladder=ladder_of(case, team=policy.policy.teams.get(case.team or "")) if ladder else None,
    )
