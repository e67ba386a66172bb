from dataclasses import dataclass
from datetime import datetime

from nps_events import Customer, ResponseReceived


@dataclass(frozen=True, slots=True)
class CanonicalResponse:
    """A response in npsloop's own JSON shape, already validated at the edge."""

    response_id: str
    survey_id: str
    customer: Customer
    score: int
    comment: str | None
    responded_at: datetime


def normalise(response: CanonicalResponse, *, source: str, now: datetime) -> ResponseReceived:
    """The event for `response`; its id depends only on `source` and the provider's id."""
    comment = response.comment.strip() if response.comment else None
    return ResponseReceived(
        response_id=ResponseReceived.derive_response_id(source, response.response_id),
        source=source,
        provider_response_id=response.response_id,
        survey_id=response.survey_id,
        customer=response.customer,
        score=response.score,
        comment=comment or None,
        responded_at=response.responded_at,
        received_at=now,
    )
