"""How a customer's segment moved between two of their responses."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from nps_events import Segment, Transition

_RANK = {Segment.DETRACTOR: 0, Segment.PASSIVE: 1, Segment.PROMOTER: 2}


def transition_between(previous: Segment | None, current: Segment) -> Transition:
    """The transition from the customer's previous segment (None: no earlier response)."""
    if previous is None:
        return Transition.FIRST_RESPONSE
    if previous is Segment.PROMOTER and current is Segment.DETRACTOR:
        return Transition.CHURN_RISK
    if previous is Segment.DETRACTOR and current is Segment.PROMOTER:
        return Transition.RECOVERED
    step = _RANK[current] - _RANK[previous]
    if step > 0:
        return Transition.IMPROVED
    if step < 0:
        return Transition.DECLINED
    return Transition.UNCHANGED


@dataclass(frozen=True, slots=True)
class PastResponse:
    """One response of a customer, as much as a transition needs."""

    response_id: uuid.UUID
    responded_at: datetime
    score: int


def previous_response(
    history: Iterable[PastResponse], *, response_id: uuid.UUID, responded_at: datetime
) -> PastResponse | None:
    """The customer's response answered last before this one, among `history`.

    Another version of the same response is never its previous response: an update (a comment
    added, a score changed) is compared with the response before it, not with itself. Two
    responses answered at the same instant are ordered by response id, so the choice is the
    same on every replay.
    """
    key = (responded_at, str(response_id))
    earlier = [
        past
        for past in history
        if past.response_id != response_id and (past.responded_at, str(past.response_id)) < key
    ]
    return max(earlier, key=lambda p: (p.responded_at, str(p.response_id)), default=None)
