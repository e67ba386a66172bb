"""The SQL of re-surveys (`domain.resurvey`): cancelling a closed case's pending re-survey,
the customers' latest answers, and the re-surveys requested and answered. Mixed into
`FollowupRepository`, whose session it uses."""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_followup.adapters import tables
from nps_followup.adapters.bulk import any_of
from nps_followup.domain.cases import TimerKind
from nps_followup.domain.resurvey import ResurveyAnswer, ResurveyRequest


class ResurveyStore:
    session: AsyncSession

    async def cancel_resurvey(self, case_id: uuid.UUID, now: datetime) -> datetime | None:
        """Cancel the case's pending re-survey; return when it would have been asked (None:
        none was pending)."""
        t = tables.timers
        fire_at: datetime | None = await self.session.scalar(
            update(t)
            .where(
                t.c.case_id == case_id,
                t.c.state == "pending",
                t.c.kind == TimerKind.RESURVEY.value,
            )
            .values(state="cancelled", fired_at=now)
            .returning(t.c.fire_at)
        )
        return fire_at

    async def latest_answers(self, customer_ids: Iterable[str]) -> dict[str, datetime]:
        """When each customer last answered a survey live (history imported as back-fill
        does not count), from the record of every scored response."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        s = tables.scored_responses
        rows = await self.session.execute(
            select(s.c.customer_id, func.max(s.c.responded_at).label("at"))
            .where(any_of(s.c.customer_id, ids), s.c.backfill.is_(False))
            .group_by(s.c.customer_id)
        )
        return {row.customer_id: row.at for row in rows}

    async def record_resurveys(self, requested: Sequence[ResurveyRequest]) -> None:
        """The re-surveys just requested: each case's latest, awaiting the customer's answer."""
        if not requested:
            return
        r = tables.resurveys
        statement = insert(r)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[r.c.case_id],
                set_={
                    "timer_id": statement.excluded.timer_id,
                    "closed_at": statement.excluded.closed_at,
                    "requested_at": statement.excluded.requested_at,
                    "answered_at": None,
                    "answer_response_id": None,
                    "answer_score": None,
                },
            ),
            [
                {
                    "case_id": x.case_id,
                    "customer_id": x.customer_id,
                    "timer_id": x.timer_id,
                    "closed_at": x.closed_at,
                    "requested_at": x.requested_at,
                }
                for x in requested
            ],
        )

    async def awaiting_resurvey_answer(
        self, case_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, datetime]:
        """When a re-survey was requested, for each of these cases whose customer has not
        answered it yet."""
        ids = sorted(set(case_ids))
        if not ids:
            return {}
        r = tables.resurveys
        rows = await self.session.execute(
            select(r.c.case_id, r.c.requested_at).where(
                any_of(r.c.case_id, ids), r.c.answered_at.is_(None)
            )
        )
        return {row.case_id: row.requested_at for row in rows}

    async def record_resurvey_answers(self, answers: Sequence[ResurveyAnswer]) -> None:
        """The customers' answers to their re-surveys (a re-survey answered already keeps its
        first answer)."""
        if not answers:
            return
        r = tables.resurveys
        await self.session.execute(
            update(r)
            .where(and_(r.c.case_id == bindparam("b_case_id"), r.c.answered_at.is_(None)))
            .values(
                answered_at=bindparam("b_at"),
                answer_response_id=bindparam("b_response_id"),
                answer_score=bindparam("b_score"),
            )
            .execution_options(synchronize_session=False),
            [
                {
                    "b_case_id": a.case_id,
                    "b_at": a.answered_at,
                    "b_response_id": a.response_id,
                    "b_score": a.score,
                }
                for a in answers
            ],
        )
