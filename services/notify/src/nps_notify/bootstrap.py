"""Notify's composition root, used by production and by tests."""

from dataclasses import dataclass

from fastapi import FastAPI

from nps_events import Topic
from nps_kit.clock import Clock, SystemClock
from nps_kit.db import create_engine, session_factory, unit_of_work
from nps_kit.http import create_app
from nps_kit.runtime import Infrastructure
from nps_kit.service import Runtime
from nps_notify.adapters import tables
from nps_notify.adapters.email import SmtpEmailChannel, TemplateRenderer
from nps_notify.adapters.repository import NotifyRepository
from nps_notify.config import NotifySettings
from nps_notify.entrypoints.consumer import actions_handler


@dataclass
class Notify:
    app: FastAPI
    infra: Infrastructure

    @property
    def runtime(self) -> Runtime:
        return self.infra.runtime


def build(settings: NotifySettings, *, clock: Clock | None = None) -> Notify:
    clock = clock or SystemClock()
    infra = Infrastructure.connect("notify", kafka=settings.kafka, database=settings.database)
    relay = infra.with_outbox(tables.outbox)
    channel = SmtpEmailChannel(
        settings.smtp,
        renderer=TemplateRenderer(),
        attempts=settings.send_attempts,
        pool_size=settings.send_concurrency,
    )
    infra.on_stop(channel.aclose)
    infra.add_consumer(
        group_id=settings.consumer_group,
        topics=[Topic.ACTIONS.value],
        handler=actions_handler(
            sessions=infra.sessions,
            relay=relay,
            channel=channel,
            clock=clock,
            concurrency=settings.send_concurrency,
            case_url=settings.case_url,
        ),
    )
    app = create_app(
        title="npsloop notify",
        description="Dispatches follow-up actions (email for now) and reports their outcomes.",
        version="0.1.0",
        readiness={"database": infra.check_database, "consumer": infra.check_consumers},
        lifespan=infra.lifespan(),
    )
    return Notify(app=app, infra=infra)


async def erase_customer(settings: NotifySettings, customer_id: str) -> dict[str, int]:
    """Delete what notify keeps about one customer, in one transaction (GDPR erasure)."""
    engine = create_engine(settings.database, application_name="npsloop-notify-erase")
    try:
        async with unit_of_work(session_factory(engine)) as session:
            return await NotifyRepository(session).erase_customer(customer_id)
    finally:
        await engine.dispose()
