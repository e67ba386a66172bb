"""Ingest's high-volume path in plain ASGI: `HotRoutes` serves the webhook routes ahead of
FastAPI, and `BodyLimit` refuses an oversized body before any route reads it. Both answer as
the kit's app does (problem+json, request metrics, a server span); only ingest needs them, so
they live here rather than in the kit."""

import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from starlette.datastructures import URL
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nps_kit.http import PROBLEM_JSON, Problem, observe_request, problem_response, send_raw
from nps_kit.logging import get_logger
from nps_kit.redact import safe_error
from nps_kit.tracing import serving

log = get_logger(__name__)


class BodyLimit:
    """Refuses a request body over `max_bytes` with 413 problem+json, before any route reads
    it: by its Content-Length when it has one, else as the chunks arrive."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await _too_large(send, self.max_bytes, shown_path(scope["path"]))
                return
            # The server delivers no more than Content-Length bytes as this request's body.
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read the body, at most max_bytes, then replay it.
        body = await _read_body(receive, self.max_bytes)
        if body is None:
            await _too_large(send, self.max_bytes, shown_path(scope["path"]))
            return
        replayed = False
        whole: Message = {"type": "http.request", "body": body, "more_body": False}

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return whole
            return await receive()

        await self.app(scope, replay, send)


class _Disconnected(Exception):  # noqa: N818 - the client went away; nothing to answer
    pass


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 1 << 62  # not a number: refuse it as too large
    return None


async def _read_body(receive: Receive, max_bytes: int) -> bytes | None:
    """The whole request body, or None once it grows beyond `max_bytes`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _too_large(send: Send, max_bytes: int, path: str) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Payload too large",
            "status": 413,
            "detail": f"The body is larger than {max_bytes} bytes.",
            "instance": path,
        },
        separators=(",", ":"),
    ).encode()
    await send_raw(send, 413, body, PROBLEM_JSON, {"connection": "close"})


@dataclass(frozen=True, slots=True)
class RawRequest:
    """A request to a hot route: its path parameters, lower-cased headers and whole body."""

    method: str
    path: str
    path_params: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    scope: Scope

    @property
    def url(self) -> str:
        """The URL the request was sent to, as the sender sees it (from the Host header).
        Computed on use: building it cost ~8% of a hot route's time, and few handlers need it."""
        return str(URL(scope=self.scope))


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    body: bytes
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


HotHandler = Callable[[RawRequest], Awaitable[RawResponse]]


class HotRoutes:
    """Serves a few high-volume routes straight from ASGI, ahead of FastAPI's routing,
    dependency injection and response models; every other request goes on to the app.

    Measured on ingest's signed webhook (bench/ingest.py, docs/performance.md): FastAPI's
    per-request machinery and the depth of its middleware stack, through which every
    `await` resumes, cost more than the webhook's own work. A hot route keeps what the app
    guarantees: the body limit (413), problem+json for a `Problem` and for any unexpected
    error (500, logged), and the request metrics under the route's template. The app still
    declares the route, so that `/docs` documents it.
    """

    def __init__(
        self, app: ASGIApp, *, routes: Mapping[tuple[str, str], HotHandler], max_body_bytes: int
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._routes = [
            (method, template, _template_pattern(template), handler)
            for (method, template), handler in routes.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for method, template, pattern, handler in self._routes:
                if scope["method"] == method:
                    match = pattern.fullmatch(scope["path"])
                    if match is not None:
                        await self._serve(
                            scope, receive, send, template=template, match=match, handler=handler
                        )
                        return
        await self.app(scope, receive, send)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        template: str,
        match: re.Match[str],
        handler: HotHandler,
    ) -> None:
        started = time.perf_counter()
        status = 500
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with serving(scope["method"], template, headers) as span:
            try:
                status = await self._answer(
                    scope,
                    receive,
                    send,
                    headers=headers,
                    template=template,
                    match=match,
                    handler=handler,
                )
            finally:
                span.set_attribute("http.response.status_code", status)
                observe_request(scope["method"], template, status, time.perf_counter() - started)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        headers: Mapping[str, str],
        template: str,
        match: re.Match[str],
        handler: HotHandler,
    ) -> int:
        """Serve the request; return the status answered."""
        try:
            declared = _content_length(scope)
            body = (
                None
                if declared is not None and declared > self.max_body_bytes
                else await _read_body(receive, self.max_body_bytes)
            )
            if body is None:
                await _too_large(send, self.max_body_bytes, _shown(template, match))
                return 413
            request = RawRequest(
                method=scope["method"],
                path=scope["path"],
                path_params=match.groupdict(),
                headers=headers,
                body=body,
                scope=scope,
            )
            try:
                response = await handler(request)
            except Problem as problem:
                await problem_response(problem, instance=_shown(template, match))(
                    scope, receive, send
                )
                return problem.status
            except Exception as exc:  # answered 500 and logged, as the app does
                # The route's template, not the path: a path segment may be a secret
                # (`/v1/webhooks/{source}/{secret}`), and logs are read by many.
                log.exception("http.unhandled_error", route=template, error=safe_error(exc))
                await problem_response(
                    Problem(500, "Internal error", "An unexpected error occurred; it was logged.")
                )(scope, receive, send)
                return 500
            await send_raw(
                send, response.status, response.body, response.media_type, response.headers
            )
        except _Disconnected:
            return 499
        return response.status


#: A path segment that is a secret (`proof: path_secret`), never echoed in a problem's
#: `instance`: a response body may be logged by a proxy on the way back.
SECRET_PARAMETER = "secret"  # noqa: S105 (a parameter's name, not a secret)
_SECRET_PATH = re.compile(r"^(/v1/webhooks/[^/]+)/[^/]+/?$")


def _shown(template: str, match: re.Match[str]) -> str:
    """The request's path as a problem may show it: the secret segment as `{secret}`."""
    return re.sub(
        r"\{(\w+)\}",
        lambda m: m.group(0) if m.group(1) == SECRET_PARAMETER else match.group(m.group(1)),
        template,
    )


def shown_path(path: str) -> str:
    """`/v1/webhooks/{source}/{secret}` with the secret replaced, for a problem's `instance`
    answered before any route matched (e.g. a body over the limit)."""
    return _SECRET_PATH.sub(r"\1/{secret}", path)


def _template_pattern(template: str) -> re.Pattern[str]:
    """`/v1/webhooks/{source}` → a pattern with one named group per parameter (one segment)."""
    parts = re.split(r"\{(\w+)\}", template)
    pattern = "".join(
        f"(?P<{part}>[^/]+)" if i % 2 else re.escape(part) for i, part in enumerate(parts)
    )
    return re.compile(pattern)
