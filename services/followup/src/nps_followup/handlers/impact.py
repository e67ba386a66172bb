"""The impact figures: how NPS moved between customers' consecutive answers, by what followup
did in between, with margins of error (`domain/impact.py`)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from nps_followup.domain.impact import (
    MIN_CUSTOMERS,
    AnswerPair,
    HoldoutComparison,
    ImpactGroup,
    against_holdout,
    history_pairs,
    impact,
)


class AnswerPairs(Protocol):
    async def answer_pairs(
        self,
        *,
        start: datetime | None,
        end: datetime | None,
        source: str | None,
        survey_id: str | None,
    ) -> list[AnswerPair]:
        """Each customer's answer given in [start, end) with their next answer to the same
        survey, and what followup recorded about the earlier one."""
        ...


@dataclass(frozen=True, slots=True)
class Impact:
    groups: list[ImpactGroup]
    against_holdout: list[HoldoutComparison]
    #: Pairs left out because the earlier answer is history (imported or too old to act on).
    history: int
    min_customers: int = MIN_CUSTOMERS


async def impact_figures(
    reader: AnswerPairs,
    *,
    start: datetime | None,
    end: datetime | None,
    source: str | None = None,
    survey_id: str | None = None,
) -> Impact:
    pairs = await reader.answer_pairs(start=start, end=end, source=source, survey_id=survey_id)
    groups = impact(pairs)
    return Impact(groups, against_holdout(groups), history_pairs(pairs))
