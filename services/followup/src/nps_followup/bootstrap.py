"""Followup's composition root, used by production and by tests."""

from dataclasses import dataclass
from datetime import timedelta

from fastapi import FastAPI

from nps_followup.adapters import tables
from nps_followup.config import FollowupSettings
from nps_followup.domain.cases import FollowupPolicy
from nps_followup.entrypoints import api
from nps_followup.entrypoints.consumer import TOPICS, followup_handler
from nps_kit.clock import Clock, SystemClock
from nps_kit.http import create_app
from nps_kit.runtime import Infrastructure
from nps_kit.service import Runtime


@dataclass
class Followup:
    app: FastAPI
    infra: Infrastructure

    @property
    def runtime(self) -> Runtime:
        return self.infra.runtime


def build(settings: FollowupSettings, *, clock: Clock | None = None) -> Followup:
    clock = clock or SystemClock()
    policy = FollowupPolicy(
        detractor_contact_within=timedelta(days=settings.detractor_contact_days)
    )
    infra = Infrastructure.connect("followup", kafka=settings.kafka, database=settings.database)
    relay = infra.with_outbox(tables.outbox)
    infra.add_consumer(
        group_id=settings.consumer_group,
        topics=TOPICS,
        handler=followup_handler(sessions=infra.sessions, relay=relay, clock=clock, policy=policy),
    )
    app = create_app(
        title="npsloop followup",
        description="Follow-up cases for NPS responses, with their actions and deadlines.",
        version="0.1.0",
        readiness={"database": infra.check_database, "consumer": infra.check_consumers},
        lifespan=infra.lifespan(),
    )
    app.include_router(api.router(sessions=infra.sessions))
    return Followup(app=app, infra=infra)
