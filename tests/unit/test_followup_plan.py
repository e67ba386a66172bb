import uuid
from datetime import UTC, datetime, timedelta

import pytest

from nps_events import Channel, Segment
from nps_followup.domain.cases import FollowupPolicy, case_id_for, plan_follow_up

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
RESPONSE = uuid.UUID("00000000-0000-4000-8000-000000000001")


def test_detractor_case_due_in_two_days_with_an_apology_email() -> None:
    plan = plan_follow_up(
        response_id=RESPONSE,
        segment=Segment.DETRACTOR,
        has_email=True,
        now=NOW,
        policy=FollowupPolicy(),
    )
    assert plan is not None
    assert plan.due_at == NOW + timedelta(days=2)
    assert [(a.channel, a.template) for a in plan.actions] == [(Channel.EMAIL, "detractor_apology")]


@pytest.mark.parametrize("segment", [Segment.PROMOTER, Segment.PASSIVE])
def test_promoters_and_passives_open_no_case_yet(segment: Segment) -> None:
    assert (
        plan_follow_up(
            response_id=RESPONSE, segment=segment, has_email=True, now=NOW, policy=FollowupPolicy()
        )
        is None
    )


def test_detractor_without_email_still_gets_a_case_but_no_email() -> None:
    plan = plan_follow_up(
        response_id=RESPONSE,
        segment=Segment.DETRACTOR,
        has_email=False,
        now=NOW,
        policy=FollowupPolicy(),
    )
    assert plan is not None
    assert plan.actions == ()


def test_case_and_action_ids_are_the_same_for_a_redelivered_response() -> None:
    policy = FollowupPolicy(detractor_contact_within=timedelta(days=1))
    first = plan_follow_up(
        response_id=RESPONSE, segment=Segment.DETRACTOR, has_email=True, now=NOW, policy=policy
    )
    again = plan_follow_up(
        response_id=RESPONSE,
        segment=Segment.DETRACTOR,
        has_email=True,
        now=NOW + timedelta(hours=1),
        policy=policy,
    )
    assert first is not None
    assert again is not None
    assert first.case_id == again.case_id == case_id_for(RESPONSE)
    assert first.actions[0].action_id == again.actions[0].action_id
    assert again.due_at == NOW + timedelta(hours=25)
