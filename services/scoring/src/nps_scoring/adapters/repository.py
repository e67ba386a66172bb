"""Scoring's repository: the SQL behind its use cases, inside one unit of work."""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Event, ResponseScored
from nps_kit import inbox, outbox
from nps_scoring.adapters import tables

SOURCE = "/scoring"


class ScoringRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, consumer: str, event_ids: Iterable[str]) -> set[str]:
        """Event ids not processed before by `consumer`, now marked processed."""
        return await inbox.claim(self.session, tables.inbox, consumer, event_ids)

    async def add_scored(self, scored: list[ResponseScored]) -> None:
        if not scored:
            return
        await self.session.execute(
            insert(tables.responses).on_conflict_do_nothing(),
            [
                {
                    "response_id": s.response_id,
                    "source": s.source,
                    "survey_id": s.survey_id,
                    "customer_id": s.customer.id,
                    "score": s.score,
                    "segment": s.segment.value,
                    "comment": s.comment,
                    "responded_at": s.responded_at,
                    "scored_at": s.scored_at,
                }
                for s in scored
            ],
        )

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        await outbox.add(self.session, tables.outbox, events, source=SOURCE, now=now)

    async def segment_counts(self, *, survey_id: str | None) -> Counter[str]:
        query = select(tables.responses.c.segment, func.count()).group_by(
            tables.responses.c.segment
        )
        if survey_id is not None:
            query = query.where(tables.responses.c.survey_id == survey_id)
        return Counter(dict((await self.session.execute(query)).tuples().all()))
