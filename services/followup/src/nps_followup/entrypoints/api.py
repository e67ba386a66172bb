"""Followup's HTTP API for customer-success teams: cases, their lifecycle and timeline, the
do-not-contact list, and the policy in force. Each group of routes is in its own module
(`case_routes`, `response_routes`, `do_not_contact_routes`); `router` puts them together, and
the figures' routes are here."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from nps_events import Line, Segment
from nps_followup.adapters.repository import FigureFilter, FollowupRepository
from nps_followup.entrypoints.case_routes import case_routes
from nps_followup.entrypoints.do_not_contact_routes import do_not_contact_routes
from nps_followup.entrypoints.policy_models import PolicyOut, RuleOut
from nps_followup.entrypoints.response_routes import response_routes
from nps_followup.handlers import PolicyInForce, figures
from nps_kit.access import Access
from nps_kit.auth import Principal, Role
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory
from nps_kit.http import Problem


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


def _in_utc_range(value: datetime) -> bool:
    """Whether `value` is a time PostgreSQL and Python can hold once in UTC (0001-01-01T00:00
    at +14:00 is not)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


def router(
    *, sessions: SessionFactory, clock: Clock, policy: PolicyInForce, access: Access
) -> APIRouter:
    """The routes, each behind `access`: agents work their teams' cases (and those they own),
    leads also assign, close and reopen them, admins everything, viewers only the figures."""
    api = APIRouter()
    case_routes(api, sessions=sessions, clock=clock, policy=policy, access=access)
    response_routes(api, sessions=sessions, policy=policy, access=access)
    do_not_contact_routes(api, sessions=sessions, clock=clock, access=access)
    _figure_routes(api, sessions=sessions, clock=clock, policy=policy, access=access)
    return api


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
