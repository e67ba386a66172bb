"""Scoring's use cases: scoring responses and rebuilding the figures (`scoring`), reading the
figures (`figures`); `ports` says what they need of storage."""

from nps_scoring.handlers.figures import (
    NpsFigures,
    PeriodComparison,
    Slice,
    ThemeFigures,
    ThemePeriod,
    ThemesOverview,
    compare_periods,
    customer_history,
    nps_figures,
    theme_figures,
    theme_spans_of,
)
from nps_scoring.handlers.ports import (
    CustomerHistory,
    FigureReads,
    FigureRebuild,
    ScoredResponses,
)
from nps_scoring.handlers.scoring import (
    CONSUMER,
    counted_version,
    rebuild_figures,
    score_responses,
    themes_of,
)

__all__ = [
    "CONSUMER",
    "CustomerHistory",
    "FigureReads",
    "FigureRebuild",
    "NpsFigures",
    "PeriodComparison",
    "ScoredResponses",
    "Slice",
    "ThemeFigures",
    "ThemePeriod",
    "ThemesOverview",
    "compare_periods",
    "counted_version",
    "customer_history",
    "nps_figures",
    "rebuild_figures",
    "score_responses",
    "theme_figures",
    "theme_spans_of",
    "themes_of",
]
