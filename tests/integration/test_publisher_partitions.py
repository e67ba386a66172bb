"""The publisher's batches land each message on the partition Kafka's default partitioner
gives its key (murmur2, as the Java client computes it), as `producer.send` would, whichever
topics, partition counts and keys a batch mixes, and batch after batch (`PartitionCache`)."""

import random
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.partitioner import murmur2

from nps_kit.messaging import Outgoing, Publisher, ensure_topics
from nps_kit.publishing import PartitionCache
from nps_kit.settings import KafkaSettings
from tests.integration.kafka_helpers import read_all
from tests.support.infra import Infra

# Kafka's own test vectors for its murmur2 (the Java client's UtilsTest).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def java_partition(key: bytes, partitions: int) -> int:
    """The Java client's default partitioner for a key: `toPositive(murmur2(key)) % n`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def test_aiokafkas_murmur2_is_kafkas() -> None:
    for key, expected in JAVA_MURMUR2.items():
        assert murmur2(key) == expected & 0xFFFFFFFF  # unsigned here, signed in Java


@pytest.fixture
def kafka(infra: Infra) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=infra.bootstrap_servers)


@pytest.fixture
async def publisher(kafka: KafkaSettings) -> AsyncIterator[Publisher]:
    publisher = Publisher(kafka, client_id="test-partitions")
    await publisher.start()
    yield publisher
    await publisher.stop()


async def test_every_message_lands_on_its_keys_partition_batch_after_batch(
    kafka: KafkaSettings, publisher: Publisher
) -> None:
    """Two topics of 3 and 7 partitions share keys in one batch, and the same keys come again
    in later batches (remembered partitions): each message is on its key's partition of its
    own topic, and a key's messages keep their order."""
    sizes = {f"test.partitions.{uuid.uuid4().hex[:8]}": n for n in (3, 7)}
    for topic, n in sizes.items():
        await ensure_topics(kafka, [topic], partitions=n)
    rng = random.Random(20)
    keys = [*JAVA_MURMUR2, b"", *(rng.randbytes(rng.randrange(1, 40)) for _ in range(60))]
    sent: list[Outgoing] = []
    for batch in range(3):
        messages = [
            Outgoing(topic, key, f"{batch}:{i}".encode(), [])
            for i, key in enumerate(rng.sample(keys, 40))
            for topic in sizes
        ]
        await publisher.send_many(messages)
        sent += messages

    for topic, n in sizes.items():
        records = await read_all(kafka, topic, partitions=n)
        assert len(records) == sum(1 for m in sent if m.topic == topic)
        for record in records:
            assert record.partition == java_partition(record.key or b"", n)
        for key in keys:
            assert [r.value for r in records if (r.key or b"") == key] == [
                m.value for m in sent if m.topic == topic and m.key == key
            ]


async def test_a_remembered_partition_is_what_aiokafkas_partitioner_says(
    kafka: KafkaSettings, publisher: Publisher
) -> None:
    """Over random keys and topics of 1 to 12 partitions, asked twice (the second time from
    memory, and across topics of equal partitions): the producer's own `_partition`."""
    sizes = {f"test.partitions.{uuid.uuid4().hex[:8]}": n for n in (1, 2, 5, 5, 12)}
    for topic, n in sizes.items():
        await ensure_topics(kafka, [topic], partitions=n)
    await publisher.send_many([Outgoing(t, b"k", b"v", []) for t in sizes] * 2)  # connected
    producer = publisher._producer
    assert producer is not None
    cache = PartitionCache(limit=50)  # emptied a few times on the way
    rng = random.Random(12)
    for _ in range(2):
        for key in [rng.randbytes(rng.randrange(0, 64)) for _ in range(300)]:
            for topic, n in sizes.items():
                partitions = frozenset(await producer.partitions_for(topic))
                expected = producer._partition(topic, None, key, None, key, None)
                assert cache.partition(producer, topic, partitions, key) == expected
                assert expected == java_partition(key, n)
