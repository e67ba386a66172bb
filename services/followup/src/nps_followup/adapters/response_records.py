"""Followup's SQL for the responses it received: set aside, or kept for replays."""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Segment
from nps_followup.adapters import tables
from nps_followup.adapters.bulk import columns, unnest_insert
from nps_followup.domain.cases import NotActedOn, SetAside
from nps_followup.domain.simulation import StoredResponse
from nps_kit.db import driver_fetch

_SCORED_COLUMNS = (
    "response_id",
    "customer_id",
    "source",
    "survey_id",
    "segment",
    "score",
    "revision",
    "responded_at",
    "received_at",
    "backfill",
    "has_email",
    "has_phone",
    "timezone",
    "attributes",
)


def insert_scored(prefix: str = "") -> TextClause:
    """The compact records of scored responses, one statement with an array per column
    (`adapters.bulk`: SQLAlchemy ran the insert once per response, an executemany, and built
    it again for every batch). A later revision replaces an earlier one, never the reverse;
    the first `received_at` stays. Parameters: `scored_columns`."""
    return unnest_insert(
        tables.scored_responses,
        _SCORED_COLUMNS,
        prefix=prefix,
        on_conflict="(response_id) DO UPDATE SET "
        + ", ".join(
            f"{name} = EXCLUDED.{name}"
            for name in _SCORED_COLUMNS
            if name not in ("response_id", "received_at")
        )
        + " WHERE EXCLUDED.revision >= followup.scored_responses.revision",
    )


_RECORD_SCORED = insert_scored()
_CASES_FOR_RESPONSES = text(
    "SELECT response_id, case_id FROM followup.cases WHERE response_id = ANY(CAST(:ids AS uuid[]))"
)


def scored_columns(responses: Sequence[StoredResponse], prefix: str = "") -> dict[str, list[Any]]:
    """The latest revision of each response (a statement may touch a row once), in response
    order."""
    latest: dict[uuid.UUID, StoredResponse] = {}
    for r in responses:
        kept = latest.get(r.response_id)
        if kept is None or r.revision >= kept.revision:
            latest[r.response_id] = r
    rows = [
        {
            "response_id": r.response_id,
            "customer_id": r.customer_id,
            "source": r.source,
            "survey_id": r.survey_id,
            "segment": r.segment.value,
            "score": r.score,
            "revision": r.revision,
            "responded_at": r.responded_at,
            "received_at": r.received_at,
            "backfill": r.backfill,
            "has_email": r.has_email,
            "has_phone": r.has_phone,
            "timezone": r.timezone,
            "attributes": r.attributes,
        }
        for r in sorted(latest.values(), key=lambda r: r.response_id)
    ]
    return columns(tables.scored_responses, _SCORED_COLUMNS, rows, prefix=prefix)


class ResponseRecords:
    """What followup keeps of the responses themselves: which has a case, those set aside
    (not acted on) with why, and the compact record of every scored response that
    `policy simulate` replays."""

    session: AsyncSession

    async def cases_for_responses(
        self, response_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, uuid.UUID]:
        """The case id of each response that has a case, by response id."""
        ids = list(set(response_ids))
        if not ids:
            return {}
        rows = await driver_fetch(self.session, _CASES_FOR_RESPONSES, {"ids": ids})
        return {row[0]: row[1] for row in rows}

    async def set_aside(self, responses: Sequence[SetAside]) -> None:
        """Record responses not acted on; a later version of one replaces what is recorded."""
        if not responses:
            return
        t = tables.responses_not_acted_on
        statement = insert(t).values(
            [
                {
                    "response_id": r.response_id,
                    "customer_id": r.customer_id,
                    "source": r.source,
                    "survey_id": r.survey_id,
                    "segment": r.segment.value,
                    "score": r.score,
                    "responded_at": r.responded_at,
                    "reason": r.reason.value,
                    "rule": r.rule,
                    "window": r.window,
                    "recorded_at": r.recorded_at,
                }
                for r in responses
            ]
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[t.c.response_id],
                set_={
                    name: statement.excluded[name]
                    for name in (
                        "segment",
                        "score",
                        "responded_at",
                        "reason",
                        "rule",
                        "window",
                        "recorded_at",
                    )
                },
            )
        )

    async def set_aside_response(self, response_id: uuid.UUID) -> SetAside | None:
        """What followup recorded of a response it did not act on, if it did not."""
        t = tables.responses_not_acted_on
        row = (await self.session.execute(select(t).where(t.c.response_id == response_id))).first()
        if row is None:
            return None
        return SetAside(
            response_id=row.response_id,
            customer_id=row.customer_id,
            source=row.source,
            survey_id=row.survey_id,
            segment=Segment(row.segment),
            score=row.score,
            responded_at=row.responded_at,
            reason=NotActedOn(row.reason),
            rule=row.rule,
            window=row.window,
            recorded_at=row.recorded_at,
        )

    async def record_scored(self, responses: Sequence[StoredResponse]) -> None:
        """Keep the compact record of each scored response for replays; a later revision
        replaces an earlier one (never the reverse), and the first `received_at` stays."""
        if responses:
            await self.session.execute(_RECORD_SCORED, scored_columns(responses))

    async def scored_between(self, start: datetime, end: datetime) -> list[StoredResponse]:
        """The stored responses answered in [start, end), in the order followup received them."""
        t = tables.scored_responses
        rows = await self.session.execute(
            select(t)
            .where(t.c.responded_at >= start, t.c.responded_at < end)
            .order_by(t.c.received_at, t.c.response_id)
        )
        return [
            StoredResponse(
                response_id=row.response_id,
                customer_id=row.customer_id,
                source=row.source,
                survey_id=row.survey_id,
                segment=Segment(row.segment),
                score=row.score,
                revision=row.revision,
                responded_at=row.responded_at,
                received_at=row.received_at,
                backfill=row.backfill,
                has_email=row.has_email,
                has_phone=row.has_phone,
                timezone=row.timezone,
                attributes=row.attributes,
            )
            for row in rows
        ]
