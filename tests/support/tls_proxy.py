"""A TLS-terminating TCP proxy in front of the embedded broker, as a load balancer or a
Kafka listener with TLS would be: real TLS handshakes (certificates from `trustme`), the
real broker behind. The broker itself has no working TLS listener (Tansu 0.6)."""

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@contextlib.contextmanager
def tls_proxy(*, port: int, upstream: int, context: ssl.SSLContext) -> Iterator[None]:
    """Accept TLS on 127.0.0.1:`port` and relay each connection to 127.0.0.1:`upstream`,
    in a thread with its own event loop, while the block runs."""
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def serve() -> asyncio.Server:
        return await asyncio.start_server(relay, "127.0.0.1", port, ssl=context)

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(serve())
        started.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
            loop.close()

    thread = threading.Thread(target=run, name=f"tls-proxy-{port}", daemon=True)
    thread.start()
    if not started.wait(timeout=10):
        raise RuntimeError("the TLS proxy did not start")
    try:
        yield
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
