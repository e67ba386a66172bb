"""Followup's composition root, used by production and by tests."""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from fastapi import FastAPI

from nps_followup.adapters import tables
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import PolicyError, PolicyProblem, load_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.adapters.taxonomy import taxonomy_themes
from nps_followup.config import FollowupSettings
from nps_followup.domain.referrals import ReferralCodes
from nps_followup.entrypoints import api
from nps_followup.entrypoints.consumer import IGNORED, TOPICS, followup_handler
from nps_followup.entrypoints.sweeper import Sweeper
from nps_followup.handlers import PolicyInForce
from nps_followup.handlers.simulation import Simulation, read_period, simulate_policy
from nps_followup.metrics import set_case_gauges
from nps_kit.clock import Clock, SystemClock
from nps_kit.db import in_one_transaction, unit_of_work
from nps_kit.http import create_app
from nps_kit.infrastructure import Infrastructure
from nps_kit.loops import SweepLoop
from nps_kit.service import BackgroundLoops


@dataclass
class Followup:
    app: FastAPI
    infra: Infrastructure
    sweeper: Sweeper
    policy: PolicyInForce

    @property
    def runtime(self) -> BackgroundLoops:
        return self.infra.runtime


def policy_in_force(settings: FollowupSettings) -> PolicyInForce:
    """The policy file validated (raises `PolicyError` naming the lines at fault), its themes
    checked against scoring's taxonomy, and its referral program given its secret."""
    policy = load_policy(settings.policy_file, themes=taxonomy_themes(settings.themes_file))
    referrals = None
    if policy.referral is not None:
        secret = settings.referral_secret
        if secret is None or len(secret.get_secret_value()) < 16:
            name = str(settings.policy_file or "default-policy.yaml")
            raise PolicyError(
                name,
                [
                    PolicyProblem(
                        None,
                        "referral",
                        "a referral program needs FOLLOWUP_REFERRAL_SECRET (16 characters or "
                        "more): the codes are made with it",
                    )
                ],
            )
        referrals = ReferralCodes(policy.referral, secret.get_secret_value().encode("utf-8"))
    return PolicyInForce(policy=policy, holidays_for=holidays_for(policy), referrals=referrals)


def build(settings: FollowupSettings, *, clock: Clock | None = None) -> Followup:
    clock = clock or SystemClock()
    policy = policy_in_force(settings)
    infra = Infrastructure.connect("followup", kafka=settings.kafka, database=settings.database)
    relay = infra.with_outbox(tables.outbox)
    infra.add_consumer(
        group_id=settings.consumer_group,
        topics=TOPICS,
        handler=followup_handler(sessions=infra.sessions, relay=relay, clock=clock, policy=policy),
        ignores=IGNORED,
    )
    sweeper = Sweeper(
        sessions=infra.sessions,
        relay=relay,
        clock=clock,
        policy=policy,
        interval=settings.sweep_interval_seconds,
        batch_size=settings.sweep_batch_size,
    )
    infra.add_loop("sweeper", sweeper.run, stop=sweeper.stop)

    async def refresh_gauges() -> int:
        async with unit_of_work(infra.sessions) as session:
            active, breached = await FollowupRepository(session).case_gauges(clock.now())
        set_case_gauges(active, breached)
        return 0

    access = infra.with_access(settings.auth)
    gauges = SweepLoop("case-gauges", refresh_gauges, interval=15.0, batch_size=1)
    infra.add_loop("case-gauges", gauges.run, stop=gauges.stop)
    app = create_app(
        title="npsloop followup",
        description="Follow-up cases for NPS responses: policy, deadlines, escalation, lifecycle.",
        version="0.2.0",
        readiness=infra.readiness(),
        lifespan=infra.lifespan(),
        docs=settings.http.docs_enabled,
    )
    app.include_router(
        api.router(sessions=infra.sessions, clock=clock, policy=policy, access=access),
        tags=["follow-up"],
    )
    return Followup(app=app, infra=infra, sweeper=sweeper, policy=policy)


async def erase_customer(settings: FollowupSettings, customer_id: str) -> dict[str, int]:
    """Delete what followup keeps about one customer, in one transaction (GDPR erasure)."""
    return await in_one_transaction(
        settings.database,
        lambda session: FollowupRepository(session).erase_customer(customer_id),
        application_name="npsloop-followup-erase",
    )


async def simulate(
    settings: FollowupSettings,
    proposed: Path,
    *,
    start: date,
    end: date,
    as_answered: bool = False,
) -> Simulation:
    """`policy simulate`: the policy file `proposed` and the policy in force replayed over the
    stored responses answered from `start` to `end`, read in one read-only transaction."""
    new = load_policy(proposed, themes=taxonomy_themes(settings.themes_file))
    current = policy_in_force(settings)
    period = await in_one_transaction(
        settings.database,
        lambda session: read_period(FollowupRepository(session), start=start, end=end),
        application_name="npsloop-followup-simulate",
    )
    return await simulate_policy(
        period,
        proposed=PolicyInForce(policy=new, holidays_for=holidays_for(new)),
        in_force=current,
        as_answered=as_answered,
    )
