"""Ingest's composition root, used by production and by tests."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.types import ASGIApp

from nps_ingest.adapters.providers import (
    asknicely,
    delighted,
    formbricks,
    hubspot,
    qualtrics,
    standard_webhooks,
    surveymonkey,
    typeform,
    wootric,
)
from nps_ingest.adapters.vendor_api import HubSpotClient, QualtricsClient, SurveyMonkeyClient
from nps_ingest.config import IngestSettings, load_sources
from nps_ingest.domain.sources import Provider, Source
from nps_ingest.domain.webhooks import ProviderAdapter
from nps_ingest.entrypoints.api import http_app
from nps_ingest.handlers import ResponseFetcher
from nps_kit.clock import Clock, SystemClock
from nps_kit.messaging import Publisher
from nps_kit.service import BackgroundLoops

#: Every provider's adapter, by the name a sources file uses.
ADAPTERS: dict[Provider, ProviderAdapter] = {
    Provider.STANDARD_WEBHOOKS: standard_webhooks.ADAPTER,
    Provider.FORMBRICKS: formbricks.ADAPTER,
    Provider.DELIGHTED: delighted.ADAPTER,
    Provider.TYPEFORM: typeform.ADAPTER,
    Provider.WOOTRIC: wootric.ADAPTER,
    Provider.ASKNICELY: asknicely.ADAPTER,
    Provider.SURVEYMONKEY: surveymonkey.ADAPTER,
    Provider.HUBSPOT: hubspot.ADAPTER,
    Provider.QUALTRICS: qualtrics.ADAPTER,
}


@dataclass
class Ingest:
    app: ASGIApp
    publisher: Publisher
    runtime: BackgroundLoops
    sources: Mapping[str, Source]


def build(
    settings: IngestSettings,
    *,
    clock: Clock | None = None,
    fetchers: Mapping[Provider, ResponseFetcher] | None = None,
    sources: Mapping[str, Source] | None = None,
) -> Ingest:
    if sources is None:
        sources = load_sources(settings)
    publisher = Publisher(settings.kafka, client_id="ingest")
    runtime = BackgroundLoops()
    clients: dict[Provider, SurveyMonkeyClient | HubSpotClient | QualtricsClient] = {
        Provider.SURVEYMONKEY: SurveyMonkeyClient(timeout=settings.vendor_timeout_seconds),
        Provider.HUBSPOT: HubSpotClient(timeout=settings.vendor_timeout_seconds),
        Provider.QUALTRICS: QualtricsClient(timeout=settings.vendor_timeout_seconds),
    }
    if fetchers is None:
        fetchers = dict(clients)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        try:
            yield
        finally:
            await runtime.stop()
            await publisher.stop()
            for client in clients.values():
                await client.aclose()

    async def broker_answers() -> None:
        await publisher.check()

    app = http_app(
        sources=sources,
        adapters=ADAPTERS,
        fetchers=fetchers,
        publisher=publisher,
        clock=clock or SystemClock(),
        publish_timeout=settings.publish_timeout_seconds,
        comment_limit=settings.comment_max_chars,
        max_body_bytes=settings.max_body_bytes,
        readiness={"broker": broker_answers},
        lifespan=lifespan,
        docs=settings.http.docs_enabled,
    )
    return Ingest(app=app, publisher=publisher, runtime=runtime, sources=sources)
