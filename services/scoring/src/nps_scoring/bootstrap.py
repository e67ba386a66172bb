"""Scoring's composition root, used by production and by tests."""

from dataclasses import dataclass

from fastapi import FastAPI

from nps_events import Topic
from nps_kit.clock import Clock, SystemClock
from nps_kit.db import create_engine, in_one_transaction, session_factory, unit_of_work
from nps_kit.http import create_app
from nps_kit.infrastructure import Infrastructure
from nps_kit.service import BackgroundLoops
from nps_scoring.adapters import tables
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.adapters.taxonomy import load_taxonomy
from nps_scoring.config import ScoringSettings
from nps_scoring.domain.themes import KeywordThemeClassifier, ThemeClassifier
from nps_scoring.entrypoints import api
from nps_scoring.entrypoints.consumer import IGNORED, responses_handler
from nps_scoring.handlers import rebuild_figures


@dataclass
class Scoring:
    app: FastAPI
    infra: Infrastructure

    @property
    def runtime(self) -> BackgroundLoops:
        return self.infra.runtime


def build(
    settings: ScoringSettings,
    *,
    clock: Clock | None = None,
    classifier: ThemeClassifier | None = None,
) -> Scoring:
    clock = clock or SystemClock()
    # Loaded before anything connects: a bad taxonomy stops start-up with its line numbers.
    taxonomy = load_taxonomy(settings.themes_file)
    classifier = classifier or KeywordThemeClassifier(taxonomy)
    infra = Infrastructure.connect("scoring", kafka=settings.kafka, database=settings.database)
    relay = infra.with_outbox(tables.outbox)
    handler = responses_handler(
        sessions=infra.sessions,
        relay=relay,
        clock=clock,
        classifier=classifier,
        timezone=settings.timezone,
    )
    for _ in range(settings.consumers):
        # Members of one group: the broker gives each its partitions, so no partition is
        # handled by two at once and each customer's events stay in order.
        infra.add_consumer(
            group_id=settings.consumer_group,
            topics=[Topic.RESPONSES.value],
            handler=handler,
            ignores=IGNORED,
        )
    access = infra.with_access(settings.auth)
    app = create_app(
        title="npsloop scoring",
        description="Segments NPS responses and keeps NPS figures.",
        version="0.1.0",
        readiness=infra.readiness(),
        lifespan=infra.lifespan(),
        docs=settings.http.docs_enabled,
    )
    labels = {theme.id: theme.label for theme in taxonomy.themes}
    app.include_router(
        api.router(
            sessions=infra.sessions,
            timezone=settings.figures_timezone,
            labels=labels,
            access=access,
            classifier=classifier,
        ),
        tags=["NPS figures"],
    )
    return Scoring(app=app, infra=infra)


async def rebuild(settings: ScoringSettings, *, reclassify: bool) -> int:
    """Recompute the figures from the stored responses in one transaction (see
    `handlers.rebuild_figures`); with `reclassify`, find every comment's themes again with the
    configured taxonomy first. Returns the number of responses counted."""
    classifier = KeywordThemeClassifier(load_taxonomy(settings.themes_file)) if reclassify else None
    engine = create_engine(settings.database, application_name="npsloop-scoring-rebuild")
    try:
        async with unit_of_work(session_factory(engine)) as session:
            return await rebuild_figures(
                ScoringRepository(session), timezone=settings.timezone, classifier=classifier
            )
    finally:
        await engine.dispose()


async def erase_customer(settings: ScoringSettings, customer_id: str) -> dict[str, int]:
    """Delete what scoring keeps about one customer, in one transaction (GDPR erasure)."""
    return await in_one_transaction(
        settings.database,
        lambda session: ScoringRepository(session).erase_customer(customer_id),
        application_name="npsloop-scoring-erase",
    )
