"""`asyncio.timeout` for hot paths: many timeouts of one length share a single timer.

`asyncio.timeout` schedules a timer per use and cancels it on the way out; on ingest's webhook
path that cost ~30 µs a request (measured in docs/performance.md), more than verifying the
signature. Timeouts of the same length expire in the order they began, so one timer, armed
for the oldest, serves them all: entering and leaving one is two dict operations.

The semantics are `asyncio.timeout`'s: when the time is up the task is cancelled, and the
`async with` raises `TimeoutError` in its place; a cancellation from anyone else stays a
`CancelledError`. The price is precision: a timeout fires up to `RESOLUTION` late, which is
what acknowledgement timeouts of seconds can afford.
"""

import asyncio
from functools import cache
from types import TracebackType

#: How late, at most, a shared timeout fires after its deadline.
RESOLUTION = 0.05


class _Scope:
    __slots__ = ("_cancelling", "_expired", "_owner", "_task")

    def __init__(self, owner: "_SharedTimeouts") -> None:
        self._owner = owner
        self._expired = False

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("shared_timeout() must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._owner.add(self)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._owner.pending.pop(self, None)
        # As asyncio.timeout does: only a cancellation this scope asked for, and no one
        # else's since, becomes a TimeoutError.
        if (
            self._expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc

    def expire(self) -> None:
        self._expired = True
        self._task.cancel()


class _SharedTimeouts:
    """The scopes of one length on one event loop, oldest first, and the one timer."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.pending: dict[_Scope, float] = {}  # scope -> deadline; insertion = deadline order
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def add(self, scope: _Scope) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests run several): nothing carries over
            self._loop, self._timer = loop, None
            self.pending.clear()
        deadline = loop.time() + self.seconds
        self.pending[scope] = deadline
        if self._timer is None:
            self._timer = loop.call_at(deadline + RESOLUTION, self._expire)

    def _expire(self) -> None:
        self._timer = None
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        while self.pending:
            scope, deadline = next(iter(self.pending.items()))
            if deadline > now:
                self._timer = loop.call_at(deadline + RESOLUTION, self._expire)
                return
            del self.pending[scope]
            scope.expire()


@cache
def _shared(seconds: float) -> _SharedTimeouts:
    return _SharedTimeouts(seconds)


def shared_timeout(seconds: float) -> _Scope:
    """`async with shared_timeout(5):` — `asyncio.timeout(5)` at the cost of two dict
    operations, firing up to `RESOLUTION` late. For the few fixed lengths of a hot path
    (one timer per length is kept for the life of the process)."""
    return _Scope(_shared(seconds))
