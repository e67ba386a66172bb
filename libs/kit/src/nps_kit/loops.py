"""A background loop that sweeps a table for due work (timers, parked actions) in batches."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from nps_kit.faults import Fault, classify
from nps_kit.logging import get_logger
from nps_kit.metrics import LOOP_FAULTS
from nps_kit.redact import safe_error, safe_traceback

log = get_logger(__name__)


class SweepLoop:
    """Calls `sweep_once` until `stop()`: at once again after a full batch (there is more),
    else after `interval`.

    A failed sweep never ends the loop (a crash would only restart the process into the same
    failure): it is logged and counted by fault (`npsloop_loop_faults_total`), and the sweep
    is tried again after a backoff that doubles from `interval` up to `max_backoff`. An
    infrastructure fault (the database away: a restart, a failover) is a warning; anything
    else is an error with its traceback, for a person to look at."""

    def __init__(
        self,
        name: str,
        sweep_once: Callable[[], Awaitable[int]],
        *,
        interval: float,
        batch_size: int,
        max_backoff: float = 10.0,
    ) -> None:
        self.name = name
        self._sweep_once = sweep_once
        self._interval = interval
        self._batch_size = batch_size
        self._max_backoff = max(max_backoff, interval)
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            wait = self._interval
            try:
                done = await self._sweep_once()
            except Exception as exc:  # counted and logged by fault below
                failures += 1
                done = 0
                wait = min(self._max_backoff, self._interval * 2 ** (failures - 1))
                self._failed(exc, failures=failures, wait=wait)
            else:
                if failures:
                    log.info(f"{self.name}.recovered", after_failures=failures)
                failures = 0
            if done:
                log.info(f"{self.name}.swept", items=done)
            if done < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=wait)

    def _failed(self, exc: Exception, *, failures: int, wait: float) -> None:
        fault = classify(exc)
        LOOP_FAULTS.labels(self.name, fault.value).inc()
        if fault is Fault.INFRASTRUCTURE:
            log.warning(
                f"{self.name}.unavailable", error=safe_error(exc), failures=failures, retry_in=wait
            )
        else:
            log.error(
                f"{self.name}.failed",
                fault=fault.value,
                error=safe_error(exc),
                traceback=safe_traceback(exc),
                failures=failures,
                retry_in=wait,
            )

    def stop(self) -> None:
        self._stopping.set()
