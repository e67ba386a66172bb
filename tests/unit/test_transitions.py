"""Transitions between a customer's responses: the table followup writes policy on."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from nps_events import Segment, Transition
from nps_scoring.domain.transitions import PastResponse, previous_response, transition_between

P, N, D = Segment.PROMOTER, Segment.PASSIVE, Segment.DETRACTOR


@pytest.mark.parametrize(
    ("previous", "current", "transition"),
    [
        (None, P, Transition.FIRST_RESPONSE),
        (None, D, Transition.FIRST_RESPONSE),
        (P, P, Transition.UNCHANGED),
        (N, N, Transition.UNCHANGED),
        (D, D, Transition.UNCHANGED),
        (D, N, Transition.IMPROVED),
        (N, P, Transition.IMPROVED),
        (P, N, Transition.DECLINED),
        (N, D, Transition.DECLINED),
        (P, D, Transition.CHURN_RISK),
        (D, P, Transition.RECOVERED),
    ],
)
def test_segment_move_gives_one_transition(
    previous: Segment | None, current: Segment, transition: Transition
) -> None:
    assert transition_between(previous, current) is transition


T0 = datetime(2026, 11, 1, tzinfo=UTC)
A, B, C = (uuid.UUID(int=i) for i in (1, 2, 3))


def past(rid: uuid.UUID, days: int, score: int = 5) -> PastResponse:
    return PastResponse(rid, T0 + timedelta(days=days), score)


@pytest.mark.parametrize(
    ("history", "current", "at_day", "expected"),
    [
        pytest.param([], A, 0, None, id="no history: first response"),
        pytest.param([past(A, 0)], A, 5, None, id="an update is not compared with itself"),
        pytest.param([past(A, 0), past(B, 3)], B, 3, A, id="update compared with the one before"),
        pytest.param([past(A, 0), past(B, 3)], C, 5, B, id="latest earlier response wins"),
        pytest.param(
            [past(A, 0), past(B, 9)], C, 5, A, id="a late arrival compares with what came before"
        ),
        pytest.param([past(B, 5)], A, 5, None, id="same instant: ordered by id (A before B)"),
        pytest.param([past(A, 5)], B, 5, A, id="same instant: B comes after A"),
    ],
)
def test_previous_response_is_the_latest_other_one_answered_before(
    history: list[PastResponse], current: uuid.UUID, at_day: int, expected: uuid.UUID | None
) -> None:
    found = previous_response(
        history, response_id=current, responded_at=T0 + timedelta(days=at_day)
    )
    assert (found.response_id if found else None) == expected
