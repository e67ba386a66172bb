"""Referrals: a promoter's code closes the loop when someone it brought arrives
(`POST /v1/referrals`, from the signup or CRM system that saw the code), and how many
referrals came in per period (`GET /v1/referrals/figures`)."""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from nps_events import Actor, Line
from nps_events.models import AwareDatetime
from nps_followup.adapters.referrals import ReferralStore
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.handlers.referrals import (
    ReferralIdReused,
    UnknownReferralCode,
    record_referral,
)
from nps_followup.metrics import REFERRALS_RECORDED
from nps_kit.access import Access
from nps_kit.auth import Principal, Role
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.http import Problem


class ReferralIn(BaseModel):
    referral_id: Line = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._:@/-]+$",
        description="Your own id for this referral (e.g. the new account's id in your system): "
        "a retry with the same id is the same referral, counted once.",
    )
    code: Line = Field(
        min_length=1,
        max_length=64,
        description="The referral code from the promoter's link (16 characters, a–z and 2–7).",
    )
    referred_at: AwareDatetime = Field(
        description="When the referred party arrived (signed up, bought…), with a time zone."
    )
    reference: Line | None = Field(
        default=None,
        max_length=200,
        description="Your reference of the referred party (an account id, not a name or an "
        "email address: followup needs no personal data about them).",
    )


class ReferralOut(BaseModel):
    referral_id: str
    code: str
    customer_id: str = Field(description="The promoter whose code it is.")
    case_id: str = Field(description="The promoter's case, whose timeline records it.")
    referred_at: datetime
    reference: str | None
    recorded_at: datetime = Field(description="When followup first recorded it.")


class ReferralPeriodOut(BaseModel):
    period: datetime = Field(description="The period's first instant (UTC).")
    referrals: int = Field(description="Referrals recorded with `referred_at` in the period.")
    promoters: int = Field(description="Promoters (customers) whose code brought them.")


class ReferralFiguresOut(BaseModel):
    group_by: str
    start: datetime | None
    end: datetime | None
    total: int
    periods: list[ReferralPeriodOut] = Field(
        description="Oldest first; periods with none left out."
    )


def referral_routes(
    api: APIRouter,
    *,
    sessions: SessionFactory,
    clock: Clock,
    access: Access,
    actor: Callable[[Principal], Actor],
) -> None:
    """Record referrals (agents, and programs given the agent role); read their figures
    (any role: no customer's data). `actor`: the timeline's actor for a caller."""
    Agent = Annotated[Principal, access.require(Role.AGENT)]  # noqa: N806 - a type
    Viewer = Annotated[Principal, access.require(Role.VIEWER)]  # noqa: N806 - a type

    @api.post(
        "/v1/referrals",
        response_model=ReferralOut,
        status_code=201,
        summary="Record a referral brought by a promoter's referral code",
        description="Records the referral on the case of the promoter whose referral link "
        "carries the code (its timeline shows `referral_recorded`). Idempotent on "
        "`referral_id`: a retry answers 200 with the referral as first recorded, and counts "
        "nothing again.",
        responses={
            200: {"description": "Already recorded with this id (a retry): nothing changed."},
            404: {"description": "No referral link followup sent carries the code (problem+json)."},
            409: {
                "description": "The id is already recorded with another code, time or reference "
                "(problem+json)."
            },
        },
    )
    async def post_referral(principal: Agent, body: ReferralIn, response: Response) -> ReferralOut:
        try:
            async with unit_of_work(sessions) as session:
                recorded = await record_referral(
                    FollowupRepository(session),
                    referral_id=body.referral_id,
                    code=body.code,
                    referred_at=body.referred_at,
                    reference=body.reference,
                    actor=actor(principal),
                    now=clock.now(),
                )
        except UnknownReferralCode as exc:
            raise Problem(
                404,
                "Unknown referral code",
                str(exc),
                errors=[{"field": "code", "message": "no referral link carries it"}],
            ) from None
        except ReferralIdReused as exc:
            raise Problem(409, "Referral id already used", str(exc)) from None
        if recorded.new:
            REFERRALS_RECORDED.inc()
        else:
            response.status_code = 200
        r = recorded.referral
        return ReferralOut(
            referral_id=r.referral_id,
            code=r.code,
            customer_id=r.customer_id,
            case_id=str(r.case_id),
            referred_at=r.referred_at,
            reference=r.reference,
            recorded_at=r.recorded_at,
        )

    @api.get(
        "/v1/referrals/figures",
        response_model=ReferralFiguresOut,
        summary="Referrals per day, week or month, and how many promoters brought them",
    )
    async def get_referral_figures(
        _: Viewer,
        *,
        group_by: Literal["day", "week", "month"] = "month",
        start: Annotated[
            AwareDatetime | None, Query(description="Referred at or after (with an offset).")
        ] = None,
        end: Annotated[
            AwareDatetime | None, Query(description="Referred before (with an offset).")
        ] = None,
    ) -> ReferralFiguresOut:
        async with sessions() as session:
            store: ReferralStore = FollowupRepository(session)
            rows = await store.referrals_per_period(group_by, start=start, end=end)
        return ReferralFiguresOut(
            group_by=group_by,
            start=start,
            end=end,
            total=sum(n for _, n, _ in rows),
            periods=[ReferralPeriodOut(period=p, referrals=n, promoters=k) for p, n, k in rows],
        )
