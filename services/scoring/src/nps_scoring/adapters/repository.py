"""Scoring's repository: the SQL behind its use cases, inside one unit of work."""

import uuid
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

    async def upsert_responses(self, scored: list[ResponseScored]) -> dict[int, int]:
        """Store each scored response, replacing the stored version of one already known.
        Returns the revision each got, by position in `scored`: 1 when new, +1 per update."""
        revisions: dict[int, int] = {}
        # One statement per round: a response updated twice in one batch goes in two rounds,
        # since ON CONFLICT DO UPDATE cannot touch a row twice in one statement.
        pending = list(enumerate(scored))
        while pending:
            round_: list[tuple[int, ResponseScored]] = []
            later: list[tuple[int, ResponseScored]] = []
            seen: set[uuid.UUID] = set()
            for position, s in pending:
                (later if s.response_id in seen else round_).append((position, s))
                seen.add(s.response_id)
            insert_ = insert(tables.responses).values(
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
                    for _, s in round_
                ]
            )
            stmt = insert_.on_conflict_do_update(
                index_elements=[tables.responses.c.response_id],
                set_={
                    "score": insert_.excluded.score,
                    "segment": insert_.excluded.segment,
                    "comment": insert_.excluded.comment,
                    "responded_at": insert_.excluded.responded_at,
                    "scored_at": insert_.excluded.scored_at,
                    "revision": tables.responses.c.revision + 1,
                },
            ).returning(tables.responses.c.response_id, tables.responses.c.revision)
            got = {row.response_id: row.revision for row in await self.session.execute(stmt)}
            for position, s in round_:
                revisions[position] = got[s.response_id]
            pending = later
        return revisions

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        await outbox.add(self.session, tables.outbox, events, source=SOURCE, now=now)

    async def segment_counts(self, *, survey_id: str | None) -> Counter[str]:
        query = select(tables.responses.c.segment, func.count()).group_by(
            tables.responses.c.segment
        )
        if survey_id is not None:
            query = query.where(tables.responses.c.survey_id == survey_id)
        return Counter(dict((await self.session.execute(query)).tuples().all()))
