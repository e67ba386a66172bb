from dataclasses import dataclass
from datetime import datetime

from nps_events import ContactOptOut, Customer, OptOutScope, ResponseReceived
from nps_events.text import clean_text

#: The longest comment a `ResponseReceived` carries (its contract's `maxLength`).
MAX_COMMENT_CHARS = 10_000
_ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class CanonicalResponse:
    """A response in npsloop's own shape, already validated at the edge or by an adapter."""

    response_id: str
    survey_id: str
    customer: Customer
    score: int
    comment: str | None
    responded_at: datetime
    #: The customer's vendor fields that could not become attributes, and why (names only).
    attributes_set_aside: tuple[str, ...] = ()


def fit_comment(comment: str | None, limit: int = MAX_COMMENT_CHARS) -> tuple[str | None, bool]:
    """The comment, stripped and cut to `limit` characters (ending in "…" if it was cut), and
    whether it was cut. A long comment is never dropped: its start is what a person reads.
    Control characters other than tab and line breaks are dropped: a survey tool's comment is
    what a customer typed, and no one can be asked to send it again (the canonical API has
    refused them already, naming the field)."""
    text = clean_text(comment).strip() if comment else None
    if not text:
        return None, False
    limit = min(limit, MAX_COMMENT_CHARS)
    if len(text) <= limit:
        return text, False
    return text[: limit - 1].rstrip() + _ELLIPSIS, True


def normalise(
    response: CanonicalResponse,
    *,
    source: str,
    now: datetime,
    comment_limit: int = MAX_COMMENT_CHARS,
    backfill: bool = False,
) -> ResponseReceived:
    """The event for `response`; its `response_id` depends only on `source` and the provider's
    id, its event id on that and the content (a replay is the same event, an update a new one).
    `backfill`: imported history, scored and counted but never followed up."""
    comment, _ = fit_comment(response.comment, comment_limit)
    return ResponseReceived(
        response_id=ResponseReceived.derive_response_id(source, response.response_id),
        source=source,
        provider_response_id=response.response_id,
        survey_id=response.survey_id,
        customer=response.customer,
        score=response.score,
        comment=comment,
        responded_at=response.responded_at,
        received_at=now,
        backfill=backfill,
    )


def opt_out_event(
    *,
    source: str,
    customer_id: str,
    provider_event_id: str,
    occurred_at: datetime,
    scope: OptOutScope,
) -> ContactOptOut:
    return ContactOptOut(
        source=source,
        customer_id=customer_id[:200],
        scope=scope,
        provider_event_id=provider_event_id[:200],
        occurred_at=occurred_at,
    )
