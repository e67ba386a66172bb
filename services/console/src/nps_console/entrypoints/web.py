"""The console's pages: server-rendered HTML (Jinja2), no JavaScript build. Each route reads
the session, asks followup or scoring with the person's token, and renders what they said;
refusals (403, 404, 409, 422) are shown to the person with the API's own reason.

Every form carries the session's CSRF token and must come from the console's own origin
(`Origin`, else `Referer`); the session cookie is HttpOnly, SameSite=Lax, and Secure unless
the console is served over plain HTTP on this machine."""

import asyncio
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from nps_console import catalog
from nps_console.adapters.apis import ApiRefused, Apis, ApiUnavailable, TokenRefused
from nps_console.adapters.oidc import IdentityProvider, SignInFailed
from nps_console.adapters.sessions import Session, SessionStore, TokenCipher
from nps_console.config import ConsoleSettings
from nps_console.domain.chart import nps_chart
from nps_console.domain.deadline import due_label
from nps_console.domain.durations import span
from nps_console.domain.highlight import highlighted
from nps_console.domain.local_time import local_time
from nps_console.domain.periods import LENGTHS, change, this_and_previous
from nps_console.handlers import begin_sign_in, finish_sign_in, refresh, sign_out
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

#: How many of the customer's earlier answers the case page shows.
HISTORY_LIMIT = 20


class _Redirect(Exception):  # noqa: N818 - control flow: answer with a redirect
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
        self.templates.filters["when"] = _when
        self.templates.filters["detail"] = _detail
        self.templates.filters["span"] = _span
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
            role=_highest(roles),
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
        raise _Redirect("/sign-in?" + urlencode({"next": back_to or _here(request)}))

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
            raise _Forbidden
        return fields


SEGMENTS = ("promoter", "passive", "detractor")
#: The dashboard shows the most mentioned themes.
THEMES_SHOWN = 12


@dataclass(frozen=True, slots=True)
class DashboardChoice:
    """The dashboard's period length and filters, from its URL."""

    days: int = 30
    source: str = ""
    segment: str = ""
    team: str = ""
    survey: str = ""
    #: `<key>:<value>` of a customer attribute (scoring's own syntax).
    attribute: str = ""

    def scoring_filter(self) -> dict[str, str]:
        """Scoring's parameters: at most one of them, which its kept figures answer."""
        return {
            k: v
            for k, v in (
                ("source", self.source),
                ("survey_id", self.survey),
                ("attribute", self.attribute),
            )
            if v
        }


#: A customer attribute as scoring takes it: a lower-case key, a colon, a value.
ATTRIBUTE = re.compile(r"[a-z][a-z0-9_]{0,39}:.{1,200}")


def _dashboard_choice(query: Mapping[str, str]) -> DashboardChoice | str:
    """The choice, or what is wrong with it (the APIs check the filters' values)."""
    raw = query.get("days", "30")
    if not raw.isdigit() or int(raw) not in LENGTHS:
        return catalog.t("dashboard.bad_days", lengths=", ".join(map(str, LENGTHS)))
    segment = query.get("segment", "").strip()
    if segment and segment not in SEGMENTS:
        return catalog.t("dashboard.bad_segment", segments=", ".join(SEGMENTS))
    attribute = query.get("attribute", "").strip()
    if attribute and not ATTRIBUTE.fullmatch(attribute):
        return catalog.t("dashboard.bad_attribute")
    choice = DashboardChoice(
        days=int(raw),
        source=query.get("source", "").strip(),
        segment=segment,
        team=query.get("team", "").strip(),
        survey=query.get("survey", "").strip(),
        attribute=attribute,
    )
    # Scoring keeps figures per source, per survey and per attribute, not per pair of them: a
    # pair is counted from every response of the period (about a second over a year of a
    # million responses, docs/performance.md), too slow for a page.
    if len(choice.scoring_filter()) > 1:
        return catalog.t("dashboard.one_dimension")
    return choice


class _Forbidden(Exception):  # noqa: N818 - a form that failed the CSRF check
    pass


def _when(value: str | datetime | None) -> str:
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    shown = span(seconds)
    return catalog.t(shown.key, n=shown.n)


def _detail(value: object) -> str:
    """A timeline detail as people read it: the rules an opening considered, or its deadline's
    calendar, as `key: value` pairs, not a Python literal."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_detail(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_detail(v) for v in value) or "—"
    return str(value)


def _highest(roles: set[str]) -> str:
    for role in ("admin", "lead", "agent", "viewer"):
        if role in roles:
            return role
    return "none"


#: The queue's filters as the form names them (and the URL keeps them): each is passed to
#: followup's list as the parameter of the same name, and followup judges the values.
FILTERS = (
    "status",
    "segment",
    "source",
    "theme",
    "score_min",
    "score_max",
    "owner",
    "team",
    "customer",
)
#: The queue's segment choices: the cases most in need first.
QUEUE_SEGMENTS = ("detractor", "passive", "promoter")


def _queue_filters(query: Mapping[str, str]) -> dict[str, str]:
    return {name: query.get(name, "").strip() for name in FILTERS}


def _queue_params(filters: Mapping[str, str], *, cursor: str, page_size: int) -> dict[str, Any]:
    """followup's list parameters for the queue's filters and cursor: most urgent first;
    open or contacted cases unless a status is chosen."""
    params: dict[str, Any] = {
        "sort": "urgency",
        "status": [filters["status"]] if filters["status"] else list(ACTIVE),
        "limit": page_size,
    }
    for name in FILTERS[1:]:
        if filters[name]:
            params[name] = filters[name]
    if cursor:
        params["cursor"] = cursor
    return params


def _redirect_an_old_page_link(query: Mapping[str, str], filters: Mapping[str, str]) -> None:
    """A bookmark from when the queue paged by number (`?page=N` without the cursor it pages
    by now) goes to the same filters' first page, which says why: a number no longer holds a
    place in a queue that moves as cases are worked."""
    page = query.get("page", "").strip()
    if not page or query.get("cursor") or page == "1":
        return
    kept = {k: v for k, v in filters.items() if v}
    asked = page[:12] if page.isdigit() else "?"
    raise _Redirect("/cases?" + urlencode({**kept, "from_page": asked}))


def _page_number(query: Mapping[str, str]) -> int:
    try:
        return max(1, min(int(query.get("page", "1")), 1_000_000))
    except ValueError:
        return 1


def router(console: Console) -> APIRouter:
    api = APIRouter(include_in_schema=False)
    _sign_in_routes(api, console)
    _case_routes(api, console)
    _bulk_routes(api, console)
    _figure_routes(api, console)
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
            return _sign_in_failed(console, error_description or error)
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
            return _sign_in_failed(console, str(exc))
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
        except _Forbidden:
            return _csrf_page(console, session)
        async with unit_of_work(console.sessions) as db:
            location = await sign_out(console.store(db), console.provider, session)
        response = RedirectResponse(location, status_code=303)
        response.delete_cookie(console.cookie, path="/", secure=settings.secure_cookies)
        return response

    @api.get("/signed-out")
    async def signed_out() -> HTMLResponse:
        return console.page("signed_out.html", session=None)


def _case_routes(api: APIRouter, console: Console) -> None:
    settings = console.settings

    @api.get("/cases")
    async def queue(request: Request) -> Response:
        query = dict(request.query_params)
        filters = _queue_filters(query)
        try:
            session = await console.signed_in(request)
            _redirect_an_old_page_link(query, filters)
        except _Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        page = _page_number(query)
        from_page = query.get("from_page", "")
        params = _queue_params(
            filters, cursor=query.get("cursor", ""), page_size=settings.page_size
        )
        token = session.access_token or ""
        shown: dict[str, Any] = {
            "filters": filters,
            "statuses": STATUSES,
            "segments": QUEUE_SEGMENTS,
            "page": page,
            "from_page": from_page[:12] if from_page.isdigit() else ("?" if from_page else ""),
        }
        try:
            found = await console.apis.cases(token, params)
        except TokenRefused:
            return await console.token_refused(session, _here(request))
        except ApiRefused as exc:
            if exc.status != 422:
                return console.refused(session, exc)
            # A filter followup refuses: the form again, with its reason next to it.
            return console.page(
                "queue.html",
                session=session,
                status=422,
                rows=[],
                refused=exc.detail,
                previous=None,
                next=None,
                now="",
                **shown,
            )
        except ApiUnavailable as exc:
            return console.refused(session, exc)
        now = datetime.fromisoformat(found["now"]) if found.get("now") else console.clock.now()
        rows = [
            {
                **case,
                "due": due_label(
                    status=case["status"],
                    due_at=datetime.fromisoformat(case["due_at"]) if case["due_at"] else None,
                    business_hours_left=None
                    if case.get("business_seconds_left") is None
                    else case["business_seconds_left"] / 3600,
                    now=now,
                ),
            }
            for case in found["items"]
        ]
        kept = {k: v for k, v in filters.items() if v}

        def link(cursor: str | None, number: int) -> str | None:
            if not cursor:
                return None
            return "/cases?" + urlencode({**kept, "cursor": cursor, "page": number})

        return console.page(
            "queue.html",
            session=session,
            rows=rows,
            refused="",
            previous=link(found.get("previous_cursor"), page - 1)
            or (("/cases?" + urlencode(kept)) if page > 1 else None),
            next=link(found.get("next_cursor"), page + 1),
            now=now.isoformat(),
            **shown,
        )

    @api.get("/cases/{case_id}")
    async def case_page(request: Request, case_id: str, done: str | None = None) -> Response:
        try:
            session = await console.signed_in(request)
        except _Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        if not _is_case_id(case_id):
            return _not_found(console, session)
        return await _render_case(console, session, case_id, done=done)

    @api.post("/cases/{case_id}/{step}")
    async def act(request: Request, case_id: str, step: Step) -> Response:
        back = f"/cases/{case_id}"
        try:
            session = await console.signed_in(request, back_to=back)
        except _Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        try:
            fields = await console.form(request, session)
        except _Forbidden:
            return _csrf_page(console, session)
        if not _is_case_id(case_id):
            return _not_found(console, session)
        body = _body(step, fields, session)
        try:
            await console.apis.act(session.access_token or "", case_id, STEPS[step], body)
        except (TokenRefused, ApiRefused, ApiUnavailable) as exc:
            return await _step_refused(console, session, case_id, exc, fields)
        log.info("console.case_step", step=step)
        return RedirectResponse(f"{back}?{urlencode({'done': step})}", status_code=303)


def _bulk_routes(api: APIRouter, console: Console) -> None:
    settings = console.settings

    @api.post("/cases/assign")
    async def assign_many(request: Request) -> Response:
        """A lead gives the selected cases of the queue to one person: one call per case,
        each answered on its own (a refusal of one does not stop the others)."""
        try:
            session = await console.signed_in(request, back_to="/cases")
        except _Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        try:
            fields = await console.form_values(request, session)
        except _Forbidden:
            return _csrf_page(console, session)
        owner = (fields.get("owner") or [""])[0].strip()
        chosen = [c for c in fields.get("case_id", []) if _is_case_id(c)][: settings.page_size]
        results = []
        for case_id in chosen:
            try:
                await console.apis.act(
                    session.access_token or "", case_id, "assign", {"owner": owner or None}
                )
            except TokenRefused:
                return await console.token_refused(session, "/cases")
            except ApiRefused as exc:
                results.append({"case_id": case_id, "done": False, "why": exc.detail})
            except ApiUnavailable as exc:
                results.append({"case_id": case_id, "done": False, "why": str(exc)})
            else:
                results.append({"case_id": case_id, "done": True, "why": ""})
        log.info("console.cases_assigned", cases=len(results))
        return console.page("assigned.html", session=session, owner=owner, results=results)


def _figure_routes(api: APIRouter, console: Console) -> None:
    @api.get("/dashboard")
    async def dashboard(request: Request) -> Response:
        try:
            session = await console.signed_in(request)
        except _Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        choice = _dashboard_choice(request.query_params)
        if isinstance(choice, str):
            return console.page(
                "error.html",
                session=session,
                status=422,
                message=catalog.t("error.422"),
                detail=choice,
            )
        token = session.access_token or ""
        this, previous = this_and_previous(console.clock.now().astimezone(UTC).date(), choice.days)
        scoring_only = choice.scoring_filter()
        by_owner = bool(set(session.roles) & LEAD_ROLES)
        followup_only = {
            "start": datetime.combine(this.first, time(), UTC).isoformat(),
            "end": datetime.combine(this.last + timedelta(days=1), time(), UTC).isoformat(),
            **{
                k: v
                for k, v in (
                    ("source", choice.source),
                    ("segment", choice.segment),
                    ("team", choice.team),
                    ("survey_id", choice.survey),
                )
                if v
            },
        }
        try:
            nps, compared, themes, closed_loop = await asyncio.gather(
                console.apis.nps(token, grain="month", only=scoring_only),
                console.apis.compare(
                    token,
                    {
                        "a_from": previous.first.isoformat(),
                        "a_to": previous.last.isoformat(),
                        "b_from": this.first.isoformat(),
                        "b_to": this.last.isoformat(),
                        **scoring_only,
                    },
                ),
                console.apis.themes(
                    token,
                    {
                        "grain": "week" if choice.days <= 90 else "month",
                        "from": previous.first.isoformat(),
                        "to": this.last.isoformat(),
                    },
                ),
                # People's names are for their leads (followup refuses anyone else figures by
                # owner); both groupings are one pass over the period's cases.
                console.apis.figures(
                    token,
                    group_by=("team", "owner") if by_owner else ("team",),
                    only=followup_only,
                ),
            )
        except TokenRefused:
            return await console.token_refused(session, _here(request))
        except (ApiRefused, ApiUnavailable) as exc:
            return console.refused(session, exc)
        chart = nps_chart(
            [(str(p["period_start"]), p["nps"], p["margin_of_error"]) for p in nps["series"]]
        )
        a, b = compared["a"], compared["b"]
        comparison = [
            {"key": key, "before": a[key], "after": b[key], "change": change(a[key], b[key])}
            for key in ("nps", "responses", "promoters", "passives", "detractors")
        ]
        return console.page(
            "dashboard.html",
            session=session,
            nps=nps,
            chart=chart,
            teams=[g for g in closed_loop["groups"] if g["grouping"] == "team"],
            owners=[g for g in closed_loop["groups"] if g["grouping"] == "owner"],
            by_owner=by_owner,
            compared=compared,
            comparison=comparison,
            themes=themes["themes"][:THEMES_SHOWN],
            segments=(choice.segment,) if choice.segment else SEGMENTS,
            choice=choice,
            lengths=LENGTHS,
            this=this,
            previous=previous,
        )

    @api.get("/policy")
    async def policy_page(request: Request) -> Response:
        try:
            session = await console.signed_in(request)
        except _Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        try:
            policy = await console.apis.policy(session.access_token or "")
        except TokenRefused:
            return await console.token_refused(session, "/policy")
        except (ApiRefused, ApiUnavailable) as exc:
            return console.refused(session, exc)
        return console.page("policy.html", session=session, policy=policy)


def _sign_in_failed(console: Console, why: str) -> HTMLResponse:
    log.info("console.sign_in_failed", reason=why)
    return console.page(
        "error.html",
        session=None,
        status=400,
        message=catalog.t("error.sign_in", detail=why),
        detail="",
    )


async def _step_refused(
    console: Console,
    session: Session,
    case_id: str,
    error: TokenRefused | ApiRefused | ApiUnavailable,
    fields: Mapping[str, str],
) -> Response:
    """A step followup did not take: sign in again (401), the case page with the reason and
    what was typed (403, 404, 409, 422), or the service's absence."""
    if isinstance(error, TokenRefused):
        return await console.token_refused(session, f"/cases/{case_id}")
    if isinstance(error, ApiRefused):
        return await _render_case(console, session, case_id, failed=error, form=fields)
    return console.refused(session, error)


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _is_case_id(value: str) -> bool:
    """A case id is a UUID: anything else never reaches followup's URL."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _not_found(console: Console, session: Session) -> HTMLResponse:
    return console.page(
        "error.html", session=session, status=404, message=catalog.t("error.404"), detail=""
    )


def _csrf_page(console: Console, session: Session | None) -> HTMLResponse:
    return console.page(
        "error.html", session=session, status=403, message=catalog.t("error.csrf"), detail=""
    )


def _body(step: str, fields: Mapping[str, str], session: Session) -> dict[str, Any]:
    """What followup's route takes, from the form. Empty optional fields are left out; the
    API validates the rest and says what it refuses (422)."""

    def text(name: str) -> str | None:
        value = fields.get(name, "").strip()
        return value or None

    if step == "contact":
        return {
            "channel": fields.get("channel", ""),
            "outcome": fields.get("outcome", ""),
            "note": text("note"),
        }
    if step == "resolve":
        return {"root_cause": fields.get("root_cause", ""), "note": text("note")}
    if step == "assign":
        owner = text("owner")
        if fields.get("take") == "me":
            owner = session.email
        return {"owner": owner}
    if step == "reopen":
        return {"reason": text("reason")}
    return {}


async def _render_case(
    console: Console,
    session: Session,
    case_id: str,
    *,
    done: str | None = None,
    failed: ApiRefused | None = None,
    form: Mapping[str, str] | None = None,
) -> Response:
    token = session.access_token or ""
    try:
        case, policy = await asyncio.gather(
            console.apis.case(token, case_id), console.apis.policy(token)
        )
        root_causes = policy["root_causes"]
    except TokenRefused:
        return await console.token_refused(session, f"/cases/{case_id}")
    except (ApiRefused, ApiUnavailable) as exc:
        return console.refused(session, exc)
    # The score history is scoring's: without it the case can still be worked, so its
    # absence is said on the page, not made the page's failure.
    history: list[dict[str, Any]] | None = None
    history_error = ""
    try:
        found = await console.apis.customer_responses(
            token, case["customer"]["id"], limit=HISTORY_LIMIT
        )
        history = found["responses"]
    except TokenRefused:
        return await console.token_refused(session, f"/cases/{case_id}")
    except ApiRefused as exc:
        history_error = exc.detail or exc.title
    except ApiUnavailable as exc:
        history_error = catalog.t("error.api", detail=str(exc))
    # Scoring's spans are into its own copy of the comment: they mark the case's comment only
    # when it is the same text (highlighted() also drops any span that does not fit).
    answered = next((r for r in history or () if r["response_id"] == case.get("response_id")), None)
    comment_pieces = (
        highlighted(case["comment"], answered.get("theme_spans"))
        if case.get("comment") and answered and answered.get("comment") == case["comment"]
        else None
    )
    for r in history or ():
        r["pieces"] = highlighted(r["comment"], r.get("theme_spans")) if r.get("comment") else []
    now = console.clock.now()
    due = due_label(
        status=case["status"],
        due_at=datetime.fromisoformat(case["due_at"]) if case["due_at"] else None,
        business_hours_left=case.get("business_hours_left"),
        now=now,
    )
    error = None
    if failed is not None:
        key = f"error.{failed.status}"
        error = {
            "message": catalog.t(key) if key in catalog.EN else failed.title,
            "detail": failed.detail,
            "errors": failed.errors,
        }
    return console.page(
        "case.html",
        session=session,
        status=failed.status if failed is not None else 200,
        case=case,
        due=due,
        local=local_time(case["customer"].get("timezone"), now),
        history=history,
        history_error=history_error,
        comment_pieces=comment_pieces,
        root_causes=root_causes,
        outcomes=OUTCOMES,
        done=f"done.{done}" if done in STEPS else None,
        error=error,
        form=form or {},
    )
