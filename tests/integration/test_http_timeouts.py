"""A service's HTTP server closes the connections that hold it without asking anything:
headers sent slowly (Slowloris), a connection that sends nothing, an idle keep-alive
connection; a request whose headers arrive in time is served as usual. The same server serves
the Prometheus metrics on a port of its own, with the same deadlines, and nothing else there.

ingest runs as a real process (`nps-ingest serve`) on the test broker, with short timeouts
from its settings (`HTTP_HEADER_TIMEOUT_SECONDS`, `HTTP_KEEP_ALIVE_TIMEOUT_SECONDS`)."""

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nps_kit.devstack import free_port
from nps_kit.devstack.services import ServiceProcess
from nps_kit.http import create_app
from nps_kit.service import BackgroundLoops, serve
from nps_kit.settings import HttpServerSettings
from tests.support.infra import Infra

HEADER_TIMEOUT = 2.0
KEEP_ALIVE = 1
SLOW_CLIENTS = 50
#: Scheduling slack on a loaded 2-core machine.
SLACK = 3.0


@pytest.fixture(scope="module")
def ingest(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    port = free_port()
    logs: Path = tmp_path_factory.mktemp("http-timeouts")
    service = ServiceProcess(
        name="ingest",
        port=port,
        env={
            **infra.env(),
            "INGEST_PORT": str(port),
            "INGEST_API_TOKENS": json.dumps({"t": "timeouts-token"}),
            "HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
            "HTTP_KEEP_ALIVE_TIMEOUT_SECONDS": str(KEEP_ALIVE),
        },
        log_path=logs / "ingest.log",
    )
    service.start()
    try:
        service.wait_ready(timeout=90)
        yield service
    finally:
        service.stop()


async def _closed_after(reader: asyncio.StreamReader, *, started: float, limit: float) -> float:
    """Seconds from `started` until the server closed the connection (EOF or reset); fails
    if it is still open after `limit` seconds."""
    async with asyncio.timeout(limit):
        try:
            while await reader.read(65536):
                pass
        except ConnectionResetError:
            pass
    return time.monotonic() - started


async def _slow_headers(port: int) -> float:
    """A request whose headers come one byte every 0.2 s, never finished; until closed.

    The clock starts before the connection opens: the server's deadline starts when it
    accepts, never earlier, so the lower bound holds however late this loop resumes."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    header = b"GET /livez HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 10_000

    async def trickle() -> None:
        for byte in header:
            if writer.is_closing():
                return
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                return
            await asyncio.sleep(0.2)

    trickling = asyncio.create_task(trickle())
    try:
        return await _closed_after(reader, started=started, limit=HEADER_TIMEOUT + SLACK + 5)
    finally:
        trickling.cancel()
        writer.close()


async def test_slow_header_connections_are_closed_within_the_header_timeout(
    ingest: ServiceProcess,
) -> None:
    held = await asyncio.gather(*(_slow_headers(ingest.port) for _ in range(SLOW_CLIENTS)))
    assert max(held) < HEADER_TIMEOUT + SLACK, sorted(held)
    assert min(held) >= HEADER_TIMEOUT - 0.1, sorted(held)


async def test_a_connection_that_sends_nothing_is_closed_within_the_header_timeout(
    ingest: ServiceProcess,
) -> None:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.port)
    try:
        held = await _closed_after(reader, started=started, limit=HEADER_TIMEOUT + SLACK)
    finally:
        writer.close()
    assert held >= HEADER_TIMEOUT - 0.1


async def test_slow_header_connections_to_the_metrics_port_are_closed_too(
    ingest: ServiceProcess,
) -> None:
    held = await _slow_headers(ingest.metrics_port)
    assert HEADER_TIMEOUT - 0.1 <= held < HEADER_TIMEOUT + SLACK


async def test_metrics_are_served_on_the_metrics_port_only(ingest: ServiceProcess) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        await client.get(f"{ingest.url}/livez")
        scrape = await client.get(ingest.metrics_url)
        assert scrape.status_code == 200
        assert 'npsloop_http_requests_total{method="GET",route="/livez",status="200"}' in (
            scrape.text
        )
        assert (await client.get(f"{ingest.url}/metrics")).status_code == 404
        metrics_port = f"http://127.0.0.1:{ingest.metrics_port}"
        for path in ("/livez", "/v1/responses"):
            assert (await client.get(f"{metrics_port}{path}")).status_code == 404, path


async def test_a_metrics_port_already_taken_stops_the_start_with_a_failure() -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        code = await serve(
            create_app(title="t", description="t", version="0", readiness={}),
            BackgroundLoops(),
            host="127.0.0.1",
            port=free_port(),
            http=HttpServerSettings(metrics_port=taken.getsockname()[1]),
        )
    finally:
        taken.close()
    assert code == 1


async def test_the_api_description_is_not_served_unless_enabled(ingest: ServiceProcess) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await client.get(f"{ingest.url}{path}")).status_code == 404, path


async def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    ingest: ServiceProcess,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.port)
    try:
        asked = time.monotonic()  # the server's idle clock starts after it answers, later
        writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), timeout=10)
        assert status.startswith(b"HTTP/1.1 200"), status
        held = await _closed_after(reader, started=asked, limit=KEEP_ALIVE + SLACK)
    finally:
        writer.close()
    assert held >= KEEP_ALIVE - 0.1


async def test_headers_that_arrive_slowly_but_in_time_are_served_on_a_reused_connection(
    ingest: ServiceProcess,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.port)
    try:
        for _ in range(2):  # the second request on the same keep-alive connection
            for part in (b"GET /livez HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(HEADER_TIMEOUT / 4)  # a slow client, in time
            status = await asyncio.wait_for(reader.readline(), timeout=10)
            assert status.startswith(b"HTTP/1.1 200"), status
            headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            length = int(
                next(
                    line.split(b":")[1]
                    for line in headers.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            await reader.readexactly(length)
    finally:
        writer.close()
