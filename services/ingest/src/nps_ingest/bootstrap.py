"""Ingest's composition root, used by production and by tests."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from nps_ingest.config import IngestSettings
from nps_ingest.entrypoints.api import router
from nps_kit.clock import Clock, SystemClock
from nps_kit.http import create_app
from nps_kit.messaging import Publisher
from nps_kit.service import Runtime


@dataclass
class Ingest:
    app: FastAPI
    publisher: Publisher
    runtime: Runtime


def build(settings: IngestSettings, *, clock: Clock | None = None) -> Ingest:
    publisher = Publisher(settings.kafka, client_id="ingest")
    runtime = Runtime()
    tokens = {source: token.get_secret_value() for source, token in settings.api_tokens.items()}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        try:
            yield
        finally:
            await runtime.stop()
            await publisher.stop()

    async def broker_answers() -> None:
        await publisher.check()

    app = create_app(
        title="npsloop ingest",
        description="Receives NPS survey responses; publishes them as `ResponseReceived` events.",
        version="0.1.0",
        readiness={"broker": broker_answers},
        lifespan=lifespan,
    )
    app.include_router(
        router(
            tokens=lambda: tokens,
            publisher=publisher,
            clock=clock or SystemClock(),
            publish_timeout=settings.publish_timeout_seconds,
        )
    )
    return Ingest(app=app, publisher=publisher, runtime=runtime)
