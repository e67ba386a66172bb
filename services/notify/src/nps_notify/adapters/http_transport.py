"""httpx's requests sent over aiohttp's connections: the transport under every provider's
client (`provider_http.ProviderClient`).

httpx stays the interface (requests, auth, timeouts, the responses `classify` reads, and the
tests' in-process fakes through `httpx.ASGITransport`). What moves to aiohttp is the part that
costs: the connection pool, HTTP/1.1 (its C parser) and the sockets. Against a local Zendesk
fake, 16 requests in flight on 8 connections, httpx's own transport (httpcore on anyio) spent
~1.0 ms of CPU per request on this project's 2-core machine and this one ~0.35 ms
(docs/performance.md, Notify, issue #20, seventh session): a ticket is most of a detractor's
journey through notify.

What a provider's answer means for "never twice" is decided here, by the exception raised:

- the request never left (`httpx.ConnectError`, `httpx.ConnectTimeout`): no connection could
  be made, or none was free within the pool timeout;
- it may have reached the provider (`httpx.ReadTimeout`, `httpx.ReadError`,
  `httpx.RemoteProtocolError`): the connection broke or went quiet after it was written,
  including a kept-alive connection the server had closed, which aiohttp cannot tell apart
  from a request the server read and then dropped.
"""

import base64
import ssl
import urllib.request
from collections.abc import Mapping

import aiohttp
import httpx
from multidict import CIMultiDict
from yarl import URL

#: How long an idle pooled connection is kept: httpx's own default.
KEEPALIVE_EXPIRY = 5.0


def translated(exc: aiohttp.ClientError | TimeoutError) -> httpx.TransportError:
    """The httpx error that says the same about whether the request was sent."""
    message = f"{type(exc).__name__}: {exc}"
    # Order matters: a connect timeout is a ServerTimeoutError too, and a ClientConnectorError
    # (DNS, refused, TLS verification) is a ClientOSError.
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(message)
    return httpx.ReadError(message)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport on one `aiohttp.ClientSession`, opened at the first request (inside
    the running loop) and closed by `aclose`.

    - Pool: at most `max_connections`; with `keep_alive` false each request has its own
      connection, closed after its answer.
    - Timeouts: httpx's per-request `pool` bounds the wait for a free connection and the
      connect together, `connect` the connect alone, `read` each read. aiohttp has no write
      timeout; a stalled write ends at the read timeout that follows.
    - TLS: httpx's default context (certifi's CAs, `SSL_CERT_FILE`/`SSL_CERT_DIR`), the
      request's `sni_hostname` extension as the server name the certificate is verified for.
    - Proxies: `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` from the environment, read once as
      httpx reads them, and the proxy for each host remembered (aiohttp's own `trust_env`
      reads them and `~/.netrc` again at every request: a third of the CPU per request). A
      SOCKS `ALL_PROXY` is not supported.
    - Bytes as given: httpx's headers (one `Host`, its `Accept-Encoding`) and the body are sent
      as they are, and the answer's body comes back undecoded for httpx to decode.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        keep_alive: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._keep_alive = keep_alive
        self._ssl = ssl_context or httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self._proxies = urllib.request.getproxies_environment()
        self._proxy_for: dict[tuple[str, str], tuple[URL | None, dict[str, str] | None]] = {}

    def _proxy(self, url: httpx.URL) -> tuple[URL | None, dict[str, str] | None]:
        """The proxy for `url` and the headers for it (`Proxy-Authorization` from credentials in
        the proxy's URL, as httpx takes them); remembered per scheme and host, a few hundred
        at most."""
        key = (url.scheme, url.host)
        found = self._proxy_for.get(key)
        if found is None:
            proxy = self._proxies.get(url.scheme)
            if proxy is None or urllib.request.proxy_bypass(url.host):
                found = (None, None)
            else:
                parsed = URL(proxy)
                credentials = f"{parsed.user}:{parsed.password or ''}".encode()
                basic = "Basic " + base64.b64encode(credentials).decode()
                headers = {"Proxy-Authorization": basic} if parsed.user else None
                found = (parsed.with_user(None), headers)
            if len(self._proxy_for) >= 256:
                self._proxy_for.clear()
            self._proxy_for[key] = found
        return found

    def _opened(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                force_close=not self._keep_alive,
                keepalive_timeout=KEEPALIVE_EXPIRY if self._keep_alive else None,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                # What httpx did not send, aiohttp does not add either.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._opened()
        timeouts: Mapping[str, float | None] = request.extensions.get("timeout", {})
        sni = request.extensions.get("sni_hostname")
        headers = CIMultiDict(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower() != b"connection"  # the connector decides keep-alive
        )
        body = await request.aread()
        proxy, proxy_headers = self._proxy(request.url)
        if proxy_headers and request.url.scheme == "http":
            # Sent to the proxy in the request itself; aiohttp gives `proxy_headers` to the
            # proxy's CONNECT only, which an http:// request does not make.
            headers.update(proxy_headers)
        try:
            async with session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                server_hostname=sni,
                proxy=proxy,
                proxy_headers=proxy_headers,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeouts.get("pool"),
                    sock_connect=timeouts.get("connect"),
                    sock_read=timeouts.get("read"),
                ),
            ) as answer:
                content = await answer.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise translated(exc) from exc
        return httpx.Response(
            status_code=answer.status,
            headers=answer.raw_headers,
            stream=httpx.ByteStream(content),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (answer.reason or "").encode(),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
