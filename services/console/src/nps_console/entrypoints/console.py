"""What every page of the console shares: the `Console` (templates, sessions, cookies, the
CSRF and origin checks of forms), the steps a case page offers, and the small pages and
redirects the routes answer with."""

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from nps_console import catalog
from nps_console.adapters.apis import ApiRefused, Apis, ApiUnavailable
from nps_console.adapters.oidc import IdentityProvider
from nps_console.adapters.sessions import Session, SessionStore, TokenCipher
from nps_console.config import ConsoleSettings
from nps_console.domain.durations import span
from nps_console.handlers import refresh
from nps_events import ContactOutcome
from nps_kit.auth import TokenVerifier
from nps_kit.clock import Clock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.logging import get_logger

log = get_logger(__name__)

STATUSES = ("open", "contacted", "resolved", "closed", "automated")
#: The queue's default: the cases people still work.
ACTIVE = ("open", "contacted")
#: The console's step → followup's route and what the form sends.
STEPS = {
    "contact": "contacts",
    "resolve": "resolve",
    "assign": "assign",
    "close": "close",
    "reopen": "reopen",
}
Step = Literal["contact", "resolve", "assign", "close", "reopen"]
OUTCOMES = tuple(outcome.value for outcome in ContactOutcome)
LEAD_ROLES = frozenset({"lead", "admin"})
#: A session's last page is written at most this often (its idle lifetime counts from it).
SEEN_EVERY = timedelta(seconds=30)


class Redirect(Exception):  # noqa: N818 - control flow: answer with a redirect
    def __init__(self, location: str) -> None:
        self.location = location


@dataclass
class Console:
    settings: ConsoleSettings
    sessions: SessionFactory
    provider: IdentityProvider
    verifier: TokenVerifier
    apis: Apis
    clock: Clock

    def __post_init__(self) -> None:
        self.templates = Environment(
            loader=PackageLoader("nps_console", "templates"),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals["t"] = catalog.t
        self.templates.filters["when"] = when
        self.templates.filters["kind"] = catalog.kind_label
        self.templates.filters["detail"] = detail
        self.templates.filters["span"] = span_text
        self.cookie = "__Host-npsloop" if self.settings.secure_cookies else "npsloop_session"
        self.cipher = TokenCipher(self.settings.session_key_list)
        issuer = urlsplit(self.settings.auth.issuer)
        self.csp = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            f"form-action 'self' {issuer.scheme}://{issuer.netloc}; frame-ancestors 'none'; "
            "base-uri 'none'"
        )

    # --- rendering ----------------------------------------------------------------------

    def page(
        self, name: str, *, session: Session | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        roles = set(session.roles) if session else set()
        html = self.templates.get_template(name).render(
            session=session,
            role=highest(roles),
            is_lead=bool(roles & LEAD_ROLES),
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=self._headers())

    def _headers(self) -> dict[str, str]:
        return {
            "Content-Security-Policy": self.csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        }

    def refused(self, session: Session | None, error: ApiRefused | ApiUnavailable) -> HTMLResponse:
        if isinstance(error, ApiUnavailable):
            message = catalog.t("error.api", detail=str(error))
            return self.page("error.html", session=session, status=503, message=message, detail="")
        key = f"error.{error.status}"
        message = catalog.t(key) if key in catalog.EN else error.title
        return self.page(
            "error.html",
            session=session,
            status=error.status,
            message=message,
            detail=error.detail,
        )

    # --- sessions -----------------------------------------------------------------------

    def store(self, db: AsyncSession) -> SessionStore:
        return SessionStore(
            db,
            cipher=self.cipher,
            idle=timedelta(minutes=self.settings.session_idle_minutes),
        )

    async def session_of(self, request: Request) -> Session | None:
        cookie = request.cookies.get(self.cookie)
        if not cookie:
            return None
        async with self.sessions() as db:
            return await self.store(db).get(cookie, now=self.clock.now())

    async def signed_in(self, request: Request, *, back_to: str | None = None) -> Session:
        """The signed-in session, or a redirect to sign in (and back here afterwards). An
        access token about to end is refreshed first (where the provider gave a refresh
        token); one that has ended, or a refresh the provider refuses, counts as signed
        out. Each page counts as activity for the idle lifetime."""
        now = self.clock.now()
        session = await self.session_of(request)
        before = timedelta(seconds=self.settings.refresh_before_seconds)
        if session is not None and session.due_for_refresh(now, before=before):
            async with unit_of_work(self.sessions) as db:
                session = await refresh(
                    self.store(db),
                    self.provider,
                    self.verifier,
                    id_hash=session.id_hash,
                    now=now,
                    before=before,
                )
        if session is not None and session.signed_in(now):
            if session.last_seen_at is None or now - session.last_seen_at >= SEEN_EVERY:
                async with unit_of_work(self.sessions) as db:
                    await self.store(db).seen(session.id_hash, now)
            return session
        raise Redirect("/sign-in?" + urlencode({"next": back_to or here(request)}))

    async def token_refused(self, session: Session, back_to: str) -> RedirectResponse:
        """The API refused the token (expired, revoked): sign in again."""
        async with unit_of_work(self.sessions) as db:
            await self.store(db).forget_tokens(session.id_hash)
        return RedirectResponse("/sign-in?" + urlencode({"next": back_to}), status_code=303)

    def set_cookie(self, response: Response, value: str, *, max_age: int) -> None:
        response.set_cookie(
            self.cookie,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            secure=self.settings.secure_cookies,
            samesite="lax",
        )

    async def form(self, request: Request, session: Session) -> dict[str, str]:
        """The form's fields (the first value of each), once its origin and CSRF token are
        checked."""
        return {k: v[0] for k, v in (await self.form_values(request, session)).items()}

    async def form_values(self, request: Request, session: Session) -> dict[str, list[str]]:
        """Every value of each of the form's fields, once its origin and CSRF token are
        checked."""
        origin = request.headers.get("origin")
        if origin is None:
            referer = urlsplit(request.headers.get("referer", ""))
            origin = f"{referer.scheme}://{referer.netloc}" if referer.netloc else None
        body = (await request.body()).decode("utf-8", errors="replace")
        fields = parse_qs(body, keep_blank_values=True)
        token = fields.pop("csrf_token", [""])[0]
        if origin != self.settings.origin or not secrets.compare_digest(
            token.encode(), session.csrf_token.encode()
        ):
            log.warning("console.csrf_refused", origin=origin, path=request.url.path)
            raise Forbidden
        return fields


class Forbidden(Exception):  # noqa: N818 - a form that failed the CSRF check
    pass


def when(value: str | datetime | None) -> str:
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def span_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    shown = span(seconds)
    return catalog.t(shown.key, n=shown.n)


def detail(value: object) -> str:
    """A timeline detail as people read it: the rules an opening considered, or its deadline's
    calendar, as `key: value` pairs, not a Python literal."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {detail(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(detail(v) for v in value) or "—"
    return str(value)


def highest(roles: set[str]) -> str:
    for role in ("admin", "lead", "agent", "viewer"):
        if role in roles:
            return role
    return "none"


def sign_in_failed_page(console: Console, why: str) -> HTMLResponse:
    log.info("console.sign_in_failed", reason=why)
    return console.page(
        "error.html",
        session=None,
        status=400,
        message=catalog.t("error.sign_in", detail=why),
        detail="",
    )


def here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def is_case_id(value: str) -> bool:
    """A case id is a UUID: anything else never reaches followup's URL."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def not_found(console: Console, session: Session) -> HTMLResponse:
    return console.page(
        "error.html", session=session, status=404, message=catalog.t("error.404"), detail=""
    )


def csrf_page(console: Console, session: Session | None) -> HTMLResponse:
    return console.page(
        "error.html", session=session, status=403, message=catalog.t("error.csrf"), detail=""
    )
