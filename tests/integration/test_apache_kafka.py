"""The dev stack's Apache Kafka launcher: a three-node cluster (each node broker and
controller) forms one quorum, and goes on acknowledging and serving records while one node
is dead; the node comes back with its data. Only with `NPSLOOP_TEST_INFRA=apache-kafka`
(Java and Maven; about 40 s)."""

import asyncio
import os
from collections.abc import Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from nps_events import encode
from nps_kit.devstack import ApacheKafkaCluster
from nps_kit.messaging import (
    Outgoing,
    Publisher,
    PublishError,
    TopicsNotCreatedError,
    client_options,
    ensure_topics,
)
from nps_kit.settings import KafkaSettings
from tests.integration.kafka_helpers import NOW, a_response, read_all
from tests.support.polling import eventually

pytestmark = pytest.mark.skipif(
    os.environ.get("NPSLOOP_TEST_INFRA") != "apache-kafka",
    reason="Apache Kafka's own tests run with NPSLOOP_TEST_INFRA=apache-kafka",
)

TOPIC = "test.cluster"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafkaCluster]:
    cluster = ApacheKafkaCluster(base_dir=tmp_path_factory.mktemp("cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def _brokers(settings: KafkaSettings) -> int:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        return len((await admin.describe_cluster())["brokers"])
    finally:
        await admin.close()


async def _publish(publisher: Publisher, count: int) -> None:
    messages = []
    for _ in range(count):
        m = encode(a_response(), source="/test", time=NOW)
        messages.append(Outgoing(TOPIC, m.key, m.value, m.headers))
    await publisher.send_many(messages)


async def _published(publisher: Publisher, count: int) -> bool:
    """Whether a batch was acknowledged (a leader may be moving: the caller tries again)."""
    try:
        await _publish(publisher, count)
    except PublishError:
        return False
    return True


async def _described(settings: KafkaSettings, topic: str) -> tuple[list[int], dict[str, str]]:
    """Each partition's number of replicas and in-sync replicas (smaller of the two), and
    the topic's configuration, as the brokers describe them."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    replicas = [
        min(len(p["replicas"]), len(p["isr"]))
        for p in sorted(described["partitions"], key=lambda p: p["partition"])
    ]
    [(error_code, _, _, name, entries)] = [r[:5] for r in response.resources]
    assert (error_code, name) == (0, topic)
    return replicas, {entry[0]: entry[1] for entry in entries}


async def test_topics_are_created_with_three_replicas_and_two_in_sync(
    cluster: ApacheKafkaCluster,
) -> None:
    settings = cluster.settings()
    await ensure_topics(settings, ["test.replicated"], partitions=3)
    _, config = await eventually(
        lambda: _described(settings, "test.replicated"),
        until=lambda described: described[0] == [3, 3, 3],
        what="three partitions, each with three replicas in sync",
    )
    assert config["min.insync.replicas"] == "2"


async def test_a_replication_factor_the_cluster_cannot_give_is_refused_by_name(
    cluster: ApacheKafkaCluster,
) -> None:
    settings = cluster.settings().model_copy(update={"topic_replication_factor": 4})
    with pytest.raises(TopicsNotCreatedError, match=r"test\.too-many: InvalidReplicationFactor"):
        await ensure_topics(settings, ["test.too-many"], partitions=1)


async def test_a_cluster_of_three_serves_through_the_loss_of_a_node(
    cluster: ApacheKafkaCluster,
) -> None:
    kafka = KafkaSettings(bootstrap_servers=cluster.bootstrap_servers, enable_idempotence=True)
    assert await _brokers(kafka) == 3
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=3, replication_factor=3)])
    finally:
        await admin.close()
    publisher = Publisher(kafka, client_id="cluster")
    await publisher.start()
    try:
        await eventually(lambda: _published(publisher, 10), until=bool, what="10 acknowledged")
        cluster.nodes[0].kill()
        await eventually(
            lambda: _published(publisher, 10),
            until=bool,
            timeout=60,
            what="10 more acknowledged by the two nodes left",
        )
    finally:
        await publisher.stop()
    records = await read_all(kafka, TOPIC, partitions=3)
    assert len(records) == 20
    await asyncio.to_thread(cluster.restart)
    assert cluster.alive()
    await eventually(lambda: _brokers(kafka), until=lambda n: n == 3, what="three brokers again")
