"""Followup's HTTP API for customer-success teams."""

import uuid
from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.cases import Case, CaseStatus
from nps_followup.handlers import get_case, list_cases
from nps_kit.db import SessionFactory
from nps_kit.http import Problem


class ActionOut(BaseModel):
    action_id: uuid.UUID
    channel: str
    template: str
    state: str = Field(
        description="planned, sent, failed or unknown (interrupted mid-send: check by hand)."
    )
    provider_message_id: str | None
    reason: str | None
    requested_at: datetime
    updated_at: datetime


class CustomerOut(BaseModel):
    id: str
    email: str | None
    name: str | None


class CaseOut(BaseModel):
    case_id: uuid.UUID
    response_id: uuid.UUID
    source: str
    survey_id: str
    customer: CustomerOut
    segment: str
    score: int
    comment: str | None
    status: str
    opened_at: datetime
    due_at: datetime
    actions: list[ActionOut]

    @classmethod
    def of(cls, case: Case) -> "CaseOut":
        return cls(
            case_id=case.case_id,
            response_id=case.response_id,
            source=case.source,
            survey_id=case.survey_id,
            customer=CustomerOut(
                id=case.customer_id, email=case.customer_email, name=case.customer_name
            ),
            segment=case.segment.value,
            score=case.score,
            comment=case.comment,
            status=case.status.value,
            opened_at=case.opened_at,
            due_at=case.due_at,
            actions=[
                ActionOut(
                    action_id=a.action_id,
                    channel=a.channel,
                    template=a.template,
                    state=a.state.value,
                    provider_message_id=a.provider_message_id,
                    reason=a.reason,
                    requested_at=a.requested_at,
                    updated_at=a.updated_at,
                )
                for a in case.actions
            ],
        )


class CaseList(BaseModel):
    items: list[CaseOut]
    limit: int
    offset: int


def router(*, sessions: SessionFactory) -> APIRouter:
    api = APIRouter()

    @api.get("/v1/cases", response_model=CaseList, summary="List follow-up cases, newest first")
    async def get_cases(
        customer_id: str | None = Query(default=None, max_length=200),
        status: CaseStatus | None = None,
        limit: int = Query(default=50, ge=1, le=500),
        offset: int = Query(default=0, ge=0),
    ) -> CaseList:
        async with sessions() as session:
            cases = await list_cases(
                FollowupRepository(session),
                customer_id=customer_id,
                status=status,
                limit=limit,
                offset=offset,
            )
        return CaseList(items=[CaseOut.of(c) for c in cases], limit=limit, offset=offset)

    @api.get(
        "/v1/cases/{case_id}",
        response_model=CaseOut,
        summary="One case with its actions",
        responses={404: {"description": "No such case (problem+json)."}},
    )
    async def get_one(case_id: uuid.UUID) -> CaseOut:
        async with sessions() as session:
            case = await get_case(FollowupRepository(session), case_id)
        if case is None:
            raise Problem(404, "Not found", f"No case {case_id}.")
        return CaseOut.of(case)

    return api
