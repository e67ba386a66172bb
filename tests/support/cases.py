"""Followup's cases made and inspected straight through its handlers, for the API tests."""

import uuid
from datetime import datetime

from nps_events import Customer, ResponseScored, Segment
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.cases import Case
from nps_followup.handlers import PolicyInForce, get_case, open_cases
from nps_kit.db import SessionFactory, unit_of_work


async def detractor_case(
    sessions: SessionFactory,
    policy: PolicyInForce,
    *,
    now: datetime,
    source: str,
    attributes: dict[str, str] | None = None,
    comment: str | None = None,
    score: int = 2,
    name: str = "Ada",
    email: str = "ada@example.com",
    themes: list[str] | None = None,
    timezone: str | None = None,
    survey_id: str = "s-1",
) -> Case:
    """A new customer's response (a detractor's 2 unless told) opened by the policy, as the
    consumer would: its case, with the owner, actions and timeline the rule gives it."""
    segment = (
        Segment.DETRACTOR if score <= 6 else Segment.PASSIVE if score <= 8 else Segment.PROMOTER
    )
    scored = ResponseScored(
        response_id=uuid.uuid4(),
        source=source,
        survey_id=survey_id,
        customer=Customer(
            id=f"{source}-{uuid.uuid4().hex[:8]}",
            email=email,
            name=name,
            timezone=timezone,
            attributes=attributes or {},
        ),
        score=score,
        segment=segment,
        comment=comment,
        themes=themes,
        responded_at=now,
        scored_at=now,
        received_event_id=uuid.uuid4(),
    )
    async with unit_of_work(sessions) as session:
        [case] = await open_cases(FollowupRepository(session), [scored], now=now, policy=policy)
    return case


async def footprint(sessions: SessionFactory, case_id: uuid.UUID) -> tuple[str | None, int, int]:
    """What a refused request must not have changed: the owner, and how many actions and
    timeline entries the case has."""
    async with sessions() as session:
        case = await get_case(FollowupRepository(session), case_id)
    assert case is not None
    return case.owner, len(case.actions), len(case.timeline)
