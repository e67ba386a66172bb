"""What makes a service ready, as the kit's `Infrastructure` derives it from what the service
was wired with (one rule for every service's `/readyz`, not a dict written in each bootstrap).
Nothing connects: the checks are listed, not run."""

from nps_kit.auth import AuthSettings
from nps_kit.infrastructure import Infrastructure
from nps_kit.messaging import Inbound, Rejection
from nps_kit.settings import DatabaseSettings, KafkaSettings


async def _ignore(_: list[Inbound]) -> list[Rejection]:
    return []


async def test_a_service_without_consumers_or_tokens_waits_for_its_database_only() -> None:
    infra = Infrastructure.connect("t", kafka=KafkaSettings(), database=DatabaseSettings())
    try:
        assert list(infra.readiness()) == ["database"]
    finally:
        await infra.engine.dispose()


async def test_consumers_and_token_checks_each_add_their_check() -> None:
    infra = Infrastructure.connect("t", kafka=KafkaSettings(), database=DatabaseSettings())
    try:
        infra.add_consumer(group_id="g", topics=["nps.scored.v1"], handler=_ignore)
        assert list(infra.readiness()) == ["database", "consumer"]

        access = infra.with_access(AuthSettings())

        checks = infra.readiness()
        assert list(checks) == ["database", "consumer", "identity_provider"]
        assert checks["identity_provider"] == access.check
        await access.close()
    finally:
        await infra.engine.dispose()
