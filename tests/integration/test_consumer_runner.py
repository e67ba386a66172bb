"""The consumer runner against the real broker: commits after success, redelivers after a
crash, dead-letters what it cannot process with the reason, retries what is transient."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError

from nps_events import ResponseReceived, dlq, encode
from nps_kit.devstack import EmbeddedBroker, free_port
from nps_kit.messaging import (
    ConsumerRunner,
    Inbound,
    Outgoing,
    Publisher,
    PublishError,
    Rejection,
    ensure_topics,
)
from nps_kit.settings import KafkaSettings
from tests.integration.kafka_helpers import NOW, a_response, committed, read_all
from tests.support.infra import Infra
from tests.support.polling import eventually

Handler = Callable[[list[Inbound]], Awaitable[list[Rejection]]]


@pytest.fixture
def kafka(infra: Infra) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=infra.bootstrap_servers)


@pytest.fixture
async def topic(kafka: KafkaSettings) -> str:
    name = f"test.runner.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [name, dlq(name)], partitions=1)
    return name


@pytest.fixture
async def publisher(kafka: KafkaSettings) -> AsyncIterator[Publisher]:
    publisher = Publisher(kafka, client_id="test")
    await publisher.start()
    yield publisher
    await publisher.stop()


async def _produce(publisher: Publisher, topic: str, events: list[ResponseReceived]) -> None:
    messages = []
    for event in events:
        m = encode(event, source="/test", time=NOW)
        messages.append(Outgoing(topic, m.key, m.value, m.headers))
    await publisher.send_many(messages)


def _runner(
    kafka: KafkaSettings,
    publisher: Publisher,
    topic: str,
    handler: Handler,
    group: str,
    **kw: object,
) -> ConsumerRunner:
    return ConsumerRunner(
        settings=kafka,
        group_id=group,
        topics=[topic],
        handler=handler,
        publisher=publisher,
        **kw,  # type: ignore[arg-type]
    )


async def _stop(runner: ConsumerRunner, task: "asyncio.Task[None]") -> None:
    runner.stop()
    await asyncio.wait_for(task, timeout=30)


async def test_offsets_are_committed_only_after_the_handler_succeeds(
    kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    events = [a_response() for _ in range(3)]
    await _produce(publisher, topic, events)
    release = asyncio.Event()
    seen: list[str] = []

    async def handler(batch: list[Inbound]) -> list[Rejection]:
        seen.extend(i.event.id for i in batch)
        await release.wait()
        return []

    group = f"g-{uuid.uuid4().hex[:8]}"
    runner = _runner(kafka, publisher, topic, handler, group)
    task = asyncio.create_task(runner.run())
    await eventually(
        lambda: asyncio.sleep(0, len(seen)),
        until=lambda n: n == 3,
        what="the batch to reach the handler",
    )
    assert await committed(kafka, group, topic) is None  # still working: nothing committed
    release.set()
    await eventually(
        lambda: committed(kafka, group, topic), until=lambda o: o == 3, what="the commit"
    )
    await _stop(runner, task)
    assert seen == [str(e.event_id()) for e in events]


async def test_a_crash_before_commit_redelivers_the_batch(
    kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    events = [a_response() for _ in range(2)]
    await _produce(publisher, topic, events)
    group = f"g-{uuid.uuid4().hex[:8]}"

    async def crashing(batch: list[Inbound]) -> list[Rejection]:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        await asyncio.wait_for(_runner(kafka, publisher, topic, crashing, group).run(), timeout=60)
    assert await committed(kafka, group, topic) is None

    seen: list[str] = []

    async def working(batch: list[Inbound]) -> list[Rejection]:
        seen.extend(i.event.id for i in batch)
        return []

    runner = _runner(kafka, publisher, topic, working, group)
    task = asyncio.create_task(runner.run())
    await eventually(
        lambda: committed(kafka, group, topic), until=lambda o: o == 2, what="the commit"
    )
    await _stop(runner, task)
    assert seen == [str(e.event_id()) for e in events]


async def test_undecodable_message_goes_to_the_dlq_with_its_reason_and_the_rest_flows(
    kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    good = [a_response(), a_response()]
    await _produce(publisher, topic, [good[0]])
    await publisher.send_many([Outgoing(topic, b"c-x", b"garbage", [("origin", b"someone")])])
    await _produce(publisher, topic, [good[1]])
    seen: list[str] = []

    async def handler(batch: list[Inbound]) -> list[Rejection]:
        seen.extend(i.event.id for i in batch)
        return []

    group = f"g-{uuid.uuid4().hex[:8]}"
    runner = _runner(kafka, publisher, topic, handler, group)
    task = asyncio.create_task(runner.run())
    await eventually(
        lambda: committed(kafka, group, topic), until=lambda o: o == 3, what="the commit"
    )
    await _stop(runner, task)

    assert seen == [str(e.event_id()) for e in good]
    [dead] = await read_all(kafka, dlq(topic))
    headers = dict(dead.headers)
    assert dead.value == b"garbage"
    assert dead.key == b"c-x"
    assert headers["origin"] == b"someone"  # the original headers travel with it
    assert headers["dlq_reason"].startswith(
        b"undecodable: missing CloudEvents header(s): ce_specversion"
    )
    assert headers["dlq_topic"] == topic.encode()
    assert headers["dlq_offset"] == b"1"
    assert headers["dlq_group"] == group.encode()


async def test_message_the_handler_rejects_goes_to_the_dlq_with_the_handlers_reason(
    kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    events = [a_response(score=1), a_response(score=10)]
    await _produce(publisher, topic, events)

    async def handler(batch: list[Inbound]) -> list[Rejection]:
        return [Rejection(i.record, "no promoters here") for i in batch if i.event.data.score == 10]  # type: ignore[attr-defined]

    group = f"g-{uuid.uuid4().hex[:8]}"
    runner = _runner(kafka, publisher, topic, handler, group)
    task = asyncio.create_task(runner.run())
    await eventually(
        lambda: committed(kafka, group, topic), until=lambda o: o == 2, what="the commit"
    )
    await _stop(runner, task)
    [dead] = await read_all(kafka, dlq(topic))
    assert dict(dead.headers)["ce_id"] == str(events[1].event_id()).encode()
    assert dict(dead.headers)["dlq_reason"] == b"no promoters here"


async def test_transient_failure_is_retried_and_nothing_is_dead_lettered(
    kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    events = [a_response() for _ in range(3)]
    await _produce(publisher, topic, events)
    attempts = 0
    seen: list[str] = []

    async def flaky(batch: list[Inbound]) -> list[Rejection]:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise ConnectionError("database restarting")
        seen.extend(i.event.id for i in batch)
        return []

    group = f"g-{uuid.uuid4().hex[:8]}"
    runner = _runner(kafka, publisher, topic, flaky, group, retry_max_wait=0.2)
    task = asyncio.create_task(runner.run())
    await eventually(
        lambda: committed(kafka, group, topic), until=lambda o: o == 3, what="the commit"
    )
    await _stop(runner, task)
    assert sorted(seen) == sorted(str(e.event_id()) for e in events)
    assert await read_all(kafka, dlq(topic)) == []


async def test_persistent_failure_of_one_message_dead_letters_only_that_message(
    kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    events = [a_response(), a_response(), a_response()]
    bad = str(events[1].event_id())
    await _produce(publisher, topic, events)
    seen: list[str] = []

    async def handler(batch: list[Inbound]) -> list[Rejection]:
        if any(i.event.id == bad for i in batch):
            raise TimeoutError("this one always times out")
        seen.extend(i.event.id for i in batch)
        return []

    group = f"g-{uuid.uuid4().hex[:8]}"
    runner = _runner(kafka, publisher, topic, handler, group, retry_attempts=2, retry_max_wait=0.1)
    task = asyncio.create_task(runner.run())
    await eventually(
        lambda: committed(kafka, group, topic), until=lambda o: o == 3, what="the commit"
    )
    await _stop(runner, task)
    assert sorted(seen) == sorted(str(e.event_id()) for e in events if str(e.event_id()) != bad)
    [dead] = await read_all(kafka, dlq(topic))
    assert dict(dead.headers)["ce_id"] == bad.encode()
    assert dict(dead.headers)["dlq_reason"].startswith(b"gave up after 2 attempts: TimeoutError")


async def test_a_service_started_before_the_broker_connects_once_it_is_there(
    tmp_path: Path,
) -> None:
    """No crash loop when the broker is late: not ready (and publishing refused, the caller's
    retry path) until it answers, then the producer and the consumer connect by themselves."""
    port = free_port()
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    publisher = Publisher(kafka, client_id="late")
    seen: list[Inbound] = []

    async def handler(batch: list[Inbound]) -> list[Rejection]:
        seen.extend(batch)
        return []

    runner = _runner(kafka, publisher, "late.topic", handler, group="late-group")
    await publisher.start()
    consuming = asyncio.create_task(runner.run())
    try:
        with pytest.raises(PublishError, match="not been reached"):
            await publisher.check()
        with pytest.raises(PublishError):
            await _produce(publisher, "late.topic", [a_response("late-0")])
        broker = EmbeddedBroker(port=port, log_path=tmp_path / "broker.log")
        broker.start()
        try:
            await ensure_topics(kafka, ["late.topic", dlq("late.topic")], partitions=1)
            await eventually(
                _answers(publisher), until=bool, timeout=60, what="the publisher connected"
            )
            await asyncio.wait_for(runner.ready.wait(), timeout=60)
            await _produce(publisher, "late.topic", [a_response("late-1")])
            await eventually(
                lambda: asyncio.sleep(0, len(seen)), until=bool, what="the event consumed"
            )
        finally:
            runner.stop()
            await consuming
            await publisher.stop()
            broker.stop()
    finally:
        if not consuming.done():
            runner.stop()
            await consuming


def _answers(publisher: Publisher) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        try:
            await publisher.check()
        except (PublishError, KafkaError, TimeoutError):
            return False
        return True

    return probe
