"""The kit's outbox (`nps_kit.outbox`) on PostgreSQL and the real broker: events queued in a
transaction reach the topic in the order they were queued, batch after batch, and leave the
table once published."""

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, use_span
from sqlalchemy import func, select

from nps_events import Event, decode, dlq, encode
from nps_kit import outbox
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.messaging import Outgoing, Publisher, ensure_topics
from nps_kit.outbox import OutboxRelay
from nps_kit.settings import KafkaSettings
from nps_scoring.adapters import tables as scoring_tables
from tests.integration.kafka_helpers import NOW, a_response, read_all
from tests.support.infra import Infra
from tests.support.polling import eventually

TABLE = scoring_tables.outbox


@pytest.fixture(scope="module")
def kafka(infra: Infra) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=infra.bootstrap_servers)


@pytest.fixture(scope="module")
async def topic(kafka: KafkaSettings) -> str:
    name = f"test.outbox.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [name, dlq(name)], partitions=1)
    return name


@pytest.fixture(scope="module")
async def publisher(kafka: KafkaSettings) -> AsyncIterator[Publisher]:
    publisher = Publisher(kafka, client_id="test-outbox")
    await publisher.start()
    yield publisher
    await publisher.stop()


async def test_the_relay_publishes_queued_events_in_the_order_they_were_queued(
    sessions: SessionFactory, kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    customers = [f"c-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    # Two transactions, each a batch larger than the relay's, customers interleaved.
    first = [a_response(customers[i % 3], score=i % 11) for i in range(300)]
    second = [a_response(customers[i % 2], score=i % 11) for i in range(200)]
    for batch in (first, second):
        async with unit_of_work(sessions) as session:
            await outbox.add(session, TABLE, list(batch), source="/test", now=NOW)

    async def to_topic(messages: Sequence[Outgoing]) -> None:
        # The rows name the responses' topic; this test reads its own, one partition.
        await publisher.send_many([dataclasses.replace(m, topic=topic) for m in messages])

    relay = OutboxRelay(sessions=sessions, table=TABLE, send_many=to_topic, batch_size=128)
    published = []
    while n := await relay.publish_pending():
        published.append(n)
    assert published == [128, 128, 128, 116]

    records = await read_all(kafka, topic)
    sent = [decode(r.headers, r.value) for r in records]
    assert [(r.key, e.id) for r, e in zip(records, sent, strict=True)] == [
        (e.customer.id.encode(), str(e.event_id())) for e in [*first, *second]
    ]
    assert [e.data for e in sent] == [*first, *second]
    async with unit_of_work(sessions) as session:
        assert await session.scalar(select(func.count()).select_from(TABLE)) == 0


async def test_events_queued_in_a_transaction_that_fails_are_not_queued(
    sessions: SessionFactory,
) -> None:
    """The outbox insert is the transaction's first statement here: it is taken back with
    the rest of the work all the same."""

    async def queue_then_fail() -> None:
        async with unit_of_work(sessions) as session:
            await outbox.add(session, TABLE, [a_response()], source="/test", now=NOW)
            raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError, match="the work failed"):
        await queue_then_fail()
    async with unit_of_work(sessions) as session:
        assert await session.scalar(select(func.count()).select_from(TABLE)) == 0


async def test_the_relay_loop_publishes_every_batch_a_commit_woke_it_for(
    sessions: SessionFactory, publisher: Publisher, topic: str
) -> None:
    """A relay that would otherwise look only once an hour, and twenty transactions, each
    committed (and waking the relay) while the relay publishes the one before: every event
    is published, in order. A wake-up that arrives while the relay is busy is not lost."""
    sent: list[str] = []
    queued: list[str] = []

    async def queue_one() -> None:
        batch: list[Event] = [a_response(), a_response()]
        async with unit_of_work(sessions) as session:
            await outbox.add(session, TABLE, batch, source="/test", now=NOW)
        queued.extend(str(e.event_id()) for e in batch)
        relay.wake()

    async def to_topic(messages: Sequence[Outgoing]) -> None:
        await publisher.send_many([dataclasses.replace(m, topic=topic) for m in messages])
        sent.extend(decode(m.headers, m.value).id for m in messages)
        if len(queued) < 40:
            await queue_one()  # the next one commits while this one is being published

    relay = OutboxRelay(sessions=sessions, table=TABLE, send_many=to_topic, idle_interval=3600)
    running = asyncio.create_task(relay.run())
    await queue_one()
    await eventually(
        lambda: asyncio.sleep(0, len(sent)),
        until=lambda n: n >= 40,
        timeout=10,
        what="all sent",
    )
    relay.stop()
    await running
    assert sent == queued


async def test_while_one_replicas_relay_publishes_another_publishes_nothing(
    sessions: SessionFactory, publisher: Publisher, topic: str
) -> None:
    """Two relays on one table, as with two replicas: while the first is publishing (its
    broker call held open here), the second finds the lock taken and publishes nothing; the
    rows go out once, in order, and leave the table."""
    batch: list[Event] = [a_response() for _ in range(3)]
    async with unit_of_work(sessions) as session:
        await outbox.add(session, TABLE, batch, source="/test", now=NOW)
    sending, release = asyncio.Event(), asyncio.Event()
    sent: list[str] = []

    async def held_open(messages: Sequence[Outgoing]) -> None:
        sending.set()
        await release.wait()
        await publisher.send_many([dataclasses.replace(m, topic=topic) for m in messages])
        sent.extend(decode(m.headers, m.value).id for m in messages)

    async def never(messages: Sequence[Outgoing]) -> None:
        raise AssertionError("the second relay published")

    first = OutboxRelay(sessions=sessions, table=TABLE, send_many=held_open)
    second = OutboxRelay(sessions=sessions, table=TABLE, send_many=never)
    publishing = asyncio.create_task(first.publish_pending())
    await asyncio.wait_for(sending.wait(), timeout=10)
    assert await second.publish_pending() == 0
    release.set()
    assert await publishing == 3
    assert await second.publish_pending() == 0
    assert sent == [str(e.event_id()) for e in batch]
    async with unit_of_work(sessions) as session:
        assert await session.scalar(select(func.count()).select_from(TABLE)) == 0


async def test_rows_whose_publishing_failed_stay_queued_and_go_out_next_time(
    sessions: SessionFactory, publisher: Publisher, topic: str
) -> None:
    """The broker refuses the batch: the relay's transaction is rolled back, its connection
    goes back to the pool outside any transaction, and the next look publishes the same rows
    in the same order."""
    batch: list[Event] = [a_response() for _ in range(4)]
    async with unit_of_work(sessions) as session:
        await outbox.add(session, TABLE, batch, source="/test", now=NOW)
    sent: list[str] = []

    async def refused(messages: Sequence[Outgoing]) -> None:
        raise ConnectionError("the broker is away")

    async def to_topic(messages: Sequence[Outgoing]) -> None:
        await publisher.send_many([dataclasses.replace(m, topic=topic) for m in messages])
        sent.extend(decode(m.headers, m.value).id for m in messages)

    with pytest.raises(ConnectionError):
        await OutboxRelay(sessions=sessions, table=TABLE, send_many=refused).publish_pending()
    async with unit_of_work(sessions) as session:
        assert await session.scalar(select(func.count()).select_from(TABLE)) == len(batch)
    assert await OutboxRelay(sessions=sessions, table=TABLE, send_many=to_topic).publish_pending()
    assert sent == [str(e.event_id()) for e in batch]


@pytest.fixture(params=["json", "compact"])
def headers_form(request: pytest.FixtureRequest) -> Iterator[str]:
    """The outbox table's headers form (`DATABASE_OUTBOX_HEADERS`) for one test, then JSON."""
    outbox.use_headers(TABLE, request.param)
    yield request.param
    outbox.use_headers(TABLE, "json")


async def test_the_relay_sends_every_header_as_encode_wrote_it_compact_rows_and_json_rows(
    sessions: SessionFactory, kafka: KafkaSettings, publisher: Publisher, headers_form: str
) -> None:
    """`add` stores the CloudEvents headers as JSON, or compact when the table is told to
    (`outbox.stored_headers`), but what reaches the broker is byte for byte what `encode`
    wrote, in its order, with the trace context after it; a compact row, and a JSON row (as
    a release before the compact form writes them), go out the same whichever form `add`
    uses. A header lost or reordered on the way fails this."""
    name = f"test.outbox.headers.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [name], partitions=1)
    queued, in_span, traced, legacy = a_response(), a_response(), a_response(), a_response()
    trace = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
    expected = [
        list(encode(e, source="/test", time=NOW).headers) + extra
        for e, extra in ((queued, []), (in_span, trace), (traced, trace), (legacy, trace))
    ]
    span = NonRecordingSpan(
        SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False, TraceFlags(1))
    )
    async with unit_of_work(sessions) as session:
        await outbox.add(session, TABLE, [queued], source="/test", now=NOW)
        with use_span(span):  # written in a span: its context goes with the event
            await outbox.add(session, TABLE, [in_span], source="/test", now=NOW)
        for event, stored in (
            (traced, outbox.stored_headers(expected[2])),
            (legacy, json.dumps([[n, v.decode()] for n, v in expected[3]])),
        ):
            message = encode(event, source="/test", time=NOW)
            await session.execute(
                TABLE.insert().values(
                    topic=event.topic.value, key=message.key, value=message.value, headers=stored
                )
            )

    async with unit_of_work(sessions) as session:
        written = list(await session.scalars(select(TABLE.c.headers).order_by(TABLE.c.id)))
    assert [h.startswith("\x1e") for h in written] == [headers_form == "compact"] * 2 + [
        True,
        False,
    ]

    async def to_topic(messages: Sequence[Outgoing]) -> None:
        await publisher.send_many([dataclasses.replace(m, topic=name) for m in messages])

    relay = OutboxRelay(sessions=sessions, table=TABLE, send_many=to_topic)
    while await relay.publish_pending():
        pass
    records = await read_all(kafka, name)
    assert [list(r.headers) for r in records] == expected
    assert [r.value for r in records] == [
        encode(e, source="/test", time=NOW).value for e in (queued, in_span, traced, legacy)
    ]
