"""The dashboard: NPS and closed-loop figures for a period, its filters from the URL."""

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from nps_console import catalog
from nps_console.adapters.apis import ApiRefused, ApiUnavailable, TokenRefused
from nps_console.domain.chart import nps_chart
from nps_console.domain.periods import LENGTHS, change, this_and_previous
from nps_console.entrypoints.console import LEAD_ROLES, Console, Redirect, here

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


def dashboard_choice(query: Mapping[str, str]) -> DashboardChoice | str:
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


def dashboard_routes(api: APIRouter, console: Console) -> None:
    @api.get("/dashboard")
    async def dashboard(request: Request) -> Response:
        try:
            session = await console.signed_in(request)
        except Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        choice = dashboard_choice(request.query_params)
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
        by_owner = bool(set(session.roles) & LEAD_ROLES)
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
            return await console.token_refused(session, here(request))
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
        except Redirect as go:
            return RedirectResponse(go.location, status_code=303)
        try:
            policy = await console.apis.policy(session.access_token or "")
        except TokenRefused:
            return await console.token_refused(session, "/policy")
        except (ApiRefused, ApiUnavailable) as exc:
            return console.refused(session, exc)
        return console.page("policy.html", session=session, policy=policy)
