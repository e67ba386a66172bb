"""TCP proxies in front of real servers, in a thread with their own event loop.

- `tls_proxy`: terminates TLS in front of the embedded broker, as a load balancer or a Kafka
  listener with TLS would: real TLS handshakes (certificates from `trustme`), the real broker
  behind. The broker itself has no working TLS listener (Tansu 0.6).
- `Proxy.cut()` / `restore()`: the server behind disappears from the network and comes back
  (every open connection reset, new ones refused), as a database restart or a network
  partition looks to a client, without touching the server other tests share.
"""

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Coroutine, Iterator
from typing import Any


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


class Proxy:
    """Relays 127.0.0.1:`port` to 127.0.0.1:`upstream` while running; see the module."""

    def __init__(self, *, port: int, upstream: int, context: ssl.SSLContext | None = None) -> None:
        self.port = port
        self._upstream = upstream
        self._context = context
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._run, name=f"proxy-{port}", daemon=True)
        self._started = threading.Event()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._relay, "127.0.0.1", self.port, ssl=self._context
        )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()  # a reset, not a polite close: the peer is gone
        self._writers.clear()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._cut())
            self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(timeout=10):
            raise RuntimeError("the proxy did not start")

    def cut(self) -> None:
        """Reset every connection and refuse new ones until `restore()`."""
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


@contextlib.contextmanager
def tcp_proxy(*, port: int, upstream: int) -> Iterator[Proxy]:
    proxy = Proxy(port=port, upstream=upstream)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@contextlib.contextmanager
def tls_proxy(*, port: int, upstream: int, context: ssl.SSLContext) -> Iterator[None]:
    """Accept TLS on 127.0.0.1:`port` and relay each connection to 127.0.0.1:`upstream`,
    while the block runs."""
    proxy = Proxy(port=port, upstream=upstream, context=context)
    proxy.start()
    try:
        yield
    finally:
        proxy.stop()
