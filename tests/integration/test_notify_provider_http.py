"""A provider's HTTP client over real sockets, on the transport notify runs on (aiohttp's
connections under httpx, `nps_notify.adapters.http_transport`):

- it holds at most `MAX_CONNECTIONS` connections: more requests at once wait for a free one
  and all of them are answered;
- what each way of failing says about "never twice": a request that never left (nothing
  listening, no free connection in time) is deferred; one that may have reached the provider
  (the connection dropped or went quiet after it was written) is `unknown` unless the
  provider recognises a repeat;
- the environment's proxy is used as httpx would use it, and `NO_PROXY` is honoured.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nps_kit.devstack import free_port
from nps_notify.adapters.http_transport import AiohttpTransport
from nps_notify.adapters.provider_http import MAX_CONNECTIONS, ProviderClient
from nps_notify.domain.dispatch import DispatchState, Outcome
from tests.support.serve import served


def _slow_provider(ports: set[int]) -> Starlette:
    """Answers each request after a short while (so requests overlap), noting the client's
    port: one port per connection."""

    async def answer(request: Request) -> JSONResponse:
        assert request.client is not None
        ports.add(request.client.port)
        await asyncio.sleep(0.05)
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/call", answer, methods=["POST"])])


async def test_twice_as_many_requests_as_connections_share_them_and_are_all_answered() -> None:
    ports: set[int] = set()
    with served(_slow_provider(ports)) as url:
        client = ProviderClient(
            name="provider", base_url=url, auth=None, timeout=10, attempts=1, rate_per_second=1e6
        )
        try:
            outcomes = await asyncio.gather(
                *(
                    client.call(
                        "POST",
                        "/call",
                        classify=lambda r: Outcome(
                            DispatchState.SENT, provider_message_id=str(r.status_code)
                        ),
                        idempotent=True,
                    )
                    for _ in range(2 * MAX_CONNECTIONS)
                )
            )
        finally:
            await client.aclose()
    assert [o.state for o in outcomes] == [DispatchState.SENT] * (2 * MAX_CONNECTIONS)
    assert 1 < len(ports) <= MAX_CONNECTIONS


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def _raw_server(handler: Handler) -> AsyncIterator[str]:
    """A TCP server speaking as little HTTP as a test needs; its base URL."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """The request's head and its body (by Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


def _sent(response: httpx.Response) -> Outcome:
    return Outcome(DispatchState.SENT, provider_message_id=str(response.status_code))


async def _call(url: str, *, idempotent: bool, timeout: float = 5.0) -> Outcome:
    client = ProviderClient(
        name="Provider", base_url=url, auth=None, timeout=timeout, attempts=1, rate_per_second=1e6
    )
    try:
        return await client.call(
            "POST", "/call", json={"to": "+33612345678"}, classify=_sent, idempotent=idempotent
        )
    finally:
        await client.aclose()


async def test_nothing_listening_is_deferred_as_never_sent() -> None:
    outcome = await _call(f"http://127.0.0.1:{free_port()}", idempotent=False)
    assert outcome.state is DispatchState.DEFERRED
    assert outcome.reason == "Provider unreachable: ConnectError"


@pytest.mark.parametrize(
    ("idempotent", "state"), [(False, DispatchState.UNKNOWN), (True, DispatchState.DEFERRED)]
)
async def test_a_connection_dropped_after_the_request_may_have_delivered_it(
    idempotent: bool, state: DispatchState
) -> None:
    """The provider read the whole request, then the connection closed with no answer: it may
    have acted on it, so a provider that cannot recognise a repeat is not called again."""
    seen: list[bytes] = []

    async def read_then_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await _read_request(reader))
        writer.close()

    async with _raw_server(read_then_drop) as url:
        outcome = await _call(url, idempotent=idempotent)
    assert outcome.state is state
    assert "RemoteProtocolError" in (outcome.reason or "")
    assert len(seen) == 1
    assert seen[0].endswith(b'{"to":"+33612345678"}')


async def test_a_provider_that_goes_quiet_after_the_request_is_unknown() -> None:
    quiet = asyncio.Event()

    async def read_then_wait(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await quiet.wait()
        writer.close()

    async with _raw_server(read_then_wait) as url:
        outcome = await _call(url, idempotent=False, timeout=0.3)
        quiet.set()
    assert outcome.state is DispatchState.UNKNOWN
    assert "ReadTimeout" in (outcome.reason or "")


async def test_no_free_connection_in_time_is_a_connect_timeout_and_nothing_is_sent() -> None:
    """One connection, held by a slow answer: the second request waits for it longer than its
    pool timeout and fails as never sent; the provider saw one request."""
    seen = 0
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        await _read_request(reader)
        seen += 1
        await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async with _raw_server(slow) as url:
        transport = AiohttpTransport(max_connections=1)
        async with httpx.AsyncClient(
            base_url=url, transport=transport, timeout=httpx.Timeout(5.0, pool=0.2)
        ) as client:
            first = asyncio.create_task(client.post("/call", content=b"1"))
            await asyncio.sleep(0.1)
            with pytest.raises(httpx.ConnectTimeout):
                await client.post("/call", content=b"2")
            release.set()
            assert (await first).text == "ok"
    assert seen == 1


async def test_the_environments_proxy_carries_the_request_unless_no_proxy_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An HTTP proxy gets the request in absolute form with the credentials given in its URL
    (`Proxy-Authorization`); a host in `NO_PROXY` is called directly."""
    through_proxy: list[bytes] = []
    direct: list[bytes] = []

    def answering(into: list[bytes]) -> Handler:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            into.append(await _read_request(reader))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        return answer

    async with (
        _raw_server(answering(through_proxy)) as proxy,
        _raw_server(answering(direct)) as provider,
    ):
        monkeypatch.setenv("HTTP_PROXY", proxy.replace("http://", "http://user:secret@"))
        monkeypatch.setenv("NO_PROXY", "localhost")
        proxied = await _call("http://provider.test:81", idempotent=True)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        bypassed = await _call(provider, idempotent=True)
    assert (proxied.state, bypassed.state) == (DispatchState.SENT, DispatchState.SENT)
    [request] = through_proxy
    assert request.startswith(b"POST http://provider.test:81/call HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic dXNlcjpzZWNyZXQ=\r\n" in request
    [request] = direct
    assert request.startswith(b"POST /call HTTP/1.1\r\n")
