"""Re-driving a DLQ against the real broker: a record that fails once is dead-lettered, listed
with its reason, sent back to its topic as it was, processed, and never sent twice."""

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions

from nps_events import ResponseReceived, dlq, encode
from nps_kit import dlq as dlq_tool
from nps_kit.devstack import free_port
from nps_kit.messaging import (
    ConsumerRunner,
    Inbound,
    Outgoing,
    Publisher,
    Rejection,
    client_options,
    ensure_topics,
)
from nps_kit.settings import KafkaSettings
from tests.integration.kafka_helpers import NOW, a_response, key_on, read_all
from tests.support.infra import Infra
from tests.support.polling import eventually


@pytest.fixture
def kafka(infra: Infra) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=infra.bootstrap_servers)


@pytest.fixture
async def topic(kafka: KafkaSettings) -> str:
    name = f"test.redrive.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [name, dlq(name)], partitions=1)
    return name


@pytest.fixture
async def publisher(kafka: KafkaSettings) -> AsyncIterator[Publisher]:
    publisher = Publisher(kafka, client_id="test")
    await publisher.start()
    yield publisher
    await publisher.stop()


class FailsOnce:
    """A handler that rejects `poison` the first time it sees it (a bug since fixed), and
    records every event it processes."""

    def __init__(self, poison: str) -> None:
        self.poison = poison
        self.rejected = 0
        self.processed: list[str] = []

    async def __call__(self, batch: list[Inbound]) -> list[Rejection]:
        rejections = []
        for inbound in batch:
            if inbound.event.id == self.poison and not self.rejected:
                self.rejected += 1
                rejections.append(Rejection(inbound.record, "customer has no segment: bug #42"))
            else:
                self.processed.append(inbound.event.id)
        return rejections


async def _produce(publisher: Publisher, topic: str, events: list[ResponseReceived]) -> None:
    messages = []
    for event in events:
        m = encode(event, source="/test", time=NOW)
        messages.append(Outgoing(topic, m.key, m.value, m.headers))
    await publisher.send_many(messages)


async def test_a_dead_letter_is_listed_redriven_once_and_processed(
    kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    good, poison = a_response("c-good"), a_response("c-poison")
    poison_id = str(poison.event_id())
    handler = FailsOnce(poison_id)
    runner = ConsumerRunner(
        settings=kafka,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=[topic],
        handler=handler,
        publisher=publisher,
    )
    task = asyncio.create_task(runner.run())
    try:
        await _produce(publisher, topic, [good, poison])
        await eventually(
            lambda: read_all(kafka, dlq(topic)), until=lambda r: len(r) == 1, what="the DLQ"
        )

        # Listed, with what an operator needs to decide.
        [letter] = await dlq_tool.list_dead_letters(kafka, dlq(topic))
        assert (letter.key, letter.ce_id, letter.ce_type) == (
            "c-poison",
            poison_id,
            "io.npsloop.response.received.v1",
        )
        assert letter.reason == "customer has no segment: bug #42"
        assert (letter.origin, letter.redriven, letter.at is not None) == (topic, False, True)

        # A dry run sends nothing and records no progress.
        dry = await dlq_tool.redrive(kafka, dlq(topic), dry_run=True)
        assert [x.ce_id for x in dry.sent] == [poison_id]
        [still] = await dlq_tool.list_dead_letters(kafka, dlq(topic))
        assert not still.redriven

        # The re-drive puts the original message back; the (fixed) consumer processes it.
        done = await dlq_tool.redrive(kafka, dlq(topic))
        assert [x.ce_id for x in done.sent] == [poison_id]
        await eventually(
            lambda: asyncio.sleep(0, handler.processed),
            until=lambda seen: poison_id in seen,
            what="the re-driven event to be processed",
        )
        assert handler.processed == [str(good.event_id()), poison_id]
        original, resent = [r for r in await read_all(kafka, topic) if r.key == b"c-poison"]
        assert (resent.value, resent.headers) == (original.value, original.headers)

        # Progress is kept: a second re-drive sends nothing, and the list says so.
        again = await dlq_tool.redrive(kafka, dlq(topic))
        assert again.sent == []
        [after] = await dlq_tool.list_dead_letters(kafka, dlq(topic))
        assert after.redriven
    finally:
        runner.stop()
        await asyncio.wait_for(task, timeout=30)


async def test_a_selective_redrive_leaves_the_rest_for_later(
    kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    reasons = ["timeout talking to smtp", "unexpected event type x", "timeout talking to smtp"]
    letters = []
    for i, reason in enumerate(reasons):
        m = encode(a_response(f"c-{i}"), source="/test", time=NOW)
        headers = [*m.headers, ("dlq_reason", reason.encode()), ("dlq_topic", topic.encode())]
        letters.append(Outgoing(dlq(topic), m.key, m.value, headers))
    await publisher.send_many(letters)

    only_timeouts = dlq_tool.Selection(reason_match=dlq_tool.re.compile("^timeout"))
    first = await dlq_tool.redrive(kafka, dlq(topic), selection=only_timeouts)
    assert [x.key for x in first.sent] == ["c-0", "c-2"]
    assert [x.key for x in first.left] == ["c-1"]
    sent = await read_all(kafka, topic)
    assert [r.key for r in sent] == [b"c-0", b"c-2"]
    assert not any(k.startswith("dlq_") for r in sent for k, _ in r.headers)

    # c-1 was left behind, so progress stops before it: a later run without filters sends it
    # (and c-2 again, which the idempotent consumer ignores).
    second = await dlq_tool.redrive(kafka, dlq(topic))
    assert [x.key for x in second.sent] == ["c-1", "c-2"]
    assert (await dlq_tool.redrive(kafka, dlq(topic))).sent == []


def _letter(topic: str, key: str, reason: str) -> Outgoing:
    m = encode(a_response(key), source="/test", time=NOW)
    headers = [*m.headers, ("dlq_reason", reason.encode()), ("dlq_topic", topic.encode())]
    return Outgoing(dlq(topic), m.key, m.value, headers)


@pytest.mark.skipif(
    os.environ.get("NPSLOOP_TEST_INFRA") != "apache-kafka",
    reason="Tansu cannot add partitions to a topic (CreatePartitions)",
)
async def test_a_dlq_grown_with_partitions_is_listed_and_redriven_from_every_partition(
    kafka: KafkaSettings, publisher: Publisher, topic: str
) -> None:
    """The runbook's "Scale out" adds partitions to the DLQs too: letters written before and
    after, on the old partition and the new ones, are all listed and all re-driven, once."""
    await publisher.send_many([_letter(topic, "c-before", "bug #7")])
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        await admin.create_partitions({dlq(topic): NewPartitions(total_count=3)})

        async def partitions() -> int:
            [described] = await admin.describe_topics([dlq(topic)])
            return len(described["partitions"])

        # The broker's metadata follows the controller's a moment later.
        await eventually(partitions, until=lambda n: n == 3, what="the DLQ's new partitions")
    finally:
        await admin.close()
    keys = {"c-before": 0} | {key_on(p, 3, f"c-after-{p}"): p for p in (1, 2)}
    # A producer started now sees the three partitions (the session's, at its next refresh).
    grown = Publisher(kafka, client_id="test-grown")
    await grown.start()
    try:
        await grown.send_many([_letter(topic, k, "bug #7") for k in keys if k != "c-before"])
    finally:
        await grown.stop()
    on = {r.key.decode(): r.partition for r in await read_all(kafka, dlq(topic), partitions=3)}
    assert on == keys

    listed = await dlq_tool.list_dead_letters(kafka, dlq(topic))
    assert {(x.key, x.partition) for x in listed} == set(keys.items())
    done = await dlq_tool.redrive(kafka, dlq(topic))
    assert sorted(x.key for x in done.sent) == sorted(keys)
    assert sorted(r.key.decode() for r in await read_all(kafka, topic)) == sorted(keys)
    assert (await dlq_tool.redrive(kafka, dlq(topic))).sent == []
    assert all(x.redriven for x in await dlq_tool.list_dead_letters(kafka, dlq(topic)))


async def test_the_command_refuses_a_topic_that_is_not_a_dlq(
    kafka: KafkaSettings, topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await dlq_tool.run(["redrive", "--topic", topic], kafka) == 2
    assert "not a dead-letter topic" in capsys.readouterr().err
    assert await dlq_tool.run(["list", "--topic", dlq(topic)], kafka) == 0
    assert capsys.readouterr().out.startswith("dlq\tpartition\toffset\tkey\t")


def test_nps_dlq_without_a_broker_says_so_in_one_line() -> None:
    """No traceback and no "Unclosed AIOKafkaConsumer": one line naming the broker, exit 1."""
    nowhere = f"127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "nps_kit.dlq", "list"],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": nowhere},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"nps-dlq: cannot reach the broker at {nowhere}")
