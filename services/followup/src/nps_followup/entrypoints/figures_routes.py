"""`GET /v1/figures`: the closed-loop figures, for the console's dashboard and for reports.

Figures by team, segment or period name no one: any role may read them. Figures by owner name
the staff who own the cases (their email addresses), so they are for leads and admins only; a
viewer asking for them gets a 403 problem+json saying so."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from nps_events import Line, Segment
from nps_followup.adapters.figures import FigureFilter
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.handlers import figures
from nps_kit.access import Access, forbidden, has_role
from nps_kit.auth import Principal, Role
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory
from nps_kit.http import Problem

Grouping = Literal["all", "team", "owner", "segment", "day", "week", "month"]

#: Groupings whose groups are people: only leads and admins may see them.
NAMING_STAFF = frozenset({"owner"})


class FiguresRow(BaseModel):
    grouping: str = Field(
        description="Which of the groupings asked this row belongs to: team, owner, segment, "
        "day, week, month or all."
    )
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
    answered_again: int = Field(
        description="Detractor cases whose customer answered again (while the case was worked, "
        "after it closed, or to its re-survey): the recovery rate's sample."
    )
    recovered: int = Field(description="Of those, the customers whose latest answer is 9–10.")
    recovery_rate: float | None = Field(
        description="Recovered / answered again: only customers who answered again count, so a "
        "detractor never asked again is neither a success nor a failure; null when none "
        "answered again. Read it with `answered_again`: a rate of a few answers proves little."
    )
    time_to_first_contact_p50_seconds: float | None = Field(
        description="Exact median (PostgreSQL's percentile_cont, interpolated) from opening to "
        "first contact, on the clock."
    )
    time_to_first_contact_p90_seconds: float | None
    time_to_resolution_p50_seconds: float | None
    time_to_resolution_p90_seconds: float | None


class FiguresOut(BaseModel):
    group_by: str = Field(
        description="The groupings asked, in order, joined by commas (`team` or `team,owner`)."
    )
    start: datetime | None
    end: datetime | None
    filter: dict[str, str] = Field(
        default_factory=dict, description="The team, source and segment asked for, if any."
    )
    groups: list[FiguresRow] = Field(
        description="Each grouping's groups in turn, in the order the groupings were asked."
    )


def in_utc_range(value: datetime) -> bool:
    """Whether `value` is a time PostgreSQL and Python can hold once in UTC (0001-01-01T00:00
    at +14:00 is not)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


def figure_routes(
    api: APIRouter, *, sessions: SessionFactory, clock: Clock, access: Access
) -> None:
    Viewer = Annotated[Principal, access.require(Role.VIEWER)]  # noqa: N806 - a type

    @api.get(
        "/v1/figures",
        response_model=FiguresOut,
        summary="Closed-loop figures: SLA compliance, time to contact and resolution, rates",
        responses={403: {"description": "Figures by owner asked by a viewer or an agent."}},
    )
    async def get_figures(
        principal: Viewer,
        *,
        group_by: Annotated[
            list[Grouping] | None,
            Query(
                description="Repeat it for several groupings in one pass over the cases "
                "(group_by=team&group_by=owner). By owner: leads and admins only."
            ),
        ] = None,
        start: Annotated[datetime | None, Query(description="Cases opened at or after.")] = None,
        end: Annotated[datetime | None, Query(description="Cases opened before.")] = None,
        team: Annotated[Line | None, Query(max_length=100, description="Only its cases.")] = None,
        source: Annotated[Line | None, Query(max_length=100, description="Only its cases.")] = None,
        segment: Annotated[Segment | None, Query(description="Only its cases.")] = None,
        survey_id: Annotated[
            Line | None, Query(max_length=200, description="Only the cases of its answers.")
        ] = None,
    ) -> FiguresOut:
        groupings = list(dict.fromkeys(group_by or ["all"]))
        if NAMING_STAFF & set(groupings) and not has_role(principal, Role.LEAD):
            raise forbidden(
                principal,
                Role.LEAD,
                "Figures by owner name the staff who own the cases: they are for leads and "
                "admins. Ask by team, segment or period instead.",
            )
        for name, value in (("start", start), ("end", end)):
            if value is not None and value.tzinfo is None:
                raise Problem(
                    422,
                    "Invalid request",
                    f"{name} needs a time zone offset.",
                    errors=[{"field": name, "message": "needs a time zone offset"}],
                )
            if value is not None and not in_utc_range(value):
                raise Problem(
                    422,
                    "Invalid request",
                    f"{name} is outside years 1–9999 in UTC.",
                    errors=[{"field": name, "message": "is outside years 1–9999 in UTC"}],
                )
        only = {
            k: v
            for k, v in (
                ("team", team),
                ("source", source),
                ("segment", segment.value if segment else None),
                ("survey_id", survey_id),
            )
            if v is not None
        }
        async with sessions() as session:
            groups = await figures(
                FollowupRepository(session),
                group_by=groupings,
                start=start,
                end=end,
                now=clock.now(),
                only=FigureFilter(**only),
            )
        return FiguresOut(
            group_by=",".join(groupings),
            start=start,
            end=end,
            filter=only,
            groups=[
                FiguresRow(
                    grouping=g.grouping,
                    group=g.group,
                    cases=g.counts.cases,
                    open=g.counts.open,
                    breached=g.counts.breached,
                    contacted=g.counts.contacted,
                    contacted_in_time=g.counts.on_time,
                    closed=g.counts.closed,
                    sla_compliance=g.rates.sla_compliance,
                    closed_loop_rate=g.rates.closed_loop_rate,
                    answered_again=g.counts.with_later_answer,
                    recovered=g.counts.recovered,
                    recovery_rate=g.rates.recovery_rate,
                    time_to_first_contact_p50_seconds=g.counts.first_contact_p50,
                    time_to_first_contact_p90_seconds=g.counts.first_contact_p90,
                    time_to_resolution_p50_seconds=g.counts.resolution_p50,
                    time_to_resolution_p90_seconds=g.counts.resolution_p90,
                )
                for g in groups
            ],
        )
