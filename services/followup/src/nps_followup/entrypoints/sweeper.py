"""The sweeper: fires due timers (scheduled actions, reminders, escalations) in a loop.

Any number of replicas may run it: each sweep claims its timers with FOR UPDATE SKIP LOCKED
and fires them in the same transaction as their effects and outbox rows, so every timer
fires exactly once, and a crash mid-sweep rolls back to timers still pending."""

from nps_followup.adapters.repository import FollowupRepository
from nps_followup.handlers import PolicyInForce, sweep_due_timers
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.loops import SweepLoop
from nps_kit.outbox import OutboxRelay


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
        self._loop = SweepLoop("sweeper", self.sweep_once, interval=interval, batch_size=batch_size)
        self._batch_size = batch_size

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
        """Sweep until `stop()`: at once again after a full batch, else after the interval.
        While the database is away nothing fires; the timers stay pending."""
        await self._loop.run()

    def stop(self) -> None:
        self._loop.stop()
