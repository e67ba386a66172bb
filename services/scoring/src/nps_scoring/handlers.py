"""Scoring's use cases. Each runs inside the caller's unit of work."""

from dataclasses import dataclass
from datetime import datetime

from nps_events import Event, ResponseReceived, ResponseScored
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.domain.segments import net_promoter_score, segment_of

CONSUMER = "scoring"


async def score_responses(
    repo: ScoringRepository, responses: list[ResponseReceived], *, now: datetime
) -> list[ResponseScored]:
    """Segment and store each response event not seen before; queue a `ResponseScored` for
    each. A later event for a known response is an update: it replaces the stored version and
    its `ResponseScored` carries the next revision."""
    fresh = await repo.claim(CONSUMER, (str(r.event_id()) for r in responses))
    scored: list[ResponseScored] = []
    for response in responses:
        event_id = response.event_id()
        if str(event_id) not in fresh:
            continue
        fresh.discard(str(event_id))  # the same event twice in one batch counts once
        scored.append(
            ResponseScored(
                response_id=response.response_id,
                source=response.source,
                survey_id=response.survey_id,
                customer=response.customer,
                score=response.score,
                segment=segment_of(response.score),
                comment=response.comment,
                responded_at=response.responded_at,
                scored_at=now,
                received_event_id=event_id,
            )
        )
    if not scored:
        return []
    revisions = await repo.upsert_responses(scored)
    scored = [s.model_copy(update={"revision": revisions[i]}) for i, s in enumerate(scored)]
    events: list[Event] = list(scored)
    await repo.publish_later(events, now=now)
    return scored


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
