"""Followup's repository: the SQL behind its use cases, inside one unit of work."""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Event, Segment
from nps_followup.adapters import tables
from nps_followup.domain.cases import Action, ActionState, Case, CaseStatus
from nps_kit import inbox, outbox

SOURCE = "/followup"


class FollowupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, consumer: str, event_ids: Iterable[str]) -> set[str]:
        """Event ids not processed before by `consumer`, now marked processed."""
        return await inbox.claim(self.session, tables.inbox, consumer, event_ids)

    async def cases_for_responses(
        self, response_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, uuid.UUID]:
        """The case id of each response that has a case, by response id."""
        ids = list(set(response_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(tables.cases.c.response_id, tables.cases.c.case_id).where(
                tables.cases.c.response_id.in_(ids)
            )
        )
        return {row.response_id: row.case_id for row in rows}

    async def update_case_response(
        self, case_id: uuid.UUID, *, score: int, segment: Segment, comment: str | None
    ) -> None:
        """The customer updated the response the case is about (a late comment, a new score)."""
        await self.session.execute(
            update(tables.cases)
            .where(tables.cases.c.case_id == case_id)
            .values(score=score, segment=segment.value, comment=comment)
        )

    async def add_cases(self, cases: Sequence[Case]) -> None:
        if not cases:
            return
        await self.session.execute(
            insert(tables.cases).on_conflict_do_nothing(),
            [
                {
                    "case_id": c.case_id,
                    "response_id": c.response_id,
                    "source": c.source,
                    "survey_id": c.survey_id,
                    "customer_id": c.customer_id,
                    "customer_email": c.customer_email,
                    "customer_name": c.customer_name,
                    "segment": c.segment.value,
                    "score": c.score,
                    "comment": c.comment,
                    "status": c.status.value,
                    "opened_at": c.opened_at,
                    "due_at": c.due_at,
                }
                for c in cases
            ],
        )
        rows = [
            {
                "action_id": a.action_id,
                "case_id": c.case_id,
                "channel": a.channel,
                "template": a.template,
                "state": a.state.value,
                "requested_at": a.requested_at,
                "updated_at": a.updated_at,
            }
            for c in cases
            for a in c.actions
        ]
        if rows:
            await self.session.execute(insert(tables.actions).on_conflict_do_nothing(), rows)

    async def record_action_outcome(
        self,
        action_id: uuid.UUID,
        *,
        state: ActionState,
        provider_message_id: str | None,
        reason: str | None,
        at: datetime,
    ) -> bool:
        """Record what happened to an action; False if there is no such action."""
        result = await self.session.execute(
            update(tables.actions)
            .where(tables.actions.c.action_id == action_id)
            .values(
                state=state.value,
                provider_message_id=provider_message_id,
                reason=reason,
                updated_at=at,
            )
            .returning(tables.actions.c.action_id)
        )
        return result.first() is not None

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        await outbox.add(self.session, tables.outbox, events, source=SOURCE, now=now)

    async def list_cases(
        self, *, customer_id: str | None, status: CaseStatus | None, limit: int, offset: int
    ) -> list[Case]:
        query = select(tables.cases).order_by(
            tables.cases.c.opened_at.desc(), tables.cases.c.case_id
        )
        if customer_id is not None:
            query = query.where(tables.cases.c.customer_id == customer_id)
        if status is not None:
            query = query.where(tables.cases.c.status == status.value)
        rows = (await self.session.execute(query.limit(limit).offset(offset))).all()
        return await self._with_actions(rows)

    async def get_case(self, case_id: uuid.UUID) -> Case | None:
        rows = (
            await self.session.execute(
                select(tables.cases).where(tables.cases.c.case_id == case_id)
            )
        ).all()
        cases = await self._with_actions(rows)
        return cases[0] if cases else None

    async def _with_actions(self, rows: Sequence[Row[Any]]) -> list[Case]:
        if not rows:
            return []
        actions: dict[uuid.UUID, list[Action]] = defaultdict(list)
        action_rows = await self.session.execute(
            select(tables.actions)
            .where(tables.actions.c.case_id.in_([r.case_id for r in rows]))
            .order_by(tables.actions.c.requested_at, tables.actions.c.action_id)
        )
        for a in action_rows:
            actions[a.case_id].append(
                Action(
                    action_id=a.action_id,
                    channel=a.channel,
                    template=a.template,
                    state=ActionState(a.state),
                    provider_message_id=a.provider_message_id,
                    reason=a.reason,
                    requested_at=a.requested_at,
                    updated_at=a.updated_at,
                )
            )
        return [
            Case(
                case_id=r.case_id,
                response_id=r.response_id,
                source=r.source,
                survey_id=r.survey_id,
                customer_id=r.customer_id,
                customer_email=r.customer_email,
                customer_name=r.customer_name,
                segment=Segment(r.segment),
                score=r.score,
                comment=r.comment,
                status=CaseStatus(r.status),
                opened_at=r.opened_at,
                due_at=r.due_at,
                actions=tuple(actions[r.case_id]),
            )
            for r in rows
        ]
