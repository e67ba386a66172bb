"""The consumer runner against the real broker (and PostgreSQL where the fault is the
database's): commits after success, redelivers after a crash, waits out an infrastructure
fault without limit, and dead-letters only what can never succeed, with the reason."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY
from sqlalchemy import make_url, text

from nps_events import ContactOptOut, ResponseReceived, dlq, encode
from nps_kit.db import create_engine
from nps_kit.devstack import free_port
from nps_kit.messaging import (
    ConsumerRunner,
    Inbound,
    Outgoing,
    Publisher,
    PublishError,
    Rejection,
    ensure_topics,
)
from nps_kit.settings import DatabaseSettings, KafkaSettings
from tests.integration.kafka_helpers import NOW, a_response, committed, read_all
from tests.support.infra import Infra, new_broker
from tests.support.polling import eventually
from tests.support.tls_proxy import tcp_proxy

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
    """The process dies in the middle of a batch (the task is cancelled, as SIGKILL would end
    it): nothing was committed, so the next consumer of the group gets the whole batch."""
    events = [a_response() for _ in range(2)]
    await _produce(publisher, topic, events)
    group = f"g-{uuid.uuid4().hex[:8]}"
    reached = asyncio.Event()

    async def dying(batch: list[Inbound]) -> list[Rejection]:
        reached.set()
        await asyncio.Event().wait()  # never returns: the process dies here
        return []

    dead = asyncio.create_task(_runner(kafka, publisher, topic, dying, group).run())
    await asyncio.wait_for(reached.wait(), timeout=60)
    dead.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dead
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


async def test_a_type_the_consumer_ignores_is_skipped_undecoded_and_committed(
    kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    """Records whose `ce_type` the runner was told to ignore never reach the handler, even one
    whose body would not decode (it is not dead-lettered: the consumers acting on that type
    do that); a record of a type the handler acts on that would not decode still goes to the
    DLQ; everything is committed and counted as processed."""
    response = a_response()
    opt_out = ContactOptOut(
        source="acme-web", customer_id="cus_0042", provider_event_id="u-1", occurred_at=NOW
    )
    good = encode(opt_out, source="/test", time=NOW)
    acted_poison = [
        (k, ResponseReceived.ce_type.encode() if k == "ce_type" else v) for k, v in good.headers
    ]
    await publisher.send_many(
        [
            Outgoing(topic, good.key, good.value, good.headers),
            Outgoing(topic, b"c-x", b"not json", good.headers),  # ignored: not even decoded
            Outgoing(topic, b"c-y", b"not json", acted_poison),
        ]
    )
    await _produce(publisher, topic, [response])
    seen: list[str] = []

    async def handler(batch: list[Inbound]) -> list[Rejection]:
        seen.extend(i.event.type for i in batch)
        return []

    group = f"g-{uuid.uuid4().hex[:8]}"
    runner = _runner(kafka, publisher, topic, handler, group, ignores=(ContactOptOut,))
    task = asyncio.create_task(runner.run())
    await eventually(
        lambda: committed(kafka, group, topic), until=lambda o: o == 4, what="the commit"
    )
    await _stop(runner, task)

    assert seen == [ResponseReceived.ce_type]
    [dead] = await read_all(kafka, dlq(topic))
    assert dead.key == b"c-y"
    assert dict(dead.headers)["dlq_reason"].startswith(
        f"undecodable: invalid {ResponseReceived.ce_type} data".encode()
    )
    processed = REGISTRY.get_sample_value(
        "npsloop_events_consumed_total", {"topic": topic, "outcome": "processed"}
    )
    assert processed == 3  # the two ignored and the response


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


async def test_an_infrastructure_fault_is_retried_without_limit_and_nothing_is_dead_lettered(
    kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    """Ten failures in a row (the old runner gave up after five, ~1.5 s, and dead-lettered):
    the partition waits, says why, and the batch goes through once the fault is gone."""
    events = [a_response() for _ in range(3)]
    await _produce(publisher, topic, events)
    attempts = 0
    seen: list[str] = []
    reasons: list[str | None] = []
    runner: ConsumerRunner | None = None

    async def flaky(batch: list[Inbound]) -> list[Rejection]:
        nonlocal attempts
        attempts += 1
        assert runner is not None
        reasons.append(runner.waiting())
        if attempts <= 10:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        seen.extend(i.event.id for i in batch)
        return []

    group = f"g-{uuid.uuid4().hex[:8]}"
    runner = _runner(kafka, publisher, topic, flaky, group, retry_min_wait=0.05, retry_max_wait=0.2)
    task = asyncio.create_task(runner.run())
    await eventually(
        lambda: committed(kafka, group, topic), until=lambda o: o == 3, what="the commit"
    )
    assert runner.waiting() is None  # resumed
    await _stop(runner, task)
    assert sorted(seen) == sorted(str(e.event_id()) for e in events)
    assert await read_all(kafka, dlq(topic)) == []
    assert attempts == 11
    # While it waited, it said which partition and why (what /readyz shows).
    assert reasons[0] is None
    assert reasons[-1] is not None
    assert f"{topic}[0] paused" in reasons[-1]
    assert "(10 tries): infrastructure fault: ConnectionRefusedError(ECONNREFUSED)" in reasons[-1]


async def test_a_database_outage_pauses_the_partition_and_loses_nothing(
    kafka: KafkaSettings, publisher: Publisher, topic: str, infra: Infra
) -> None:
    """The real thing: the handler writes to PostgreSQL through a proxy that is cut for
    longer than the old retry budget (every connection reset, new ones refused). Nothing is
    dead-lettered, nothing crashes, and every event is stored once the database is back."""
    url = make_url(infra.database_url)
    with tcp_proxy(port=free_port(), upstream=url.port or 5432) as proxy:
        engine = create_engine(
            DatabaseSettings(url=url.set(port=proxy.port).render_as_string(hide_password=False)),
            application_name="test-outage",
        )
        table = f"outage_{uuid.uuid4().hex[:8]}"
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE TABLE {table} (id text PRIMARY KEY)"))
        stored: list[str] = []

        async def storing(batch: list[Inbound]) -> list[Rejection]:
            async with engine.begin() as conn:
                for i in batch:
                    await conn.execute(
                        text(f"INSERT INTO {table} VALUES (:id) ON CONFLICT DO NOTHING"),  # noqa: S608
                        {"id": i.event.id},
                    )
            stored.extend(i.event.id for i in batch)
            return []

        group = f"g-{uuid.uuid4().hex[:8]}"
        runner = _runner(kafka, publisher, topic, storing, group, retry_max_wait=1.0)
        task = asyncio.create_task(runner.run())
        before = [a_response() for _ in range(3)]
        await _produce(publisher, topic, before)
        await eventually(
            lambda: committed(kafka, group, topic), until=lambda o: o == 3, what="the first commit"
        )
        proxy.cut()
        during = [a_response() for _ in range(5)]
        await _produce(publisher, topic, during)
        await eventually(
            lambda: asyncio.sleep(0, runner.waiting()), until=bool, what="the partition paused"
        )
        await asyncio.sleep(5)  # well past the old budget of five tries (~1.5 s)
        assert "infrastructure fault" in (runner.waiting() or "")
        assert await committed(kafka, group, topic) == 3
        proxy.restore()
        await eventually(
            lambda: committed(kafka, group, topic), until=lambda o: o == 8, what="the catch-up"
        )
        assert runner.waiting() is None
        await _stop(runner, task)
        async with engine.begin() as conn:
            rows = set((await conn.execute(text(f"SELECT id FROM {table}"))).scalars())  # noqa: S608
            await conn.execute(text(f"DROP TABLE {table}"))
        await engine.dispose()
    assert rows == {str(e.event_id()) for e in before + during}
    assert await read_all(kafka, dlq(topic)) == []


async def test_a_data_fault_dead_letters_only_that_record_with_its_reason(
    kafka: KafkaSettings, publisher: Publisher, topic: str, infra: Infra
) -> None:
    """PostgreSQL refuses one record's value (a NUL byte in text): that record goes to the DLQ
    with the SQLSTATE, at once, and the records around it are stored."""
    engine = create_engine(DatabaseSettings(url=infra.database_url), application_name="test-data")
    table = f"poison_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE {table} (id text PRIMARY KEY, note text)"))
    events = [a_response() for _ in range(5)]
    bad = str(events[2].event_id())
    await _produce(publisher, topic, events)
    calls = 0

    async def storing(batch: list[Inbound]) -> list[Rejection]:
        nonlocal calls
        calls += 1
        async with engine.begin() as conn:
            for i in batch:
                await conn.execute(
                    text(f"INSERT INTO {table} VALUES (:id, :note)"),  # noqa: S608
                    {"id": i.event.id, "note": "bad\x00byte" if i.event.id == bad else "fine"},
                )
        return []

    group = f"g-{uuid.uuid4().hex[:8]}"
    runner = _runner(kafka, publisher, topic, storing, group)
    task = asyncio.create_task(runner.run())
    await eventually(
        lambda: committed(kafka, group, topic), until=lambda o: o == 5, what="the commit"
    )
    await _stop(runner, task)
    async with engine.begin() as conn:
        rows = set((await conn.execute(text(f"SELECT id FROM {table}"))).scalars())  # noqa: S608
        await conn.execute(text(f"DROP TABLE {table}"))
    await engine.dispose()
    assert rows == {str(e.event_id()) for e in events} - {bad}
    [dead] = await read_all(kafka, dlq(topic))
    headers = dict(dead.headers)
    assert headers["ce_id"] == bad.encode()
    assert headers["dlq_reason"].startswith(b"data fault: ")
    assert b"sqlstate=22021" in headers["dlq_reason"]  # character_not_in_repertoire
    assert calls <= 6  # split in halves, not retried: 1 + 2 + 2 + 1 at most for 5 records


async def test_a_bug_on_one_record_dead_letters_it_after_a_few_tries_and_the_rest_flows(
    kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    events = [a_response(), a_response(), a_response()]
    bad = str(events[1].event_id())
    await _produce(publisher, topic, events)
    seen: list[str] = []
    tries_of_bad = 0

    async def handler(batch: list[Inbound]) -> list[Rejection]:
        nonlocal tries_of_bad
        if any(i.event.id == bad for i in batch):
            tries_of_bad += len(batch) == 1
            raise KeyError("a bug of ours")
        seen.extend(i.event.id for i in batch)
        return []

    group = f"g-{uuid.uuid4().hex[:8]}"
    runner = _runner(kafka, publisher, topic, handler, group, retry_min_wait=0.05)
    task = asyncio.create_task(runner.run())
    await eventually(
        lambda: committed(kafka, group, topic), until=lambda o: o == 3, what="the commit"
    )
    await _stop(runner, task)
    assert sorted(seen) == sorted(str(e.event_id()) for e in events if str(e.event_id()) != bad)
    assert tries_of_bad == 3
    [dead] = await read_all(kafka, dlq(topic))
    assert dict(dead.headers)["ce_id"] == bad.encode()
    reason = dict(dead.headers)["dlq_reason"]
    assert reason.startswith(
        b"unexpected fault after 3 attempts: KeyError(at test_consumer_runner.py:"
    )
    assert reason.endswith(b": 'a bug of ours'")  # the error's own text: only in the DLQ


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
        broker = new_broker(tmp_path, port=port)
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


async def test_a_send_the_broker_never_acknowledges_fails_and_a_new_producer_delivers(
    tmp_path: Path,
) -> None:
    """A frozen broker (SIGSTOP: connections open, no answers) never acknowledges: the send
    fails after KAFKA_DELIVERY_TIMEOUT_MS as a broker fault (the caller's retry path) rather
    than hanging, the producer is replaced, and once the broker answers again the new one
    delivers."""
    broker = new_broker(tmp_path)
    broker.start()
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{broker.port}", delivery_timeout_ms=1500)
    topic = "frozen.topic"
    publisher = Publisher(kafka, client_id="frozen")
    replaced = REGISTRY.get_sample_value(
        "npsloop_producers_replaced_total", {"client_id": "npsloop-frozen"}
    )
    try:
        await ensure_topics(kafka, [topic], partitions=1)
        await publisher.start()
        await eventually(_answers(publisher), until=bool, timeout=60, what="the publisher up")
        await _produce(publisher, topic, [a_response("before")])
        broker.pause()
        try:
            with pytest.raises(PublishError, match=r"did not acknowledge within 1\.5s"):
                await asyncio.wait_for(
                    _produce(publisher, topic, [a_response("frozen")]), timeout=30
                )
            with pytest.raises(PublishError, match="not been reached"):
                await _produce(publisher, topic, [a_response("meanwhile")])
        finally:
            broker.resume()
        assert (
            REGISTRY.get_sample_value(
                "npsloop_producers_replaced_total", {"client_id": "npsloop-frozen"}
            )
            == (replaced or 0) + 1
        )

        async def delivered() -> bool:
            try:
                await _produce(publisher, topic, [a_response("after")])
            except PublishError:
                return False
            return True

        await eventually(delivered, until=bool, timeout=60, what="a send by the new producer")
        keys = [record.key for record in await read_all(kafka, topic)]
        assert keys.count(b"before") == 1
        assert b"after" in keys
    finally:
        await publisher.stop()
        broker.stop()
