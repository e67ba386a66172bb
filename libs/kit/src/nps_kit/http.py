"""The FastAPI app factory every service uses: probes, request metrics and RFC 9457
problem+json; and the Prometheus exposition served on the metrics port."""

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import Counter, Histogram, make_asgi_app
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nps_kit.faults import Fault, classify
from nps_kit.logging import get_logger
from nps_kit.metrics import labelled
from nps_kit.redact import safe_error

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

HTTP_REQUESTS = Counter(
    "npsloop_http_requests_total",
    "HTTP requests, by route and status code.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "npsloop_http_request_duration_seconds",
    "HTTP request latency, by route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

ReadinessCheck = Callable[[], Awaitable[None]]


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one request and its latency, by route template (bounded labels)."""
    labelled(HTTP_REQUESTS, method, route, str(status)).inc()
    labelled(HTTP_SECONDS, method, route).observe(seconds)


class Problem(Exception):  # noqa: N818 - it is named for what it is on the wire
    """An RFC 9457 problem: raised anywhere at the edge, rendered as problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_response(problem: Problem, *, instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": problem.type, "title": problem.title, "status": problem.status}
    if problem.detail:
        body["detail"] = problem.detail
    if instance:
        body["instance"] = instance
    body.update(problem.extensions)
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] if len(parts) > 1 else parts
    return ".".join(parts)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def field_message(error: Mapping[str, Any]) -> str:
    """What a person is told of one invalid field: pydantic's words, except for a pattern
    mismatch, whose message is the regular expression itself (noise to a person, and a map
    of the rule to anyone probing it); the OpenAPI document has the pattern for programs."""
    if error.get("type") == "string_pattern_mismatch":
        return "is not in the expected format (the API documentation describes it)"
    return str(error["msg"])


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    errors = cast(RequestValidationError, exc).errors()
    content_type = request.headers.get("content-type")
    if (
        content_type is not None
        and not _is_json(content_type)
        and any(err["loc"][:1] == ("body",) for err in errors)
    ):
        # A JSON route sent another media type: say so (RFC 9110 §15.5.16), not "invalid".
        return problem_response(
            Problem(
                415,
                "Unsupported media type",
                f"The body must be application/json, not {content_type.split(';')[0].strip()}.",
                headers={"Accept": "application/json"},
            ),
            instance=request.url.path,
        )
    if any(err.get("type") == "json_invalid" for err in errors):
        message = next(
            err.get("ctx", {}).get("error", "")
            for err in errors
            if err.get("type") == "json_invalid"
        )
        return problem_response(
            Problem(
                400, "Malformed JSON", f"The request body is not valid JSON: {message}".rstrip(": ")
            ),
            instance=request.url.path,
        )
    fields = [{"field": _field(tuple(err["loc"])), "message": field_message(err)} for err in errors]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return problem_response(
        Problem(422, "Invalid request", detail, errors=fields), instance=request.url.path
    )


async def _on_problem(request: Request, exc: Exception) -> Response:
    return problem_response(cast(Problem, exc), instance=request.url.path)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    exc = cast(StarletteHTTPException, exc)
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    return problem_response(
        Problem(exc.status_code, title, str(exc.detail), headers=exc.headers),
        instance=request.url.path,
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    if classify(exc) is Fault.INFRASTRUCTURE:
        # The database or the broker is away (a restart, a failover): say so, and when to
        # come back, rather than a 500 that reads as a bug.
        log.warning("http.unavailable", path=request.url.path, error=safe_error(exc))
        return problem_response(
            Problem(
                503,
                "Service unavailable",
                "A dependency (the database or the broker) is not answering; try again shortly.",
                headers={"Retry-After": "5"},
            )
        )
    log.error("http.unhandled_error", path=request.url.path, error=safe_error(exc), exc_info=exc)
    return problem_response(
        Problem(500, "Internal error", "An unexpected error occurred; it was logged.")
    )


class _MetricsMiddleware:
    """Request counts and latency by route template (never by raw path: bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            observe_request(scope["method"], template, status, time.perf_counter() - started)


async def send_raw(
    send: Send, status: int, body: bytes, media_type: str, headers: Mapping[str, str]
) -> None:
    """Answer from plain ASGI: the status, the body and its media type, and `headers`."""
    raw = [
        (b"content-type", media_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    raw.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


#: What every error answer is (RFC 9457), as the OpenAPI documents say.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem: what went wrong, for people (`title`, `detail`) and "
    "programs (`status`, `errors` naming each invalid field).",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """The app's OpenAPI document with its errors as they are answered: every 4xx and 5xx
    response is problem+json (FastAPI documents its own JSON shape for 422, which the
    exception handlers above never send), an operation that reads parameters or a body
    documents 422, one that reads a JSON body documents 400 (malformed JSON), and one that
    needs a bearer token documents 401 and 403."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                responses.setdefault("400", {"description": "Malformed JSON (problem+json)."})
                responses.setdefault(
                    "415", {"description": "The body is not application/json (problem+json)."}
                )
            if operation.get("parameters") or body:
                responses.setdefault(
                    "422", {"description": "Invalid input; `errors` names each field."}
                )
            if operation.get("security"):
                responses.setdefault(
                    "401",
                    {
                        "description": "No bearer token, or one that is not valid (expired, "
                        "another issuer or audience, bad signature); `WWW-Authenticate` says why."
                    },
                )
                responses.setdefault(
                    "403", {"description": "The token's roles do not allow it (names the role)."}
                )
            for status, response in responses.items():
                if status[:1] in ("4", "5"):
                    response["content"] = _PROBLEM_CONTENT
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    components["Problem"] = PROBLEM_SCHEMA
    return schema


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operation id: the name of its route function (`get_cases`), which a
    client generator turns into a method name. FastAPI's default appends the path and the
    method (`get_cases_v1_cases_get`), so that every rename of a path renamed the clients'
    methods too. Unique within a service: tests/unit/test_openapi.py checks the four."""
    return route.name


def create_app(
    *,
    title: str,
    description: str,
    version: str,
    readiness: Mapping[str, ReadinessCheck],
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    docs: bool = False,
) -> FastAPI:
    """A FastAPI app with `/livez`, `/readyz` and problem+json error mapping; with `docs`
    (`HTTP_DOCS_ENABLED`), also `/docs`, `/redoc` and `/openapi.json`. `app.openapi()` gives
    the document either way. Metrics are not here: `metrics_app` serves them on a port of
    their own (see nps_kit.service.serve)."""
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        generate_unique_id_function=operation_id,
    )
    app.add_middleware(_MetricsMiddleware)
    fastapi_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document_problems(fastapi_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)

    @app.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        checks: dict[str, str] = {}
        for name, check in readiness.items():
            try:
                await check()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"failing: {exc}"
        if all(v == "ok" for v in checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        return problem_response(
            Problem(503, "Not ready", "A dependency is not ready.", checks=checks)
        )

    return app


def metrics_app() -> ASGIApp:
    """What the metrics port serves: `GET /metrics`, the process's Prometheus registry
    (prometheus-client's exposition: text or OpenMetrics as the scraper asks, gzip when it
    accepts it); any other path is a 404 problem. Nothing else of the service is reachable
    there, and nothing of this on the API's port."""
    exposition = make_asgi_app()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        if scope["path"] != "/metrics":
            body = (
                b'{"type":"about:blank","title":"Not found","status":404,'
                b'"detail":"This port serves /metrics only."}'
            )
            await send_raw(send, 404, body, PROBLEM_JSON, {})
        elif scope["method"] not in ("GET", "HEAD"):
            body = b'{"type":"about:blank","title":"Method not allowed","status":405}'
            await send_raw(send, 405, body, PROBLEM_JSON, {"allow": "GET, HEAD"})
        else:
            await exposition(scope, receive, send)

    return app
