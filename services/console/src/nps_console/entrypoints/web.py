"""The console's pages: server-rendered HTML (Jinja2), no JavaScript build. Each route reads
the session, asks followup or scoring with the person's token, and renders what they said;
refusals (403, 404, 409, 422) are shown to the person with the API's own reason.

Every form carries the session's CSRF token and must come from the console's own origin
(`Origin`, else `Referer`); the session cookie is HttpOnly, SameSite=Lax, and Secure unless
the console is served over plain HTTP on this machine."""

from datetime import timedelta
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nps_console import catalog
from nps_console.adapters.oidc import SignInFailed
from nps_console.entrypoints.case_pages import bulk_routes, case_routes
from nps_console.entrypoints.console import (
    OUTCOMES,
    STATUSES,
    STEPS,
    Console,
    Forbidden,
    csrf_page,
    sign_in_failed_page,
)
from nps_console.entrypoints.dashboard_pages import dashboard_routes
from nps_console.handlers import begin_sign_in, finish_sign_in, sign_out
from nps_kit.db import unit_of_work
from nps_kit.logging import get_logger

# What the composition root and the tests import from here.
__all__ = ["OUTCOMES", "STATUSES", "STEPS", "Console", "router"]

log = get_logger(__name__)


def router(console: Console) -> APIRouter:
    api = APIRouter(include_in_schema=False)
    _sign_in_routes(api, console)
    case_routes(api, console)
    bulk_routes(api, console)
    dashboard_routes(api, console)
    return api


def _sign_in_routes(api: APIRouter, console: Console) -> None:
    settings = console.settings

    @api.get("/")
    async def home() -> RedirectResponse:
        return RedirectResponse("/cases", status_code=303)

    @api.get("/static/console.css")
    async def stylesheet() -> Response:
        css = resources.files("nps_console").joinpath("static/console.css").read_bytes()
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @api.get("/static/countdown.js")
    async def countdown_script() -> Response:
        script = resources.files("nps_console").joinpath("static/countdown.js").read_bytes()
        return Response(
            script, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"}
        )

    @api.get("/sign-in")
    async def sign_in(request: Request, next: str | None = None) -> Response:  # noqa: A002
        try:
            async with unit_of_work(console.sessions) as db:
                started = await begin_sign_in(
                    console.store(db), console.provider, return_to=next, now=console.clock.now()
                )
        except SignInFailed as exc:
            return console.page(
                "error.html",
                session=None,
                status=503,
                message=catalog.t("error.sign_in", detail=str(exc)),
                detail="",
            )
        response = RedirectResponse(started.location, status_code=303)
        console.set_cookie(response, started.session_id, max_age=600)
        return response

    @api.get("/auth/callback")
    async def callback(
        request: Request,
        code: str = "",
        state: str = "",
        error: str | None = None,
        error_description: str | None = None,
    ) -> Response:
        if error is not None:
            return sign_in_failed_page(console, error_description or error)
        pending = await console.session_of(request)
        try:
            async with unit_of_work(console.sessions) as db:
                done = await finish_sign_in(
                    console.store(db),
                    console.provider,
                    console.verifier,
                    pending=pending,
                    state=state,
                    code=code,
                    now=console.clock.now(),
                    lifetime=timedelta(hours=settings.session_hours),
                )
        except SignInFailed as exc:
            return sign_in_failed_page(console, str(exc))
        response = RedirectResponse(done.location, status_code=303)
        console.set_cookie(response, done.session_id, max_age=int(settings.session_hours * 3600))
        log.info("console.signed_in")
        return response

    @api.post("/sign-out")
    async def sign_out_route(request: Request) -> Response:
        session = await console.session_of(request)
        if session is None:
            return RedirectResponse("/signed-out", status_code=303)
        try:
            await console.form(request, session)
        except Forbidden:
            return csrf_page(console, session)
        async with unit_of_work(console.sessions) as db:
            location = await sign_out(console.store(db), console.provider, session)
        response = RedirectResponse(location, status_code=303)
        response.delete_cookie(console.cookie, path="/", secure=settings.secure_cookies)
        return response

    @api.get("/signed-out")
    async def signed_out() -> HTMLResponse:
        return console.page("signed_out.html", session=None)
