"""Scoring's use cases. Each runs inside the caller's unit of work."""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from nps_events import Event, ResponseReceived, ResponseScored
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.domain.segments import net_promoter_score, segment_of
from nps_scoring.domain.themes import ThemeClassifier
from nps_scoring.domain.transitions import PastResponse, previous_response, transition_between

CONSUMER = "scoring"


async def score_responses(
    repo: ScoringRepository,
    responses: list[ResponseReceived],
    *,
    now: datetime,
    classifier: ThemeClassifier,
) -> list[ResponseScored]:
    """Segment and store each response event not seen before; queue a `ResponseScored` for
    each. A later event for a known response is an update: it replaces the stored version and
    its `ResponseScored` carries the next revision.

    Each is compared with the same customer's previous response (stored, or earlier in this
    batch) for its transition, and its comment is given its themes."""
    fresh = await repo.claim(CONSUMER, (str(r.event_id()) for r in responses))
    todo: list[ResponseReceived] = []
    for response in responses:
        fresh_id = str(response.event_id())
        if fresh_id in fresh:
            fresh.discard(fresh_id)  # the same event twice in one batch counts once
            todo.append(response)
    stored_before = await repo.latest_before(
        [(r.customer.id, r.response_id, r.responded_at) for r in todo]
    )
    # Responses of this batch, by customer, as later ones in the batch must see them.
    in_batch: dict[str, dict[uuid.UUID, PastResponse]] = defaultdict(dict)
    scored: list[ResponseScored] = []
    for position, response in enumerate(todo):
        event_id = response.event_id()
        known = in_batch[response.customer.id]
        history = dict(known)
        if (stored := stored_before.get(position)) is not None:
            history.setdefault(stored.response_id, stored)
        previous = previous_response(
            history.values(), response_id=response.response_id, responded_at=response.responded_at
        )
        previous_segment = None if previous is None else segment_of(previous.score)
        segment = segment_of(response.score)
        known[response.response_id] = PastResponse(
            response.response_id, response.responded_at, response.score
        )
        scored.append(
            ResponseScored(
                response_id=response.response_id,
                source=response.source,
                survey_id=response.survey_id,
                customer=response.customer,
                score=response.score,
                segment=segment,
                comment=response.comment,
                responded_at=response.responded_at,
                scored_at=now,
                received_event_id=event_id,
                previous_score=None if previous is None else previous.score,
                previous_segment=previous_segment,
                transition=transition_between(previous_segment, segment),
                themes=themes_of(response, classifier),
            )
        )
    if not scored:
        return []
    revisions = await repo.upsert_responses(scored)
    scored = [s.model_copy(update={"revision": revisions[i]}) for i, s in enumerate(scored)]
    events: list[Event] = list(scored)
    await repo.publish_later(events, now=now)
    return scored


def themes_of(response: ResponseReceived, classifier: ThemeClassifier) -> list[str] | None:
    """None when there is no comment (nothing to classify), else its themes ([] if none)."""
    if response.comment is None or not response.comment.strip():
        return None
    return classifier.themes_of(
        response.comment, source=response.source, locale=response.customer.locale
    )


@dataclass(frozen=True)
class NpsSummary:
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None


async def nps_summary(repo: ScoringRepository, *, survey_id: str | None = None) -> NpsSummary:
    """Counts per segment and the NPS over every scored response (optionally one survey)."""
    counts = await repo.segment_counts(survey_id=survey_id)
    promoters, passives, detractors = counts["promoter"], counts["passive"], counts["detractor"]
    return NpsSummary(
        responses=promoters + passives + detractors,
        promoters=promoters,
        passives=passives,
        detractors=detractors,
        nps=net_promoter_score(promoters, passives, detractors),
    )
