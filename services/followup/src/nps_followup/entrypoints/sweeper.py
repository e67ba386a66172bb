"""The sweeper: fires due timers (scheduled actions, reminders, escalations) in a loop.

Any number of replicas may run it: each sweep claims its timers with FOR UPDATE SKIP LOCKED
and fires them in the same transaction as their effects and outbox rows, so every timer
fires exactly once, and a crash mid-sweep rolls back to timers still pending."""

import asyncio
import contextlib

from nps_followup.adapters.repository import FollowupRepository
from nps_followup.handlers import PolicyInForce, sweep_due_timers
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.logging import get_logger
from nps_kit.messaging import TRANSIENT_ERRORS
from nps_kit.outbox import OutboxRelay

log = get_logger(__name__)


class Sweeper:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        relay: OutboxRelay | None,
        clock: Clock,
        policy: PolicyInForce,
        interval: float,
        batch_size: int,
    ) -> None:
        self._sessions = sessions
        self._relay = relay
        self._clock = clock
        self._policy = policy
        self._interval = interval
        self._batch_size = batch_size
        self._stopping = asyncio.Event()

    async def sweep_once(self) -> int:
        """Fire one batch of due timers; return how many fired."""
        async with unit_of_work(self._sessions) as session:
            fired = await sweep_due_timers(
                FollowupRepository(session),
                now=self._clock.now(),
                policy=self._policy,
                limit=self._batch_size,
            )
        if fired and self._relay is not None:
            self._relay.wake()
        return fired

    async def run(self) -> None:
        """Sweep until `stop()`: at once again after a full batch, else after the interval."""
        while not self._stopping.is_set():
            try:
                fired = await self.sweep_once()
            except TRANSIENT_ERRORS as exc:
                # The database is away (a restart, a failover): nothing was fired, the
                # timers are still pending; try again after the interval.
                log.warning("sweeper.unavailable", error=repr(exc))
                fired = 0
            if fired:
                log.info("sweeper.fired", timers=fired)
            if fired < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)

    def stop(self) -> None:
        self._stopping.set()
