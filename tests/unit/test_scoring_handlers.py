"""Scoring's use cases against the in-memory fake of its ports: segments and transitions (with
earlier responses stored or in the same batch), updates and their revisions, duplicates, the
figures an update moves, a rebuild, and the figures' questions answered from the figures or
from the responses. The SQL is covered by tests/integration/test_scoring*.py."""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from nps_events import Customer, ResponseReceived, ResponseScored, Segment, Transition, encode
from nps_scoring.domain.figures import Counts, Grain
from nps_scoring.handlers import compare_periods, nps_figures, rebuild_figures, score_responses
from tests.support.scoring_fakes import InMemoryScoring

#: Monday 2 March 2026, 23:30 UTC: already Tuesday in Paris.
T0 = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
MONDAY, TUESDAY = date(2026, 3, 2), date(2026, 3, 3)
PARIS = ZoneInfo("Europe/Paris")


class WordThemes:
    """A fake of scoring's own `ThemeClassifier` port: a theme per key word found."""

    def __init__(self, words: dict[str, str]) -> None:
        self.words = words

    def themes_of(self, comment: str, *, source: str, locale: str | None) -> list[str]:
        return sorted({t for w, t in self.words.items() if w in comment.lower()})


THEMES = WordThemes({"slow": "speed", "price": "pricing"})


def response(
    customer: str,
    provider_id: str,
    score: int,
    *,
    hours: float = 0,
    comment: str | None = None,
    source: str = "web",
    survey: str = "s-1",
) -> ResponseReceived:
    return ResponseReceived(
        response_id=ResponseReceived.derive_response_id(source, provider_id),
        source=source,
        provider_response_id=provider_id,
        survey_id=survey,
        customer=Customer(id=customer),
        score=score,
        comment=comment,
        responded_at=T0 + timedelta(hours=hours),
        received_at=T0 + timedelta(hours=hours),
    )


async def score(
    repo: InMemoryScoring, *batch: ResponseReceived, zone: ZoneInfo = PARIS
) -> list[ResponseScored]:
    return await score_responses(repo, list(batch), now=T0, classifier=THEMES, timezone=zone)


async def total(
    repo: InMemoryScoring, day: date, filters: Sequence[tuple[str, str]] = ()
) -> Counts:
    figures = await nps_figures(
        repo, grain=Grain.DAY, start=day, end=day, filters=filters, timezone="Europe/Paris"
    )
    return figures.total


async def test_a_response_is_segmented_compared_and_queued_once() -> None:
    repo = InMemoryScoring()
    first = response("c-1", "r-1", 10)
    [scored] = await score(repo, first, first)  # the same event twice in one batch
    assert await score(repo, first) == []  # and redelivered
    assert (scored.segment, scored.transition, scored.revision) == (
        Segment.PROMOTER,
        Transition.FIRST_RESPONSE,
        1,
    )
    assert repo.published == [scored]


async def test_a_later_response_in_the_same_batch_sees_the_earlier_one() -> None:
    repo = InMemoryScoring()
    _, second = await score(repo, response("c-1", "r-1", 10), response("c-1", "r-2", 3, hours=1))
    assert (second.previous_score, second.transition) == (10, Transition.CHURN_RISK)


async def test_an_update_is_compared_with_the_response_before_it_never_with_itself() -> None:
    repo = InMemoryScoring()
    await score(repo, response("c-1", "r-1", 4))
    await score(repo, response("c-1", "r-2", 2, hours=1))
    [update] = await score(repo, response("c-1", "r-2", 9, hours=1, comment="less slow now"))
    assert (update.revision, update.previous_score, update.transition) == (
        2,
        4,
        Transition.RECOVERED,
    )
    assert update.themes == ["speed"]


async def test_versions_of_one_response_in_one_batch_take_the_next_revisions_in_order() -> None:
    repo = InMemoryScoring()
    first, second = await score(
        repo, response("c-1", "r-1", 4), response("c-1", "r-1", 6, comment="slow")
    )
    [third] = await score(repo, response("c-1", "r-1", 9, comment="fine now"))
    assert [first.revision, second.revision, third.revision] == [1, 2, 3]
    assert repo.responses[third.response_id].revision == 3


async def test_the_scored_event_is_what_validating_its_fields_gives_byte_for_byte() -> None:
    """Scoring builds `ResponseScored` without validating again; downstream sees the same
    event, with the same bytes and id, as if it had been validated."""
    repo = InMemoryScoring()
    await score(repo, response("c-1", "r-1", 10))
    received = ResponseReceived.model_validate(
        response("c-1", "r-2", 3, hours=1, comment="slow and the price").model_dump()
        | {"customer": Customer(id="c-1", locale="fr", attributes={"plan": "pro"})}
    )
    [scored] = await score(repo, received)
    validated = ResponseScored.model_validate(scored.model_dump())
    assert scored.model_dump_json() == validated.model_dump_json()
    assert encode(scored, source="/scoring", time=T0) == encode(
        validated, source="/scoring", time=T0
    )
    assert (scored.themes, scored.transition) == (["pricing", "speed"], Transition.CHURN_RISK)


async def test_a_response_without_comment_has_no_themes_and_one_with_counts_as_unmatched() -> None:
    repo = InMemoryScoring()
    silent, said = await score(
        repo, response("c-1", "r-1", 8), response("c-2", "r-2", 8, comment="fine")
    )
    assert (silent.themes, said.themes) == (None, [])


async def test_an_update_moves_the_response_between_segments_in_the_figures() -> None:
    repo = InMemoryScoring()
    await score(repo, response("c-1", "r-1", 2), response("c-2", "r-2", 9))
    assert await total(repo, TUESDAY) == Counts(promoters=1, detractors=1)
    await score(repo, response("c-1", "r-1", 10))
    assert await total(repo, TUESDAY) == Counts(promoters=2)


async def test_figures_count_a_response_on_its_day_in_the_figures_time_zone() -> None:
    repo = InMemoryScoring()
    await score(repo, response("c-1", "r-1", 9), zone=ZoneInfo("UTC"))
    assert await total(repo, MONDAY) == Counts(promoters=1)
    assert await total(repo, TUESDAY) == Counts()


async def test_a_rebuild_in_another_time_zone_and_taxonomy_recounts_every_response() -> None:
    repo = InMemoryScoring()
    await score(repo, response("c-1", "r-1", 9, comment="price"), zone=ZoneInfo("UTC"))
    await score(repo, response("c-2", "r-2", 1, comment="slow"), zone=ZoneInfo("UTC"))
    counted = await rebuild_figures(
        repo, timezone=PARIS, classifier=WordThemes({"price": "pricing", "slow": "pricing"})
    )
    assert counted == 2
    assert await total(repo, MONDAY) == Counts()
    assert await total(repo, TUESDAY) == Counts(promoters=1, detractors=1)
    by_theme = await nps_figures(
        repo, grain=Grain.DAY, start=TUESDAY, end=TUESDAY, group_by="theme"
    )
    assert [(g.group, g.counts) for g in by_theme.groups] == [
        ("pricing", Counts(promoters=1, detractors=1))
    ]


async def test_a_question_on_two_dimensions_is_answered_from_the_responses_alike() -> None:
    repo = InMemoryScoring()
    await score(
        repo,
        response("c-1", "r-1", 9, source="web", survey="s-1"),
        response("c-2", "r-2", 1, source="web", survey="s-2"),
        response("c-3", "r-3", 2, source="app", survey="s-1"),
    )
    both = await total(repo, TUESDAY, filters=[("source", "web"), ("survey", "s-1")])
    assert both == Counts(promoters=1)
    grouped = await nps_figures(
        repo,
        grain=Grain.DAY,
        start=TUESDAY,
        end=TUESDAY,
        filters=[("source", "web")],
        group_by="survey",
        timezone="Europe/Paris",
    )
    assert [(g.group, g.counts) for g in grouped.groups] == [
        ("s-1", Counts(promoters=1)),
        ("s-2", Counts(detractors=1)),
    ]


async def test_two_periods_are_compared_on_their_own_days() -> None:
    repo = InMemoryScoring()
    await score(repo, response("c-1", "r-1", 1), response("c-2", "r-2", 9, hours=24))
    comparison = await compare_periods(
        repo, a=(TUESDAY, TUESDAY), b=(TUESDAY + timedelta(days=1),) * 2
    )
    assert (comparison.a, comparison.b) == (Counts(detractors=1), Counts(promoters=1))
    assert comparison.comparison.difference == 200.0  # NPS -100 then +100
