"""Scoring's read API: NPS figures with their margin of error, comparisons, themes, and a
customer's score history."""

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from nps_events import Line
from nps_kit.access import Access
from nps_kit.auth import Principal, Role
from nps_kit.db import SessionFactory
from nps_kit.http import Problem
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.domain.figures import ATTRIBUTE_PREFIX, Counts, Dimension, Grain
from nps_scoring.domain.themes import UNMATCHED, ThemeClassifier
from nps_scoring.handlers import (
    compare_periods,
    customer_history,
    nps_figures,
    theme_figures,
    theme_spans_of,
)

RESPONSE_RATE = (
    "Responses per survey sent, where sources report sends. No source reports sends yet, so "
    "it is always null."
)
GROUP_BY = r"^(source|survey|theme|attribute:[a-z][a-z0-9_]{0,39})$"
#: A value is one line: no control character (the same rule as `nps_events.Line`).
ATTRIBUTE = r"^[a-z][a-z0-9_]{0,39}:[^\u0000-\u001f\u007f-\u009f\u2028\u2029]{1,200}$"


class CountsOut(BaseModel):
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None = Field(
        description="% promoters − % detractors, −100 to 100; null without responses."
    )
    margin_of_error: float | None = Field(
        description="Half-width of NPS's 95% confidence interval, in NPS points: "
        "1.96·sqrt((p + d − (p − d)²)/n)·100 with p, d the promoter and detractor shares. "
        "Null below two responses; 0 when every response is in one segment."
    )
    response_rate: float | None = Field(default=None, description=RESPONSE_RATE)

    @classmethod
    def of(cls, counts: Counts) -> "CountsOut":
        return cls(
            responses=counts.responses,
            promoters=counts.promoters,
            passives=counts.passives,
            detractors=counts.detractors,
            nps=counts.nps,
            margin_of_error=counts.margin_of_error,
        )


class SliceOut(CountsOut):
    period_start: date | None = Field(
        default=None, description="First day of the period (a Monday for weeks)."
    )
    group: str | None = Field(default=None, description="The group's value, when grouped.")


class NpsOut(CountsOut):
    """The totals count exactly the days in [from, to]; `series` has every period of `grain`
    that overlaps the range, whole; `groups` the totals of each group. Filters combine (AND);
    a question on one dimension reads the kept figures, one on several (two filters, or a
    filter and a group on different dimensions) counts the stored responses: same rules,
    slower."""

    grain: Grain
    timezone: str
    from_: date | None = Field(alias="from")
    to: date | None
    group_by: str | None
    filter: dict[str, str] | None
    series: list[SliceOut]
    groups: list[SliceOut]


class PeriodOut(CountsOut):
    from_: date = Field(alias="from")
    to: date


class CompareOut(BaseModel):
    a: PeriodOut
    b: PeriodOut
    difference: float | None = Field(description="NPS of b minus NPS of a, in points.")
    standard_error: float | None = Field(description="Of the difference, in NPS points.")
    z: float | None
    p_value: float | None = Field(description="Two-sided.")
    significant: bool | None = Field(
        description="Whether the change is significant at 95% (p < 0.05). Null when the test "
        "is undefined: a period with fewer than two responses, or no spread in either."
    )
    confidence_level: float = 0.95


class ShareOut(BaseModel):
    responses: int = Field(description="Responses whose comment mentions the theme.")
    promoters: int
    passives: int
    detractors: int
    share_of_responses: float | None = Field(
        description="% of the responses with a comment that mention it."
    )
    share_of_promoters: float | None = Field(description="% of promoters with a comment.")
    share_of_passives: float | None = Field(description="% of passives with a comment.")
    share_of_detractors: float | None = Field(description="% of detractors with a comment.")

    @classmethod
    def of(cls, mentions: Counts, commented: Counts) -> dict[str, object]:
        def share(part: int, whole: int) -> float | None:
            return None if whole == 0 else 100.0 * part / whole

        return {
            "responses": mentions.responses,
            "promoters": mentions.promoters,
            "passives": mentions.passives,
            "detractors": mentions.detractors,
            "share_of_responses": share(mentions.responses, commented.responses),
            "share_of_promoters": share(mentions.promoters, commented.promoters),
            "share_of_passives": share(mentions.passives, commented.passives),
            "share_of_detractors": share(mentions.detractors, commented.detractors),
        }


class ThemePeriodOut(ShareOut):
    period_start: date


class ThemeOut(ShareOut):
    theme: str
    label: str
    trend: list[ThemePeriodOut] = Field(description="Per period of `grain`, oldest first.")


class ThemesOut(BaseModel):
    grain: Grain
    timezone: str
    from_: date | None = Field(alias="from")
    to: date | None
    commented: CountsOut = Field(description="Responses with a comment: shares' denominator.")
    themes: list[ThemeOut] = Field(description="Most mentioned first; `unmatched` included.")


class ThemeSpanOut(BaseModel):
    start: int = Field(description="Offset of the span's first character in the comment.")
    end: int = Field(
        description="Offset just after its last: comment[start:end], offsets in Unicode code "
        "points (Python string indices; JavaScript's count UTF-16 units)."
    )
    theme: str = Field(description="The theme's id.")


class AnsweredOut(BaseModel):
    response_id: str
    source: str
    survey_id: str
    score: int
    segment: str = Field(description="promoter, passive or detractor.")
    comment: str | None
    themes: list[str]
    responded_at: datetime
    transition: str | None = Field(
        description="Against the customer's previous answer: e.g. detractor_to_promoter."
    )
    theme_spans: list[ThemeSpanOut] | None = Field(
        default=None,
        description="Where in `comment` the themes were found, computed on read with the "
        "taxonomy in force (`themes` are those found when the response was scored): one span "
        "per phrase matched, sorted; spans of two themes may overlap. Null if this scoring "
        "does not classify on read.",
    )


class CustomerResponsesOut(BaseModel):
    customer_id: str
    limit: int
    responses: list[AnsweredOut] = Field(description="Newest first.")


CustomerId = Annotated[
    Line, Path(min_length=1, max_length=200, description="The customer's id: one line.")
]

From = Annotated[date | None, Query(alias="from", description="First day, inclusive.")]
To = Annotated[date | None, Query(description="Last day, inclusive.")]
GrainQ = Annotated[Grain, Query(description="Period of each point of the series.")]


def _filters(
    source: str | None, survey_id: str | None, theme: str | None, attribute: str | None
) -> list[tuple[str, str]]:
    filters = [
        (Dimension.SOURCE.value, source),
        (Dimension.SURVEY.value, survey_id),
        (Dimension.THEME.value, theme),
    ]
    if attribute is not None:
        key, value = attribute.split(":", 1)
        filters.append((f"{ATTRIBUTE_PREFIX}{key}", value))
    return [(d, v) for d, v in filters if v is not None]


def _range(start: date | None, end: date | None, *, name: str = "") -> None:
    if start is not None and end is not None and start > end:
        raise Problem(400, "Invalid range", f"{name}from ({start}) is after {name}to ({end})")


_RANGE: dict[int | str, dict[str, Any]] = {
    400: {"description": "A range whose first day is after its last (problem+json)."}
}


def router(
    *,
    sessions: SessionFactory,
    timezone: str,
    labels: dict[str, str],
    access: Access,
    classifier: ThemeClassifier | None = None,
) -> APIRouter:
    """Figures and themes hold no customer's data: any role may read them (viewer and up)."""
    api = APIRouter()
    Viewer = Annotated[Principal, access.require(Role.VIEWER)]  # noqa: N806 - a type
    Agent = Annotated[Principal, access.require(Role.AGENT)]  # noqa: N806 - a type
    labels = {**labels, UNMATCHED: "Comments that match no theme"}

    @api.get(
        "/v1/nps",
        responses=_RANGE,
        response_model=NpsOut,
        response_model_by_alias=True,
        summary="NPS, counts and margin of error, per period and group",
    )
    async def get_nps(
        _: Viewer,
        *,
        grain: GrainQ = Grain.MONTH,
        from_: From = None,
        to: To = None,
        group_by: Annotated[
            str | None,
            Query(
                pattern=GROUP_BY,
                description="source, survey, theme or attribute:<key> (e.g. attribute:plan).",
            ),
        ] = None,
        source: Annotated[Line | None, Query(max_length=100)] = None,
        survey_id: Annotated[Line | None, Query(max_length=200)] = None,
        theme: Annotated[Line | None, Query(max_length=40)] = None,
        attribute: Annotated[
            str | None,
            Query(pattern=ATTRIBUTE, description="<key>:<value> of a customer attribute."),
        ] = None,
    ) -> NpsOut:
        _range(from_, to)
        filters = _filters(source, survey_id, theme, attribute)
        async with sessions() as session:
            figures = await nps_figures(
                ScoringRepository(session),
                grain=grain,
                start=from_,
                end=to,
                filters=filters,
                group_by=group_by,
                timezone=timezone,
            )
        return NpsOut.model_validate(
            {
                **CountsOut.of(figures.total).model_dump(),
                "grain": grain,
                "timezone": timezone,
                "from": from_,
                "to": to,
                "group_by": group_by,
                "filter": dict(filters) or None,
                "series": [
                    SliceOut(
                        **CountsOut.of(s.counts).model_dump(),
                        period_start=s.period_start,
                        group=s.group,
                    )
                    for s in figures.series
                ],
                "groups": [
                    SliceOut(**CountsOut.of(g.counts).model_dump(), group=g.group)
                    for g in figures.groups
                ],
            }
        )

    @api.get(
        "/v1/nps/compare",
        responses=_RANGE,
        response_model=CompareOut,
        response_model_by_alias=True,
        summary="Whether NPS changed significantly between two periods",
    )
    async def compare_nps(
        _: Viewer,
        *,
        a_from: Annotated[date, Query(description="Period a's first day.")],
        a_to: Annotated[date, Query(description="Period a's last day.")],
        b_from: Annotated[date, Query(description="Period b's first day.")],
        b_to: Annotated[date, Query(description="Period b's last day.")],
        source: Annotated[Line | None, Query(max_length=100)] = None,
        survey_id: Annotated[Line | None, Query(max_length=200)] = None,
        theme: Annotated[Line | None, Query(max_length=40)] = None,
        attribute: Annotated[str | None, Query(pattern=ATTRIBUTE)] = None,
    ) -> CompareOut:
        _range(a_from, a_to, name="a_")
        _range(b_from, b_to, name="b_")
        async with sessions() as session:
            result = await compare_periods(
                ScoringRepository(session),
                a=(a_from, a_to),
                b=(b_from, b_to),
                filters=_filters(source, survey_id, theme, attribute),
                timezone=timezone,
            )
        c = result.comparison
        return CompareOut(
            a=PeriodOut.model_validate(
                {**CountsOut.of(result.a).model_dump(), "from": a_from, "to": a_to}
            ),
            b=PeriodOut.model_validate(
                {**CountsOut.of(result.b).model_dump(), "from": b_from, "to": b_to}
            ),
            difference=c.difference,
            standard_error=c.standard_error,
            z=c.z,
            p_value=c.p_value,
            significant=c.significant,
        )

    @api.get(
        "/v1/themes",
        responses=_RANGE,
        response_model=ThemesOut,
        response_model_by_alias=True,
        summary="Each theme's share among promoters, passives and detractors, and its trend",
    )
    async def get_themes(
        _: Viewer, grain: GrainQ = Grain.MONTH, from_: From = None, to: To = None
    ) -> ThemesOut:
        _range(from_, to)
        async with sessions() as session:
            overview = await theme_figures(
                ScoringRepository(session), grain=grain, start=from_, end=to
            )
        return ThemesOut.model_validate(
            {
                "grain": grain,
                "timezone": timezone,
                "from": from_,
                "to": to,
                "commented": CountsOut.of(overview.commented),
                "themes": [
                    ThemeOut(
                        theme=t.theme,
                        label=labels.get(t.theme, t.theme),
                        **ShareOut.of(t.mentions, overview.commented),
                        trend=[
                            ThemePeriodOut(
                                period_start=p.period_start, **ShareOut.of(p.mentions, p.commented)
                            )
                            for p in t.trend
                        ],
                    )
                    for t in overview.themes
                ],
            }
        )

    @api.get(
        "/v1/customers/{customer_id}/responses",
        response_model=CustomerResponsesOut,
        summary="Every score a customer gave, newest first (their comments: agent and up)",
    )
    async def get_customer_responses(
        _: Agent,
        customer_id: CustomerId,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> CustomerResponsesOut:
        """Comments are the customer's own words: agents, leads and admins read them; a
        viewer's role stops at figures. Scoring knows no teams, so any agent may ask."""
        async with sessions() as session:
            found = await customer_history(ScoringRepository(session), customer_id, limit=limit)
        return CustomerResponsesOut(
            customer_id=customer_id,
            limit=limit,
            responses=[
                AnsweredOut(
                    response_id=str(r.response_id),
                    source=r.source,
                    survey_id=r.survey_id,
                    score=r.score,
                    segment=r.segment.value,
                    comment=r.comment,
                    themes=list(r.themes),
                    responded_at=r.responded_at,
                    transition=r.transition,
                    theme_spans=None
                    if classifier is None
                    else [
                        ThemeSpanOut(start=s.start, end=s.end, theme=s.theme)
                        for s in theme_spans_of(r, classifier)
                    ],
                )
                for r in found
            ],
        )

    return api
