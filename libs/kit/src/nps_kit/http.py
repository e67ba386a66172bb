"""The FastAPI app factory every service uses: probes, metrics and RFC 9457 problem+json."""

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nps_kit.logging import get_logger

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


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    errors = cast(RequestValidationError, exc).errors()
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
    fields = [{"field": _field(tuple(err["loc"])), "message": err["msg"]} for err in errors]
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
    log.error("http.unhandled_error", path=request.url.path, error=repr(exc), exc_info=exc)
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
            method = scope["method"]
            HTTP_REQUESTS.labels(method=method, route=template, status=str(status)).inc()
            HTTP_SECONDS.labels(method=method, route=template).observe(
                time.perf_counter() - started
            )


def create_app(
    *,
    title: str,
    description: str,
    version: str,
    readiness: Mapping[str, ReadinessCheck],
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """A FastAPI app with `/livez`, `/readyz`, `/metrics` and problem+json error mapping."""
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)
    app.add_middleware(_MetricsMiddleware)
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

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
