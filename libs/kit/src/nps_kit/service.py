"""Running a service: its HTTP server and background loops, started and stopped together.

SIGTERM (Kubernetes) or Ctrl-C makes uvicorn stop accepting requests; the app's lifespan then
stops the background loops, which finish their batch in flight and commit it. If a background
loop crashes, the whole process exits non-zero, loudly, so that the orchestrator restarts it.

The server closes connections that hold it without asking anything: an idle keep-alive one
after `HTTP_KEEP_ALIVE_TIMEOUT_SECONDS` (uvicorn's own timer), and one whose request line and
headers have not all arrived `HTTP_HEADER_TIMEOUT_SECONDS` after it opened, or after the
request's first byte (our timer: uvicorn has none; its keep-alive timer stops at the first
byte, so a client sending headers a byte at a time held a connection for ever).
"""

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from nps_kit.logging import get_logger
from nps_kit.redact import safe_error
from nps_kit.settings import HttpServerSettings

log = get_logger(__name__)


class Runtime:
    """Background loops of one service process."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stoppers: list[Callable[[], None]] = []
        self._on_failure: Callable[[], None] = lambda: None
        self.failure: BaseException | None = None

    def on_failure(self, callback: Callable[[], None]) -> None:
        self._on_failure = callback

    def spawn(
        self, name: str, coro: Coroutine[Any, Any, None], *, stop: Callable[[], None] | None = None
    ) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._done)
        self._tasks[name] = task
        if stop is not None:
            self._stoppers.append(stop)

    def _done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and self.failure is None:
            self.failure = exc
            log.critical(
                "service.background_loop_crashed",
                loop=task.get_name(),
                error=safe_error(exc),
                exc_info=exc,
            )
            self._on_failure()

    async def stop(self, *, grace: float = 20.0) -> None:
        for stop in self._stoppers:
            stop()
        pending = [t for t in self._tasks.values() if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)


class _HeaderDeadline(asyncio.Protocol):
    """A deadline for a request's line and headers, over uvicorn's HTTP protocol (httptools
    or h11, whichever it picked): armed when the connection opens and at the first byte of
    each later request, disarmed once the protocol has parsed the headers (it then starts a
    new request cycle), closing the connection when it fires. At the transport level, below
    ASGI, so it covers what never becomes a request (Slowloris: headers a byte at a time).
    Bodies are not timed: an upload may be slow."""

    header_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None
    _transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        before = getattr(self, "cycle", None)
        super().data_received(data)
        cycle = getattr(self, "cycle", None)
        if cycle is not before:
            self._disarm()  # a request's headers are in: the app has it
        elif cycle is None or getattr(cycle, "response_complete", False):
            self._arm()  # between requests: these bytes begin the next one's headers

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            loop = asyncio.get_running_loop()
            self._deadline = loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


def http_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class with a header deadline of `header_timeout` seconds."""
    return type(
        f"HeaderDeadline{AutoHTTPProtocol.__name__}",
        (_HeaderDeadline, AutoHTTPProtocol),
        {"header_timeout": header_timeout},
    )


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after a graceful shutdown, so the process would report death by
    signal; we handle the signals on the loop and exit with our own code instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


async def serve(
    app: ASGIApp, runtime: Runtime, *, host: str, port: int, http: HttpServerSettings
) -> int:
    """Serve `app` until a signal or a crashed loop; return the process exit code."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=http_protocol(http.header_timeout_seconds),
        timeout_keep_alive=http.keep_alive_timeout_seconds,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=20,
    )
    server = _Server(config)
    # Everything built so far (modules, pydantic schemas, the app) lives as long as the
    # process: move it out of the collector's reach, so that a full collection no longer walks
    # it. Measured on ingest's webhook path (bench/ingest.py): p99 at full load 90-104 ms
    # before, 15-21 ms after, the full collections being the pauses.
    gc.collect()
    gc.freeze()

    def _exit() -> None:
        server.should_exit = True

    runtime.on_failure(_exit)
    await server.serve()
    if runtime.failure is not None:
        return 1
    return 0 if server.started else 1
