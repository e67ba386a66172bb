"""The four services on a three-node Apache Kafka cluster (topics with three replicas and
`min.insync.replicas=2`), counted from the outside as the chaos suite counts
(tests/support/chaos.py): while responses flow, the broker leading ingest's partition is
SIGKILLed and comes back; then two of the three brokers are, so that no write can be
acknowledged: ingest answers 503 with Retry-After, and nothing it acknowledged is lost. Then
partitions are added to nps.responses.v1 while the services run, and records on the new
partitions are consumed (the runbook's "Scale out", docs/operations.md).

Only with `NPSLOOP_TEST_INFRA=apache-kafka` (Java and Maven). The full table comes from
`bench/chaos.py --cluster` and is in docs/reliability.md; timing goals live there."""

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions

from nps_events import Topic
from nps_kit.devstack import ApacheKafkaCluster, free_port
from nps_kit.devstack.services import SERVICES, start_all
from nps_kit.messaging import client_options
from tests.e2e.conftest import TOKEN, System, system_env
from tests.integration.kafka_helpers import key_on, read_all
from tests.support import chaos
from tests.support.fake_twilio import FakeTwilio
from tests.support.fake_zendesk import FakeZendesk
from tests.support.infra import Infra, running_cluster
from tests.support.polling import eventually

pytestmark = pytest.mark.skipif(
    os.environ.get("NPSLOOP_TEST_INFRA") != "apache-kafka",
    reason="the failover tests need Apache Kafka: NPSLOOP_TEST_INFRA=apache-kafka",
)

#: How often the services refresh the cluster's metadata here (KAFKA_METADATA_MAX_AGE_MS):
#: partitions added to a topic are seen within this long (5 minutes by default).
METADATA_MAX_AGE_MS = 3000


@pytest.fixture(scope="module")
def cluster_system(
    infra: Infra,
    zendesk: tuple[FakeZendesk, str],
    twilio: tuple[FakeTwilio, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[System]:
    base: Path = tmp_path_factory.mktemp("cluster")
    with running_cluster(infra, base / "kafka") as on_cluster:
        logs = base / "logs"
        logs.mkdir()
        env = {
            **system_env(on_cluster, zendesk=zendesk, twilio=twilio, logs=logs),
            "KAFKA_METADATA_MAX_AGE_MS": str(METADATA_MAX_AGE_MS),
        }
        services = start_all(
            env, ports={name: free_port() for name in SERVICES}, log_dir=logs, ready_timeout=90
        )
        try:
            yield System(services=services, infra=on_cluster)
        finally:
            for service in services.values():
                service.stop()


@pytest.fixture
def target(cluster_system: System, zendesk: tuple[FakeZendesk, str]) -> chaos.Target:
    return cluster_system.chaos_target(zendesk[0])


def _cluster(system: System) -> ApacheKafkaCluster:
    assert isinstance(system.infra.broker, ApacheKafkaCluster)
    return system.infra.broker


def _nothing_lost_nothing_twice(report: chaos.Report, system: System) -> None:
    assert report.accepted == report.responses, report
    assert report.recovery_seconds is not None, f"never caught up: {report}\n{system.diagnosis()}"
    assert report.without_case == 0, report
    assert report.duplicate_cases == 0, report
    assert report.emails == report.detractors, report
    assert report.duplicate_emails == 0, report
    assert report.tickets == report.detractors, report
    assert report.duplicate_tickets == 0, report
    assert report.unknown == 0, report
    assert report.other_dlq == 0, f"dead-lettered: {report.other_reasons}"
    assert report.other_answers == [], report.other_answers
    # Ingest answers, 202 or 503, even while the brokers do not: no request hangs or fails.
    assert report.unanswered == 0, report


async def test_the_leaders_broker_killed_loses_nothing_and_sends_nothing_twice(
    cluster_system: System, target: chaos.Target
) -> None:
    fault = chaos.leader_killed(_cluster(cluster_system), 10)
    report = await chaos.run(
        target, fault, name="leader's broker SIGKILLed for 10 s", responses=100, rate=10
    )
    _nothing_lost_nothing_twice(report, cluster_system)


async def test_two_brokers_of_three_killed_refuse_writes_and_lose_nothing_acknowledged(
    cluster_system: System, target: chaos.Target
) -> None:
    fault = chaos.brokers_killed(_cluster(cluster_system), 15, count=2)
    report = await chaos.run(
        target, fault, name="two brokers of three SIGKILLed for 15 s", responses=100, rate=10
    )
    _nothing_lost_nothing_twice(report, cluster_system)
    # Writes could not be acknowledged for a while: ingest said so, and the senders' retries
    # (chaos._post_until_accepted) are what got every response in.
    assert report.unavailable > 0, report


async def test_partitions_added_to_a_live_topic_are_consumed(
    cluster_system: System, target: chaos.Target
) -> None:
    topic = Topic.RESPONSES.value
    settings = _cluster(cluster_system).settings()
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await admin.create_partitions({topic: NewPartitions(total_count=6)})
    finally:
        await admin.close()
    # Ingest writes to the new partitions once its metadata is refreshed; until then a
    # customer meant for partition 3 lands on partition 0. So each round posts a detractor
    # from new customers for each new partition not reached yet, and keeps those whose only
    # record is on a new partition.
    landed: dict[int, str] = {}
    rounds = iter(range(1000))

    async def post_round() -> dict[int, str]:
        prefix = f"scale-{os.getpid()}-{next(rounds)}"
        posted = {p: key_on(p, 6, f"{prefix}-{p}") for p in (3, 4, 5) if p not in landed}
        async with httpx.AsyncClient(timeout=10) as client:
            for customer in posted.values():
                answer = await client.post(
                    f"{target.ingest}/v1/responses",
                    json=chaos.response_body(customer, 2),
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                assert answer.status_code == 202, answer.text
        keys = {c.encode(): p for p, c in posted.items()}
        for record in await read_all(settings, topic, partitions=6):
            if record.key in keys and record.partition == keys[record.key]:
                landed[record.partition] = record.key.decode()
        return landed

    await eventually(
        post_round,
        until=lambda on: len(on) == 3,
        timeout=30,
        what="a detractor's response on each new partition",
    )
    async with httpx.AsyncClient(timeout=10) as client:
        found = await eventually(
            lambda: asyncio.gather(
                *(chaos.customer_cases(client, target, c) for c in landed.values())
            ),
            until=lambda found: all(chaos.is_settled(cases) for cases in found),
            timeout=60,
            what="a case with its email and ticket for each customer on a new partition",
            diagnose=cluster_system.diagnosis,
        )
    assert [len(cases) for cases in found] == [1, 1, 1]
