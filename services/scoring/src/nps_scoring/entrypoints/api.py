"""Scoring's read API."""

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from nps_kit.db import SessionFactory
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.handlers import nps_summary


class NpsOut(BaseModel):
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None = Field(
        description="% promoters − % detractors; null when there are no responses."
    )


def router(*, sessions: SessionFactory) -> APIRouter:
    api = APIRouter()

    @api.get("/v1/nps", response_model=NpsOut, summary="NPS over every scored response")
    async def get_nps(survey_id: str | None = Query(default=None, max_length=200)) -> NpsOut:
        async with sessions() as session:
            summary = await nps_summary(ScoringRepository(session), survey_id=survey_id)
        return NpsOut(**summary.__dict__)

    return api
