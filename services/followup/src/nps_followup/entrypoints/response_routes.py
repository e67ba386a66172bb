"""What followup did with a response, over HTTP: its case, or why it set it aside."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from nps_followup.adapters.repository import FollowupRepository
from nps_followup.entrypoints.callers import check_sees
from nps_followup.handlers import PolicyInForce, follow_up_of
from nps_kit.access import Access
from nps_kit.auth import Principal, Role
from nps_kit.db import SessionFactory
from nps_kit.http import Problem


class ResponseFollowUpOut(BaseModel):
    """What followup did with a response."""

    response_id: uuid.UUID
    acted_on: bool = Field(
        description="true: a case was opened for it (`case_id`); false: it was set aside "
        "(`reason`): it opened no case and sent nothing."
    )
    case_id: uuid.UUID | None = None
    reason: Literal["backfill", "older_than_window", "holdout"] | None = Field(
        default=None,
        description="Why it was not acted on: backfill (imported as history with "
        "?backfill=true), older_than_window (answered longer ago than the rule's "
        "act_on_responses_within) or holdout (the customer is in the rule's holdout: "
        "docs/impact.md).",
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


def response_routes(
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
            check_sees(policy, principal, found.case)
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
