"""Helpers for tests that talk to the real broker."""

import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord

from nps_events import Customer, ResponseReceived
from nps_kit.messaging import client_options
from nps_kit.settings import KafkaSettings

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def a_response(
    customer_id: str = "c-1", score: int = 3, provider_id: str | None = None
) -> ResponseReceived:
    provider_id = provider_id or f"r-{uuid.uuid4()}"
    return ResponseReceived(
        response_id=ResponseReceived.derive_response_id("test", provider_id),
        source="test",
        provider_response_id=provider_id,
        survey_id="s-1",
        customer=Customer(id=customer_id, email=f"{customer_id}@example.com", name="Ada"),
        score=score,
        comment="slow",
        responded_at=NOW,
        received_at=NOW,
    )


def key_on(partition: int, partitions: int, prefix: str) -> str:
    """A key that lands on `partition` of `partitions` (the producers' default partitioner:
    murmur2 of the key)."""
    for i in range(10_000):
        key = f"{prefix}-{i}"
        if (murmur2(key.encode()) & 0x7FFFFFFF) % partitions == partition:
            return key
    raise AssertionError(f"no key for partition {partition}")


async def read_all(
    settings: KafkaSettings, topic: str, partitions: int = 1
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record currently on `topic`, read without a consumer group."""
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[ConsumerRecord[bytes, bytes]] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        while await behind():
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def committed(
    settings: KafkaSettings, group_id: str, topic: str, partition: int = 0
) -> int | None:
    """The offset `group_id` has committed on `topic`[`partition`]."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        value = await consumer.committed(TopicPartition(topic, partition))
        return None if value is None else int(value)
    finally:
        await consumer.stop()
