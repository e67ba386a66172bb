"""The answer pairs behind the impact figures: each scored response followup recorded, the
same customer's next answer to the same survey, and what followup recorded about the earlier
one (its case, the case's deadline, first contact and first message sent; or why it was set
aside). One statement; which group a pair falls in is the domain's (`domain/impact.py`)."""

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Segment
from nps_followup.adapters import tables
from nps_followup.domain.impact import AnswerPair

#: Channels that reach the customer (staff notices have a recipient; tickets reach nobody; a
#: re-survey's `webhook` asks the survey tool, which is not a follow-up message either).
_CUSTOMER_CHANNELS = ("email", "sms")
_SEGMENTS = {s.value: s for s in Segment}


class ImpactReader:
    """Reads the answer pairs of a period (an `AnswerPairs` port)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def answer_pairs(
        self,
        *,
        start: datetime | None,
        end: datetime | None,
        source: str | None,
        survey_id: str | None,
    ) -> list[AnswerPair]:
        """Every pair whose earlier answer was given in [start, end) (the later one whenever it
        came), of one source or survey when given."""
        s = tables.scored_responses
        ordered = select(
            s.c.response_id,
            s.c.customer_id,
            s.c.segment,
            s.c.responded_at,
            s.c.backfill,
            func.lead(s.c.segment)
            .over(
                partition_by=(s.c.customer_id, s.c.source, s.c.survey_id),
                order_by=(s.c.responded_at, s.c.response_id),
            )
            .label("later_segment"),
            func.lead(s.c.responded_at)
            .over(
                partition_by=(s.c.customer_id, s.c.source, s.c.survey_id),
                order_by=(s.c.responded_at, s.c.response_id),
            )
            .label("later_at"),
        )
        # Answers before `start` are never the earlier one, nor the later one of a pair whose
        # earlier one is at or after `start`: leaving them out changes no pair of the period.
        if start is not None:
            ordered = ordered.where(s.c.responded_at >= start)
        if source is not None:
            ordered = ordered.where(s.c.source == source)
        if survey_id is not None:
            ordered = ordered.where(s.c.survey_id == survey_id)
        o = ordered.subquery("o")
        c, n, a = tables.cases, tables.responses_not_acted_on, tables.actions
        sent = (
            select(func.min(a.c.updated_at))
            .where(
                a.c.case_id == c.c.case_id,
                a.c.channel.in_(_CUSTOMER_CHANNELS),
                a.c.recipient.is_(None),
                a.c.state == "sent",
            )
            .scalar_subquery()
        )
        query = (
            select(
                o.c.customer_id,
                o.c.segment,
                o.c.later_segment,
                o.c.responded_at,
                o.c.later_at,
                o.c.backfill,
                n.c.reason,
                c.c.case_id,
                c.c.due_at,
                c.c.first_contact_at,
                sent.label("message_sent_at"),
            )
            .select_from(o)
            .outerjoin(c, c.c.response_id == o.c.response_id)
            .outerjoin(n, n.c.response_id == o.c.response_id)
            .where(o.c.later_at.is_not(None))
        )
        if end is not None:
            query = query.where(o.c.responded_at < end)
        rows = (await self.session.execute(query)).all()
        # Unpacked as tuples, segments looked up in a dict: reading 50,000 pairs by attribute
        # name and through the enum's constructor cost about four times as much (bench/impact.py).
        return [
            AnswerPair(
                customer_id=customer_id,
                earlier_segment=_SEGMENTS[segment],
                later_segment=_SEGMENTS[later_segment],
                earlier_at=responded_at,
                later_at=later_at,
                backfill=backfill,
                set_aside=reason,
                has_case=case_id is not None,
                due_at=due_at,
                first_contact_at=first_contact_at,
                message_sent_at=message_sent_at,
            )
            for (
                customer_id,
                segment,
                later_segment,
                responded_at,
                later_at,
                backfill,
                reason,
                case_id,
                due_at,
                first_contact_at,
                message_sent_at,
            ) in rows
        ]
