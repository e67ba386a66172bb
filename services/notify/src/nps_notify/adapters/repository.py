"""Notify's repository: the dispatch ledger and the outbox."""

import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import Row, String, Uuid, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nps_events import EVENT_TYPES, Event
from nps_kit import outbox
from nps_kit.db import SessionFactory, driver_connection, unit_of_work
from nps_notify.adapters import tables
from nps_notify.domain.dispatch import DispatchState, Outcome


class Job(Protocol):
    """What the ledger needs of any channel's job."""

    @property
    def action_id(self) -> uuid.UUID: ...
    @property
    def case_id(self) -> uuid.UUID: ...
    @property
    def customer_id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def template(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ParkedAction:
    action: Event
    attempts: int


@dataclass(frozen=True, slots=True)
class UnreadableParked:
    """A parked action that no longer decodes (parked before its event type was tightened):
    it can never be sent, and fails with `problem`."""

    action_id: uuid.UUID
    ce_type: str
    problem: str


SOURCE = "/notify"

# The ledger's statements on a slice of actions, each row's values as arrays (`unnest`): the
# text is the same whatever the slice's size, so it is prepared once per connection, where an
# `insert().values([...])` of n rows was compiled again for every slice (with that, the
# ledger's CPU per email halved: docs/performance.md, 2026-12-05). They run on the
# transaction's own asyncpg connection (`nps_kit.db.driver_connection`: same transaction,
# prepared once by asyncpg), not through the session, which cost ~150 µs more CPU per
# statement (docs/performance.md, Notify, issue #20, third session).
# The previous slice's outcomes go in the statement that marks the next slice `sending`: one
# round trip fewer per slice (docs/performance.md, Notify, 2026-12-06). A slice's actions are
# never the previous slice's (the dispatcher sends each action once per call), and should one
# be, the insert finds it known and leaves it to the update.
_BEGIN = """
    WITH unparked AS (
        DELETE FROM notify.parked WHERE action_id = ANY($6::uuid[])
    ), finished AS (
        UPDATE notify.dispatches AS d
        SET state = f.state, provider_message_id = f.provider_message_id, reason = f.reason,
            updated_at = $10
        FROM unnest($6::uuid[], $7::text[], $8::text[], $9::text[])
            AS f(action_id, state, provider_message_id, reason)
        WHERE d.action_id = f.action_id
    )
    INSERT INTO notify.dispatches
        (action_id, case_id, customer_id, channel, template, state, attempts, created_at,
         updated_at)
    SELECT action_id, case_id, customer_id, channel, template, 'sending', 1, $10, $10
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[])
        AS v(action_id, case_id, customer_id, channel, template)
    ON CONFLICT (action_id) DO NOTHING
    RETURNING action_id
"""

_KNOWN = text(
    "SELECT action_id, state FROM notify.dispatches "
    "WHERE action_id = ANY(CAST(:action_id AS uuid[]))"
).columns(action_id=Uuid, state=String)

# With its outcome an action leaves `parked` (when it was there), in the same round trip.
_FINISH = """
    WITH unparked AS (
        DELETE FROM notify.parked WHERE action_id = ANY($1::uuid[])
    )
    UPDATE notify.dispatches AS d
    SET state = v.state, provider_message_id = v.provider_message_id, reason = v.reason,
        updated_at = $5
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])
        AS v(action_id, state, provider_message_id, reason)
    WHERE d.action_id = v.action_id
"""


def _parked(row: Row[Any]) -> ParkedAction | UnreadableParked:
    model = EVENT_TYPES.get(row.ce_type)
    if model is None:
        return UnreadableParked(row.action_id, row.ce_type, f"unknown type {row.ce_type!r}")
    try:
        return ParkedAction(model.model_validate_json(row.action), row.attempts)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return UnreadableParked(row.action_id, row.ce_type, problems)


class NotifyRepository:
    """The dispatch ledger, the parked actions and the outbox, in one session's transaction
    (it implements the ports of `nps_notify.handlers.ports`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Delete the customer's dispatch ledger entries and their queued, unpublished results.
        An action redelivered after this would be dispatched again: erase followup first, so
        no action for the customer is planned any more (docs/operations.md)."""
        theirs = select(tables.dispatches.c.action_id).where(
            tables.dispatches.c.customer_id == customer_id
        )
        # A parked action holds the whole command (address, phone, name): it goes too.
        parked = await self.session.execute(
            tables.parked.delete().where(tables.parked.c.action_id.in_(theirs))
        )
        dispatches = await self.session.execute(
            tables.dispatches.delete().where(tables.dispatches.c.customer_id == customer_id)
        )
        queued = await outbox.discard_for_key(self.session, tables.outbox, customer_id.encode())
        return {
            "dispatches": int(getattr(dispatches, "rowcount", 0) or 0),
            "parked": int(getattr(parked, "rowcount", 0) or 0),
            "outbox": queued,
        }

    async def begin_dispatches(
        self,
        jobs: Sequence[Job],
        *,
        now: datetime,
        finishing: Mapping[uuid.UUID, Outcome] | None = None,
    ) -> dict[uuid.UUID, DispatchState | None]:
        """Record each action as `sending` unless the ledger knows it, or knows it `deferred`
        (then it is `sending` again); return what it knew before (None for the actions claimed
        now, `deferred` for those claimed again). `finishing`: other actions' final outcomes,
        written as `finish_dispatches` writes them, in the same statement."""
        done = finishing or {}
        if not jobs:
            await self.finish_dispatches(done, now=now)
            return {}
        connection = await driver_connection(self.session)
        rows = await connection.fetch(
            _BEGIN,
            [j.action_id for j in jobs],
            [j.case_id for j in jobs],
            [j.customer_id for j in jobs],
            [j.channel for j in jobs],
            [j.template for j in jobs],
            list(done),
            [o.state.value for o in done.values()],
            [o.provider_message_id for o in done.values()],
            [o.reason for o in done.values()],
            now,
        )
        claimed = {row[0] for row in rows}
        known = {j.action_id for j in jobs} - claimed
        previous: dict[uuid.UUID, DispatchState | None] = dict.fromkeys(claimed)
        if known:
            rows = await self.session.execute(_KNOWN, {"action_id": list(known)})
            previous.update({row.action_id: DispatchState(row.state) for row in rows})
        again = [a for a, state in previous.items() if state is DispatchState.DEFERRED]
        if again:
            # Only one consumer or sweeper takes it again: the row lock decides.
            retaken = set(
                (
                    await self.session.execute(
                        update(tables.dispatches)
                        .where(
                            tables.dispatches.c.action_id.in_(again),
                            tables.dispatches.c.state == DispatchState.DEFERRED.value,
                        )
                        .values(
                            state=DispatchState.SENDING.value,
                            attempts=tables.dispatches.c.attempts + 1,
                            updated_at=now,
                        )
                        .returning(tables.dispatches.c.action_id)
                    )
                ).scalars()
            )
            for action_id in set(again) - retaken:
                previous[action_id] = DispatchState.SENDING  # someone else has it now
        return previous

    async def defer(
        self, action: Event, *, channel: str, reason: str, not_before: datetime, now: datetime
    ) -> None:
        """The ledger says `deferred` and the action waits in `parked` until `not_before`."""
        action_id = uuid.UUID(str(getattr(action, "action_id")))  # noqa: B009 - every action has one
        await self.session.execute(
            update(tables.dispatches)
            .where(tables.dispatches.c.action_id == action_id)
            .values(state=DispatchState.DEFERRED.value, reason=reason, updated_at=now)
        )
        statement = insert(tables.parked).values(
            action_id=action_id,
            channel=channel,
            ce_type=action.ce_type,
            action=action.model_dump_json(),
            not_before=not_before,
            attempts=1,
            reason=reason,
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[tables.parked.c.action_id],
                set_={
                    "not_before": not_before,
                    "reason": reason,
                    "attempts": tables.parked.c.attempts + 1,
                },
            )
        )

    async def claim_parked(
        self, *, now: datetime, lease: timedelta, limit: int
    ) -> list[ParkedAction | UnreadableParked]:
        """Up to `limit` parked actions now due, leased for `lease`: another sweeper skips
        them meanwhile, and a sweeper that dies mid-way leaves them due again after it."""
        due = (
            select(tables.parked.c.action_id)
            .where(tables.parked.c.not_before <= now)
            .order_by(tables.parked.c.not_before)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        rows = await self.session.execute(
            update(tables.parked)
            .where(tables.parked.c.action_id.in_(due))
            .values(not_before=now + lease)
            .returning(
                tables.parked.c.action_id,
                tables.parked.c.ce_type,
                tables.parked.c.action,
                tables.parked.c.attempts,
            )
        )
        return [_parked(row) for row in rows]

    async def ledger_entries(
        self, action_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
        """Each action's case and customer, as its ledger entry recorded them."""
        if not action_ids:
            return {}
        rows = await self.session.execute(
            select(
                tables.dispatches.c.action_id,
                tables.dispatches.c.case_id,
                tables.dispatches.c.customer_id,
            ).where(tables.dispatches.c.action_id.in_(action_ids))
        )
        return {row.action_id: (row.case_id, row.customer_id) for row in rows}

    async def parked_count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(tables.parked)) or 0)

    async def ticket_action(self, ticket_id: str) -> tuple[uuid.UUID, uuid.UUID, str] | None:
        """The `CreateTicket` action that opened the helpdesk's ticket `ticket_id`: its id,
        its case and customer; None for a ticket npsloop did not open."""
        row = (
            await self.session.execute(
                select(
                    tables.dispatches.c.action_id,
                    tables.dispatches.c.case_id,
                    tables.dispatches.c.customer_id,
                ).where(
                    tables.dispatches.c.channel == "ticket",
                    tables.dispatches.c.template == "create",
                    tables.dispatches.c.provider_message_id == ticket_id,
                )
            )
        ).first()
        return (row.action_id, row.case_id, row.customer_id) if row is not None else None

    async def provider_id_of(self, action_id: uuid.UUID) -> str | None:
        """The provider's id for an action sent before (the ticket a priority raise is for)."""
        return (
            await self.session.execute(
                select(tables.dispatches.c.provider_message_id).where(
                    tables.dispatches.c.action_id == action_id,
                    tables.dispatches.c.state == DispatchState.SENT.value,
                )
            )
        ).scalar_one_or_none()

    async def finish_dispatches(
        self, outcomes: Mapping[uuid.UUID, Outcome], *, now: datetime
    ) -> None:
        # One statement for the slice, its rows as arrays: compiled once, one round trip, and
        # the finished actions leave `parked` in it.
        if not outcomes:
            return
        connection = await driver_connection(self.session)
        await connection.execute(
            _FINISH,
            list(outcomes),
            [o.state.value for o in outcomes.values()],
            [o.provider_message_id for o in outcomes.values()],
            [o.reason for o in outcomes.values()],
            now,
        )

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        await outbox.add(self.session, tables.outbox, events, source=SOURCE, now=now)


def ledger_in(
    sessions: SessionFactory,
) -> Callable[[], AbstractAsyncContextManager[NotifyRepository]]:
    """Units of work over the ledger, for the dispatcher (which opens its own: at most once
    commits `sending` before each provider call and the outcome after it)."""

    @asynccontextmanager
    async def transaction() -> AsyncIterator[NotifyRepository]:
        async with unit_of_work(sessions) as session:
            yield NotifyRepository(session)

    return transaction
