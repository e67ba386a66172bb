"""Scoring's repository: the SQL behind its use cases, inside one unit of work."""

import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Event, ResponseScored
from nps_kit import inbox, outbox
from nps_scoring.adapters import tables
from nps_scoring.domain.transitions import PastResponse

SOURCE = "/scoring"


class ScoringRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, consumer: str, event_ids: Iterable[str]) -> set[str]:
        """Event ids not processed before by `consumer`, now marked processed."""
        return await inbox.claim(self.session, tables.inbox, consumer, event_ids)

    async def latest_before(
        self, keys: list[tuple[str, uuid.UUID, datetime]]
    ) -> dict[int, PastResponse]:
        """For each (customer id, response id, responded at), by position: the customer's stored
        response answered last before it (another response id), if any."""
        if not keys:
            return {}
        query = text(
            """
            SELECT k.i, r.response_id, r.responded_at, r.score
            FROM unnest(CAST(:i AS int[]), CAST(:customer AS text[]), CAST(:rid AS uuid[]),
                        CAST(:at AS timestamptz[])) AS k(i, customer_id, response_id, responded_at)
            CROSS JOIN LATERAL (
                SELECT r.response_id, r.responded_at, r.score
                FROM scoring.responses AS r
                WHERE r.customer_id = k.customer_id
                  AND r.responded_at <= k.responded_at
                  AND r.response_id <> k.response_id
                  AND (r.responded_at, r.response_id::text)
                      < (k.responded_at, k.response_id::text)
                ORDER BY r.responded_at DESC, r.response_id::text DESC
                LIMIT 1
            ) AS r
            """
        )
        rows = await self.session.execute(
            query,
            {
                "i": list(range(len(keys))),
                "customer": [k[0] for k in keys],
                "rid": [k[1] for k in keys],
                "at": [k[2] for k in keys],
            },
        )
        return {row.i: PastResponse(row.response_id, row.responded_at, row.score) for row in rows}

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
                        "previous_score": s.previous_score,
                        "previous_segment": s.previous_segment and s.previous_segment.value,
                        "transition": s.transition and s.transition.value,
                        "themes": s.themes,
                        "attributes": s.customer.attributes,
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
                    "source": insert_.excluded.source,
                    "survey_id": insert_.excluded.survey_id,
                    "previous_score": insert_.excluded.previous_score,
                    "previous_segment": insert_.excluded.previous_segment,
                    "transition": insert_.excluded.transition,
                    "themes": insert_.excluded.themes,
                    "attributes": insert_.excluded.attributes,
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
