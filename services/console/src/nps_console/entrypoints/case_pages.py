"""The case pages: the queue (filters, urgency order, pages by cursor), one case with its
timeline and steps, and the bulk steps over the queue."""

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from nps_console import catalog
from nps_console.adapters.apis import ApiRefused, ApiUnavailable, TokenRefused
from nps_console.adapters.sessions import Session
from nps_console.domain.deadline import due_label
from nps_console.domain.highlight import highlighted
from nps_console.domain.local_time import local_time
from nps_console.entrypoints.console import (
    ACTIVE,
    OUTCOMES,
    STATUSES,
    STEPS,
    Console,
    Forbidden,
    Redirect,
    Step,
    csrf_page,
    here,
    is_case_id,
    not_found,
)
from nps_kit.logging import get_logger

log = get_logger(__name__)

#: How many of the customer's earlier answers the case page shows.
HISTORY_LIMIT = 20


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


def queue_filters(query: Mapping[str, str]) -> dict[str, str]:
    return {name: query.get(name, "").strip() for name in FILTERS}


def queue_params(filters: Mapping[str, str], *, cursor: str, page_size: int) -> dict[str, Any]:
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


def page_number(query: Mapping[str, str]) -> int:
    try:
        return max(1, min(int(query.get("page", "1")), 1_000_000))
    except ValueError:
        return 1


def redirect_an_old_page_link(query: Mapping[str, str], filters: Mapping[str, str]) -> None:
    """A bookmark from when the queue paged by number (`?page=N` without the cursor it pages
    by now) goes to the same filters' first page, which says why: a number no longer holds a
    place in a queue that moves as cases are worked."""
    page = query.get("page", "").strip()
    if not page or query.get("cursor") or page == "1":
        return
    kept = {k: v for k, v in filters.items() if v}
    asked = page[:12] if page.isdigit() else "?"
    raise Redirect("/cases?" + urlencode({**kept, "from_page": asked}))


def case_routes(api: APIRouter, console: Console) -> None:
    settings = console.settings

    @api.get("/cases")
    async def queue(request: Request) -> Response:
        query = dict(request.query_params)
        filters = queue_filters(query)
        try:
            session = await console.signed_in(request)
            redirect_an_old_page_link(query, filters)
        except Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        page = page_number(query)
        from_page = query.get("from_page", "")
        params = queue_params(filters, cursor=query.get("cursor", ""), page_size=settings.page_size)
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
            return await console.token_refused(session, here(request))
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
        except Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        if not is_case_id(case_id):
            return not_found(console, session)
        return await _render_case(console, session, case_id, done=done)

    @api.post("/cases/{case_id}/{step}")
    async def act(request: Request, case_id: str, step: Step) -> Response:
        back = f"/cases/{case_id}"
        try:
            session = await console.signed_in(request, back_to=back)
        except Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        try:
            fields = await console.form(request, session)
        except Forbidden:
            return csrf_page(console, session)
        if not is_case_id(case_id):
            return not_found(console, session)
        body = _body(step, fields, session)
        try:
            await console.apis.act(session.access_token or "", case_id, STEPS[step], body)
        except (TokenRefused, ApiRefused, ApiUnavailable) as exc:
            return await _step_refused(console, session, case_id, exc, fields)
        log.info("console.case_step", step=step)
        return RedirectResponse(f"{back}?{urlencode({'done': step})}", status_code=303)


def bulk_routes(api: APIRouter, console: Console) -> None:
    settings = console.settings

    @api.post("/cases/assign")
    async def assign_many(request: Request) -> Response:
        """A lead gives the selected cases of the queue to one person: one call per case,
        each answered on its own (a refusal of one does not stop the others)."""
        try:
            session = await console.signed_in(request, back_to="/cases")
        except Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        try:
            fields = await console.form_values(request, session)
        except Forbidden:
            return csrf_page(console, session)
        owner = (fields.get("owner") or [""])[0].strip()
        chosen = [c for c in fields.get("case_id", []) if is_case_id(c)][: settings.page_size]
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
