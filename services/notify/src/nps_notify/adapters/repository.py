"""Notify's repository: the dispatch ledger and the outbox."""

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import Event
from nps_kit import outbox
from nps_notify.adapters import tables
from nps_notify.domain.dispatch import DispatchState, EmailJob, Outcome

SOURCE = "/notify"


class NotifyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Delete the customer's dispatch ledger entries and their queued, unpublished results.
        An action redelivered after this would be dispatched again: erase followup first, so
        no action for the customer is planned any more (docs/operations.md)."""
        dispatches = await self.session.execute(
            tables.dispatches.delete().where(tables.dispatches.c.customer_id == customer_id)
        )
        queued = await outbox.discard_for_key(self.session, tables.outbox, customer_id.encode())
        return {"dispatches": int(getattr(dispatches, "rowcount", 0) or 0), "outbox": queued}

    async def begin_dispatches(
        self, jobs: list[EmailJob], *, now: datetime
    ) -> dict[uuid.UUID, DispatchState | None]:
        """Record each action as `sending` unless the ledger knows it; return what it knew before
        (None for the actions claimed now)."""
        if not jobs:
            return {}
        claimed = set(
            (
                await self.session.execute(
                    insert(tables.dispatches)
                    .values(
                        [
                            {
                                "action_id": j.action_id,
                                "case_id": j.case_id,
                                "customer_id": j.customer_id,
                                "channel": j.channel,
                                "template": j.template,
                                "state": DispatchState.SENDING.value,
                                "attempts": 1,
                                "created_at": now,
                                "updated_at": now,
                            }
                            for j in jobs
                        ]
                    )
                    .on_conflict_do_nothing()
                    .returning(tables.dispatches.c.action_id)
                )
            ).scalars()
        )
        known = {j.action_id for j in jobs} - claimed
        previous: dict[uuid.UUID, DispatchState | None] = dict.fromkeys(claimed)
        if known:
            rows = await self.session.execute(
                select(tables.dispatches.c.action_id, tables.dispatches.c.state).where(
                    tables.dispatches.c.action_id.in_(known)
                )
            )
            previous.update({row.action_id: DispatchState(row.state) for row in rows})
        return previous

    async def finish_dispatch(
        self, action_id: uuid.UUID, outcome: Outcome, *, now: datetime
    ) -> None:
        await self.session.execute(
            update(tables.dispatches)
            .where(tables.dispatches.c.action_id == action_id)
            .values(
                state=outcome.state.value,
                provider_message_id=outcome.provider_message_id,
                reason=outcome.reason,
                updated_at=now,
            )
        )

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        await outbox.add(self.session, tables.outbox, events, source=SOURCE, now=now)
