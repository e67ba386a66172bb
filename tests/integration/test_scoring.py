"""Scoring's use cases on the real database: transitions, themes, figures, replay."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from nps_events import Customer, ResponseReceived, ResponseScored, Transition
from nps_kit.db import SessionFactory, unit_of_work
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.adapters.taxonomy import load_taxonomy
from nps_scoring.domain.themes import KeywordThemeClassifier
from nps_scoring.handlers import score_responses

THEMES = KeywordThemeClassifier(load_taxonomy())

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def response(
    customer: str,
    provider_id: str,
    score: int,
    *,
    days: float = 0,
    comment: str | None = None,
    source: str = "web",
    survey: str = "s-1",
    attributes: dict[str, str] | None = None,
) -> ResponseReceived:
    return ResponseReceived(
        response_id=ResponseReceived.derive_response_id(source, provider_id),
        source=source,
        provider_response_id=provider_id,
        survey_id=survey,
        customer=Customer(id=customer, attributes=attributes or {}),
        score=score,
        comment=comment,
        responded_at=T0 + timedelta(days=days),
        received_at=T0 + timedelta(days=days),
    )


async def score(sessions: SessionFactory, *batch: ResponseReceived) -> list[ResponseScored]:
    async with unit_of_work(sessions) as session:
        return await score_responses(
            ScoringRepository(session), list(batch), now=T0, classifier=THEMES
        )


async def test_transition_compares_with_the_customers_previous_response(
    sessions: SessionFactory,
) -> None:
    c = f"c-{uuid.uuid4().hex[:6]}"
    [first] = await score(sessions, response(c, f"{c}-1", 10, days=0))
    [second] = await score(sessions, response(c, f"{c}-2", 2, days=1))
    [update] = await score(sessions, response(c, f"{c}-2", 9, days=1, comment="ok now"))
    assert (first.transition, first.previous_score) == (Transition.FIRST_RESPONSE, None)
    assert (second.transition, second.previous_score) == (Transition.CHURN_RISK, 10)
    # The update is compared with the response before it, never with its own first version.
    assert (update.revision, update.transition, update.previous_score) == (
        2,
        Transition.UNCHANGED,
        10,
    )


async def test_transition_sees_earlier_responses_of_the_same_batch(
    sessions: SessionFactory,
) -> None:
    c = f"c-{uuid.uuid4().hex[:6]}"
    scored = await score(
        sessions,
        response(c, f"{c}-1", 3, days=0),
        response(c, f"{c}-2", 10, days=1),
        response(c, f"{c}-3", 8, days=2),
    )
    assert [(s.transition, s.previous_score) for s in scored] == [
        (Transition.FIRST_RESPONSE, None),
        (Transition.RECOVERED, 3),
        (Transition.DECLINED, 10),
    ]


async def test_scored_response_carries_its_comment_themes(sessions: SessionFactory) -> None:
    c = f"c-{uuid.uuid4().hex[:6]}"
    scored = await score(
        sessions,
        response(c, f"{c}-1", 3, comment="Delivery was late and support never answered"),
        response(c, f"{c}-2", 9, days=1, comment="Thanks!"),
        response(c, f"{c}-3", 9, days=2),
    )
    assert [s.themes for s in scored] == [["delivery", "support"], [], None]


async def test_an_update_that_empties_a_bucket_deletes_it_and_keeps_the_others(
    sessions: SessionFactory,
) -> None:
    """A response moved to another survey by its update: the old survey's buckets (day,
    week, month) come to 0/0/0 and are deleted; the new survey's and its source's, which
    only grew or stayed, are kept with their counts."""
    c, tag = f"c-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:8]
    source, old, new = f"src-{tag}", f"old-{tag}", f"new-{tag}"
    await score(sessions, response(c, f"{c}-1", 3, source=source, survey=old))
    await score(sessions, response(c, f"{c}-1", 9, source=source, survey=new))
    async with unit_of_work(sessions) as session:
        rows = await session.execute(
            text(
                "SELECT grain, dimension, value, promoters, passives, detractors "
                "FROM scoring.figures WHERE value IN (:source, :old, :new) ORDER BY 2, 3, 1"
            ),
            {"source": source, "old": old, "new": new},
        )
        assert [tuple(r) for r in rows] == [
            (grain, dimension, value, 1, 0, 0)
            for dimension, value in (("source", source), ("survey", new))
            for grain in ("day", "month", "week")
        ]
