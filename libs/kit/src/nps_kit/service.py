"""Running a service: its HTTP server and background loops, started and stopped together.

SIGTERM (Kubernetes) or Ctrl-C makes uvicorn stop accepting requests; the app's lifespan then
stops the background loops, which finish their batch in flight and commit it. If a background
loop crashes, the whole process exits non-zero, loudly, so that the orchestrator restarts it.

The server closes connections that hold it without asking anything: an idle keep-alive one
after `HTTP_KEEP_ALIVE_TIMEOUT_SECONDS` (uvicorn's own timer), and one whose request line and
headers have not all arrived `HTTP_HEADER_TIMEOUT_SECONDS` after it opened, or after the
request's first byte (our timer: uvicorn has none; its keep-alive timer stops at the first
byte, so a client sending headers a byte at a time held a connection for ever).

Prometheus scrapes `/metrics` on a second port (`HTTP_METRICS_PORT`), so that a network policy
can open it to the scraper alone. The same uvicorn server listens on both ports and sends each
request to the app of the port it arrived on (`by_port`). We chose that over
prometheus-client's own `start_http_server` (a thread-per-connection server in a daemon
thread, with neither our header deadline nor our keep-alive timeout, which does not stop with
the service) and over a second uvicorn server on the loop (a second shutdown to order, a
second set of signal handlers to keep out of the way): one server means one start, one
graceful stop and the same timeouts on both ports, and a port that cannot be bound stops the
start before anything connects.
"""

import asyncio
import contextlib
import gc
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from nps_kit.http import metrics_app
from nps_kit.logging import get_logger
from nps_kit.redact import safe_error
from nps_kit.settings import HttpServerSettings

log = get_logger(__name__)


#: The collector's first threshold in a serving process: a collection of the youngest
#: generation once this many more container objects were allocated than freed (Python's
#: default: 700). A batch of a few hundred events holds tens of thousands of objects alive
#: for a moment, so at 700 every batch set off dozens of young collections (each walking the
#: live half of the batch) and a full one every ~500 journeys: in followup, 2,400 young, 216
#: middle and 21 full collections, 0.36-0.38 s of CPU, in a pipeline run of 10,000
#: detractors; at 50,000, 2 young collections and the start-up's full one, 0.06 s
#: (docs/performance.md, issue #20, fifth session; every service, sixth session). Cyclic
#: garbage waits longer for its collection, by at most this many objects; what is not cyclic
#: is freed at once, as ever.
YOUNG_GENERATION_THRESHOLD = 50_000


def tune_collector() -> None:
    """Collect the youngest generation less often (`YOUNG_GENERATION_THRESHOLD`), the older
    ones as often relative to it as Python's defaults do. A setting of the whole process:
    `serve` makes it, never a test's process that builds a service."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)


class BackgroundLoops:
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


def by_port(app: ASGIApp, *, metrics_port: int, metrics: ASGIApp) -> ASGIApp:
    """`metrics` for the requests that arrive on `metrics_port`, `app` for every other one
    (and for the lifespan: the metrics app has none)."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        if scope["type"] != "lifespan" and server is not None and server[1] == metrics_port:
            await metrics(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port`, as uvicorn would open it (IPv6 when the host
    is an IPv6 address; SO_REUSEADDR, so that a restart does not wait for TIME_WAIT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


async def serve(
    app: ASGIApp, runtime: BackgroundLoops, *, host: str, port: int, http: HttpServerSettings
) -> int:
    """Serve `app` on `port` and the Prometheus metrics on `http.metrics_port`, until a signal
    or a crashed loop; return the process exit code."""
    sockets: list[socket.socket] = []
    for purpose, number in (("api", port), ("metrics", http.metrics_port)):
        try:
            sockets.append(_listen(host, number))
        except OSError as exc:
            for sock in sockets:
                sock.close()
            # Expected (the port is taken, or not ours to bind): one line, no traceback.
            log.error(  # noqa: TRY400
                "service.cannot_listen", purpose=purpose, host=host, port=number, error=str(exc)
            )
            return 1
    log.info("service.listening", host=host, port=port, metrics_port=http.metrics_port)
    config = uvicorn.Config(
        by_port(app, metrics_port=http.metrics_port, metrics=metrics_app()),
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
    tune_collector()

    def _exit() -> None:
        server.should_exit = True

    runtime.on_failure(_exit)
    await server.serve(sockets=sockets)
    if runtime.failure is not None:
        return 1
    return 0 if server.started else 1
