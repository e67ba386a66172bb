"""The impact page, `/impact`: followup's impact figures as a table (docs/impact.md). Its own
router, registered beside the console's others; the figures are followup's, shown as they
come, nothing recomputed."""

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from nps_console import catalog
from nps_console.adapters.apis import ApiRefused, ApiUnavailable, TokenRefused
from nps_console.entrypoints.console import Console, Redirect

#: The periods of earlier answers the page offers, in days; a pair needs a later answer, so
#: the periods are long.
IMPACT_DAYS = (90, 180, 365)
DEFAULT_DAYS = 365


def impact_query(query: Mapping[str, str], *, today: datetime) -> tuple[int, dict[str, str]] | str:
    """(days, the parameters of followup's `GET /v1/impact`) from the page's URL, or why not."""
    days_text = query.get("days") or str(DEFAULT_DAYS)
    if not days_text.isdigit() or int(days_text) not in IMPACT_DAYS:
        return catalog.t("impact.bad_days", lengths=", ".join(map(str, IMPACT_DAYS)))
    days = int(days_text)
    end = datetime.combine(today.astimezone(UTC).date() + timedelta(days=1), time(), UTC)
    params = {"from": (end - timedelta(days=days)).isoformat(), "to": end.isoformat()}
    for name, param in (("survey", "survey_id"), ("source", "source")):
        if query.get(name):
            params[param] = query[name]
    return days, params


def router(console: Console) -> APIRouter:
    api = APIRouter()

    @api.get("/impact")
    async def impact_page(request: Request) -> Response:
        try:
            session = await console.signed_in(request)
        except Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        asked = impact_query(request.query_params, today=console.clock.now())
        if isinstance(asked, str):
            return console.page(
                "error.html",
                session=session,
                status=422,
                message=catalog.t("error.422"),
                detail=asked,
            )
        days, params = asked
        try:
            figures = await console.apis.impact(session.access_token or "", params)
        except TokenRefused:
            return await console.token_refused(session, "/impact")
        except (ApiRefused, ApiUnavailable) as exc:
            return console.refused(session, exc)
        return console.page(
            "impact.html",
            session=session,
            impact=figures,
            days=days,
            lengths=IMPACT_DAYS,
            survey=request.query_params.get("survey", ""),
            source=request.query_params.get("source", ""),
        )

    return api
