"""In-memory fakes of notify's ports (`nps_notify.handlers.ports`) and of its `Channel` port,
for unit tests of dispatching without PostgreSQL or a provider. The ledger keeps what the SQL
keeps, as the port's docstrings describe it, and a transaction that raises leaves it as it was
(like a rolled-back unit of work); the PostgreSQL tests (tests/integration) cover the SQL."""

import copy
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nps_events import Event
from nps_notify.adapters.repository import Job, ParkedAction, UnreadableParked
from nps_notify.domain.dispatch import DispatchState, Outcome


@dataclass
class LedgerEntry:
    case_id: uuid.UUID
    customer_id: str
    channel: str
    template: str
    state: DispatchState
    attempts: int = 1
    provider_message_id: str | None = None
    reason: str | None = None


@dataclass
class Parked:
    """An action waiting for another try; `unreadable` stands for one whose stored form no
    longer decodes (what the SQL adapter reports as `UnreadableParked`)."""

    action: Event | None
    not_before: datetime
    attempts: int = 1
    reason: str | None = None
    unreadable: UnreadableParked | None = None


@dataclass
class InMemoryLedger:
    """The `DispatchLedger` and `TicketLedger` ports over dicts: `entries` by action id,
    `parked` by action id, `published` the outbox (committed events only); `transactions`
    counts units of work opened."""

    entries: dict[uuid.UUID, LedgerEntry] = field(default_factory=dict)
    parked: dict[uuid.UUID, Parked] = field(default_factory=dict)
    published: list[Event] = field(default_factory=list)
    transactions: int = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator["InMemoryLedger"]:
        """A unit of work: what it changed is undone if it raises."""
        self.transactions += 1
        saved = copy.deepcopy((self.entries, self.parked, self.published))
        try:
            yield self
        except BaseException:
            self.entries, self.parked, self.published = saved
            raise

    async def begin_dispatches(
        self,
        jobs: Sequence[Job],
        *,
        now: datetime,
        finishing: Mapping[uuid.UUID, Outcome] | None = None,
    ) -> dict[uuid.UUID, DispatchState | None]:
        await self.finish_dispatches(finishing or {}, now=now)
        previous: dict[uuid.UUID, DispatchState | None] = {}
        for job in jobs:
            entry = self.entries.get(job.action_id)
            if entry is None:
                self.entries[job.action_id] = LedgerEntry(
                    job.case_id, job.customer_id, job.channel, job.template, DispatchState.SENDING
                )
                previous[job.action_id] = None
                continue
            previous[job.action_id] = entry.state
            if entry.state is DispatchState.DEFERRED:
                entry.state = DispatchState.SENDING
                entry.attempts += 1
        return previous

    async def provider_id_of(self, action_id: uuid.UUID) -> str | None:
        entry = self.entries.get(action_id)
        if entry is None or entry.state is not DispatchState.SENT:
            return None
        return entry.provider_message_id

    async def defer(
        self, action: Event, *, channel: str, reason: str, not_before: datetime, now: datetime
    ) -> None:
        action_id: uuid.UUID = getattr(action, "action_id")  # noqa: B009 - an action command
        entry = self.entries[action_id]
        entry.state, entry.reason = DispatchState.DEFERRED, reason
        parked = self.parked.get(action_id)
        attempts = 1 if parked is None else parked.attempts + 1
        self.parked[action_id] = Parked(action, not_before, attempts, reason)

    async def finish_dispatches(
        self, outcomes: Mapping[uuid.UUID, Outcome], *, now: datetime
    ) -> None:
        for action_id, outcome in outcomes.items():
            entry = self.entries.get(action_id)
            if entry is not None:
                entry.state = outcome.state
                entry.provider_message_id = outcome.provider_message_id
                entry.reason = outcome.reason
            self.parked.pop(action_id, None)

    async def claim_parked(
        self, *, now: datetime, lease: timedelta, limit: int
    ) -> list[ParkedAction | UnreadableParked]:
        due = sorted(
            (p for p in self.parked.items() if p[1].not_before <= now),
            key=lambda p: p[1].not_before,
        )[:limit]
        claimed: list[ParkedAction | UnreadableParked] = []
        for _, parked in due:
            parked.not_before = now + lease
            if parked.unreadable is not None:
                claimed.append(parked.unreadable)
            else:
                assert parked.action is not None
                claimed.append(ParkedAction(parked.action, parked.attempts))
        return claimed

    async def parked_count(self) -> int:
        return len(self.parked)

    async def ledger_entries(
        self, action_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
        return {
            a: (self.entries[a].case_id, self.entries[a].customer_id)
            for a in action_ids
            if a in self.entries
        }

    async def ticket_action(self, ticket_id: str) -> tuple[uuid.UUID, uuid.UUID, str] | None:
        for action_id, entry in self.entries.items():
            if (entry.channel, entry.template, entry.provider_message_id) == (
                "ticket",
                "create",
                ticket_id,
            ):
                return action_id, entry.case_id, entry.customer_id
        return None

    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        self.published += events


@dataclass
class ScriptedChannel:
    """A fake of notify's own `Channel` port: answers each send with the next of `outcomes`
    (the last one again when they run out) and keeps the jobs it was given; `raises` makes
    every send raise it (a bug in a channel)."""

    name: str
    outcomes: list[Outcome] = field(
        default_factory=lambda: [Outcome(DispatchState.SENT, provider_message_id="p-1")]
    )
    dedupes_repeats: bool = False
    raises: Exception | None = None
    jobs: list[Any] = field(default_factory=list)

    async def send(self, job: Any) -> Outcome:
        self.jobs.append(job)
        if self.raises is not None:
            raise self.raises
        return self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
