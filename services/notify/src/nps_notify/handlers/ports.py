"""What notify's use cases need of its storage: narrow ports, so that dispatching can be
tested against an in-memory fake (tests/support/notify_fakes.py) and the SQL against
PostgreSQL. `adapters.repository.NotifyRepository` implements them all.

Unlike the other services' handlers, which run inside the caller's unit of work, the
dispatcher opens its own: at most once needs `sending` committed *before* the provider call
and the outcome committed after it, so one action spans two transactions with a send between
them. It is given a `Transactions` factory instead of a session."""

import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from nps_events import Event
from nps_notify.adapters.repository import Job, ParkedAction, UnreadableParked
from nps_notify.domain.dispatch import DispatchState, Outcome

P_co = TypeVar("P_co", covariant=True)

#: Opens one unit of work and yields the port over it: committed when the block ends
#: normally, rolled back when it raises.
Transactions = Callable[[], AbstractAsyncContextManager[P_co]]


class Outbox(Protocol):
    async def publish_later(self, events: list[Event], *, now: datetime) -> None:
        """Queue `events` for the relay, in the same transaction as the state they describe."""
        ...


class DispatchLedger(Outbox, Protocol):
    """The dispatch ledger (one entry per action: `sending`, then its outcome) and the parked
    actions waiting for another try."""

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
        written as `finish_dispatches` writes them, with the same round trip."""
        ...

    async def provider_id_of(self, action_id: uuid.UUID) -> str | None:
        """The provider's id for an action sent before (the ticket a priority raise is for)."""
        ...

    async def defer(
        self, action: Event, *, channel: str, reason: str, not_before: datetime, now: datetime
    ) -> None:
        """The ledger says `deferred` and the action waits in `parked` until `not_before`
        (its count of tries goes up by one)."""
        ...

    async def finish_dispatches(
        self, outcomes: Mapping[uuid.UUID, Outcome], *, now: datetime
    ) -> None:
        """The ledger keeps each action's final outcome (state, provider id, reason), and an
        action with its outcome no longer waits for another try (it leaves `parked`)."""
        ...

    async def claim_parked(
        self, *, now: datetime, lease: timedelta, limit: int
    ) -> list[ParkedAction | UnreadableParked]:
        """Up to `limit` parked actions now due, leased for `lease`: another sweeper skips
        them meanwhile, and a sweeper that dies mid-way leaves them due again after it."""
        ...

    async def parked_count(self) -> int:
        """How many actions wait for another try."""
        ...

    async def ledger_entries(
        self, action_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
        """Each action's case and customer, as its ledger entry recorded them."""
        ...


class TicketLedger(Outbox, Protocol):
    """What relaying a helpdesk's ticket change needs."""

    async def ticket_action(self, ticket_id: str) -> tuple[uuid.UUID, uuid.UUID, str] | None:
        """The `CreateTicket` action that opened the helpdesk's ticket `ticket_id`: its id,
        its case and customer; None for a ticket npsloop did not open."""
        ...
