"""A background loop that sweeps a table for due work (timers, parked actions) in batches."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from nps_kit.logging import get_logger
from nps_kit.messaging import TRANSIENT_ERRORS

log = get_logger(__name__)


class SweepLoop:
    """Calls `sweep_once` until `stop()`: at once again after a full batch (there is more),
    else after `interval`. A transient failure (the database away: a restart, a failover)
    is logged and the sweep tried again after the interval; anything else crashes the loop,
    and with it the process, loudly."""

    def __init__(
        self,
        name: str,
        sweep_once: Callable[[], Awaitable[int]],
        *,
        interval: float,
        batch_size: int,
    ) -> None:
        self.name = name
        self._sweep_once = sweep_once
        self._interval = interval
        self._batch_size = batch_size
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                done = await self._sweep_once()
            except TRANSIENT_ERRORS as exc:
                log.warning(f"{self.name}.unavailable", error=repr(exc))
                done = 0
            if done:
                log.info(f"{self.name}.swept", items=done)
            if done < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)

    def stop(self) -> None:
        self._stopping.set()
