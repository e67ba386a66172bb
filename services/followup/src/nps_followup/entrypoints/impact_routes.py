"""`GET /v1/impact`: the impact figures (docs/impact.md). Figures only, no customer's data:
any role from viewer up, as the closed-loop figures."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from nps_events import Line, Segment
from nps_followup.adapters.impact import ImpactReader
from nps_followup.domain.impact import Done, Estimate
from nps_followup.handlers.impact import impact_figures
from nps_kit.access import Access
from nps_kit.auth import Principal, Role
from nps_kit.db import SessionFactory
from nps_kit.http import Problem

METHOD = (
    "Pairs of a customer's answer and their next answer to the same survey; each customer "
    "once per group. Per customer, d = indicator(later) - indicator(earlier) with the "
    "indicator +1 promoter, 0 passive, -1 detractor; change = 100 * mean(d); standard error "
    "= 100 * sd(d) / sqrt(n); margin of error (95%) = 1.96 * standard error. Conclusive only "
    "with n >= min_customers and an interval that excludes zero."
)


def _points(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class EstimateOut(BaseModel):
    customers: int = Field(description="n: customers in the group, each counted once.")
    change: float = Field(description="The NPS change in points (later - earlier).")
    margin_of_error: float | None = Field(
        description="95% margin of error of the change, in points; null with one customer."
    )
    low: float | None = Field(description="change - margin_of_error.")
    high: float | None = Field(description="change + margin_of_error.")
    conclusive: bool = Field(
        description="true only with at least min_customers customers and an interval that "
        "excludes zero: a change that is not conclusive is not proof of anything."
    )
    reason: str | None = Field(description="Why it is not conclusive; null when it is.")

    @classmethod
    def of(cls, estimate: Estimate) -> "EstimateOut":
        return cls(
            customers=estimate.customers,
            change=round(estimate.change, 2),
            margin_of_error=_points(estimate.margin),
            low=_points(estimate.low),
            high=_points(estimate.high),
            conclusive=estimate.conclusive,
            reason=estimate.reason,
        )


class ImpactGroupOut(EstimateOut):
    segment: Segment = Field(description="The segment of the earlier answer.")
    done: Done = Field(description="What followup did between the two answers.")
    nps_before: float = Field(description="NPS of the group's earlier answers.")
    nps_after: float = Field(description="NPS of the group's later answers.")


class HoldoutComparisonOut(EstimateOut):
    """`change` here is the messages' effect: the change of the customers messaged minus the
    change of those held out; `customers` the smaller of the two groups."""

    segment: Segment
    messaged: int = Field(description="Customers in automated_message_only.")
    held_out: int = Field(description="Customers in held_out.")


class ImpactOut(BaseModel):
    start: datetime | None = Field(
        serialization_alias="from", description="Earlier answers given at or after."
    )
    end: datetime | None = Field(
        serialization_alias="to", description="Earlier answers given before."
    )
    filter: dict[str, str] = Field(description="The source and survey asked for, if any.")
    method: str = METHOD
    min_customers: int
    history_left_out: int = Field(
        description="Pairs whose earlier answer is history (imported with backfill, or older "
        "than the rule's act_on_responses_within): what was done then is not known."
    )
    groups: list[ImpactGroupOut]
    against_holdout: list[HoldoutComparisonOut] = Field(
        description="Per segment with both groups: automated_message_only against held_out."
    )


def _utc(name: str, value: datetime | None) -> datetime | None:
    """`value`, refused with a 422 naming the field if UTC cannot hold it."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise Problem(
            422,
            "Invalid request",
            f"{name} is outside years 1-9999 in UTC.",
            errors=[{"field": name, "message": "is outside years 1-9999 in UTC"}],
        ) from None


def impact_routes(api: APIRouter, *, sessions: SessionFactory, access: Access) -> None:
    Viewer = Annotated[Principal, access.require(Role.VIEWER)]  # noqa: N806 - a type

    @api.get(
        "/v1/impact",
        response_model=ImpactOut,
        summary="Impact figures: NPS change between customers' consecutive answers, by what "
        "was done in between, with margins of error",
    )
    async def get_impact(
        _: Viewer,
        *,
        start: Annotated[
            AwareDatetime | None,
            Query(alias="from", description="Earlier answers given at or after (with offset)."),
        ] = None,
        end: Annotated[
            AwareDatetime | None,
            Query(alias="to", description="Earlier answers given before (with offset)."),
        ] = None,
        source: Annotated[
            Line | None, Query(max_length=100, description="Only its answers.")
        ] = None,
        survey_id: Annotated[
            Line | None, Query(max_length=200, description="Only the answers to it.")
        ] = None,
    ) -> ImpactOut:
        start, end = _utc("from", start), _utc("to", end)
        async with sessions() as session:
            found = await impact_figures(
                ImpactReader(session), start=start, end=end, source=source, survey_id=survey_id
            )
        return ImpactOut(
            start=start,
            end=end,
            filter={k: v for k, v in (("source", source), ("survey_id", survey_id)) if v},
            min_customers=found.min_customers,
            history_left_out=found.history,
            groups=[
                ImpactGroupOut(
                    **EstimateOut.of(g.estimate).model_dump(),
                    segment=g.segment,
                    done=g.done,
                    nps_before=round(g.nps_before, 2),
                    nps_after=round(g.nps_after, 2),
                )
                for g in found.groups
            ],
            against_holdout=[
                HoldoutComparisonOut(
                    **EstimateOut.of(c.effect).model_dump(),
                    segment=c.segment,
                    messaged=c.messaged,
                    held_out=c.held_out,
                )
                for c in found.against_holdout
            ],
        )
