"""The parked-action sweeper: tries again, in a loop, the actions a provider deferred (a 429,
a 5xx, an open circuit, the customer's quiet hours) once they are due.

Any number of replicas may run it: each sweep leases its parked actions (FOR UPDATE SKIP
LOCKED), so two sweepers never take the same one, and one that dies mid-way leaves them due
again when the lease ends."""

from datetime import timedelta

from nps_kit.loops import SweepLoop
from nps_kit.outbox import OutboxRelay
from nps_notify.handlers import Dispatcher

#: How long a sweeper holds the parked actions it took (far longer than a slice of sends).
LEASE = timedelta(minutes=5)


def parked_sweeper(
    *, dispatcher: Dispatcher, relay: OutboxRelay, interval: float, batch_size: int
) -> SweepLoop:
    async def sweep_once() -> int:
        taken = await dispatcher.sweep_parked(limit=batch_size, lease=LEASE)
        if taken:
            relay.wake()
        return taken

    return SweepLoop("parked", sweep_once, interval=interval, batch_size=batch_size)
