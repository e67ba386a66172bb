"""Kafka publishing: the producer that waits for every in-sync replica (`Publisher`), the client
options both directions share, reaching a broker that is not there yet, and creating topics."""

import asyncio
import contextlib
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from tenacity import AsyncRetrying, RetryCallState, wait_exponential_jitter

from nps_events import Event, encode
from nps_kit.faults import InfrastructureFault
from nps_kit.logging import get_logger
from nps_kit.metrics import (
    EVENTS_PUBLISHED,
    PRODUCERS_REPLACED,
    labelled,
)
from nps_kit.settings import KafkaSettings
from nps_kit.tracing import with_trace_context

log = get_logger(__name__)

Headers = list[tuple[str, bytes]]


class PublishError(InfrastructureFault):
    """The broker did not acknowledge a message."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes
    value: bytes
    headers: Headers


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """What every aiokafka client needs to reach the brokers: their address, TLS (verified
    against `ssl_cafile` or the system's CAs, with a client certificate for mutual TLS) and
    SASL; and how often to refresh the cluster's metadata (partitions added to a topic are
    seen then)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
        "metadata_max_age_ms": settings.metadata_max_age_ms,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
        )
        context.check_hostname = settings.ssl_check_hostname
        if settings.ssl_certfile is not None and settings.ssl_keyfile is not None:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
        options["ssl_context"] = context
    if settings.sasl_mechanism is not None and settings.sasl_password is not None:
        options |= {
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_plain_username": settings.sasl_username,
            "sasl_plain_password": settings.sasl_password.get_secret_value(),
        }
    return options


#: How long to wait between attempts to reach a broker that is not there (yet).
RECONNECT_BACKOFF = wait_exponential_jitter(multiplier=0.5, max=30, jitter=0.5)


async def start_when_reachable(
    start: Callable[[], Awaitable[None]], *, what: str, stopping: asyncio.Event
) -> bool:
    """Call `start` until it succeeds, waiting longer after each failure to reach the broker;
    False if the process began stopping first. A service starts, answers /readyz "not
    ready", and connects once the broker is there, rather than crash-looping."""
    attempt = 0
    while not stopping.is_set():
        try:
            await start()
        except KafkaError as exc:
            attempt += 1
            log.warning("broker.unreachable", what=what, attempt=attempt, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=reconnect_wait(attempt))
        else:
            if attempt:
                log.info("broker.reached", what=what, after_attempts=attempt)
            return True
    return False


def reconnect_wait(attempt: int) -> float:
    """Seconds to wait after the `attempt`-th failure to reach the broker (`RECONNECT_BACKOFF`):
    the publisher's start and the consumer runner's paused partitions back off alike."""
    return float(RECONNECT_BACKOFF(_attempt_state(attempt)))


def _attempt_state(attempt: int) -> "RetryCallState":
    state = RetryCallState(retry_object=AsyncRetrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    return state


class Publisher:
    """An aiokafka producer that waits for acks from all in-sync replicas.

    `start()` returns at once: the producer connects in the background, and until it has,
    `check()` fails (not ready) and `send_many` raises `PublishError` (the caller's
    transient-failure path: 503 for ingest, a later retry for the outbox relay).

    A producer that cannot deliver is replaced, never waited on for ever: aiokafka's
    idempotent producer retries a batch without end, and a fatal error in its sender (say
    `OutOfOrderSequenceNumber` after a leader's loss) leaves it failing every later send. So a
    send not acknowledged within `KAFKA_DELIVERY_TIMEOUT_MS`, or one that finds the
    producer's sender stopped, raises `PublishError`, and a new producer (a new producer id)
    connects in the background. The caller retries as for any broker fault; a record the old
    producer did write comes again, and consumers dedupe on the event id."""

    def __init__(self, settings: KafkaSettings, *, client_id: str) -> None:
        self._settings = settings
        self._client_id = f"{settings.client_id_prefix}-{client_id}"
        self._producer: AIOKafkaProducer | None = None
        self._connecting: asyncio.Task[bool] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._partitions = PartitionCache()

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **client_options(self._settings),
            client_id=self._client_id,
            acks="all",
            enable_idempotence=self._settings.enable_idempotence,
            request_timeout_ms=self._settings.request_timeout_ms,
        )

    async def _start_once(self) -> None:
        producer = self._new_producer()  # a failed start leaves a producer unusable
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def start(self) -> None:
        self._stopping.clear()
        # Most starts find the broker at once: give that a moment, so that a service is
        # ready on its first probe.
        await asyncio.wait({self._connect()}, timeout=2)

    def _connect(self) -> asyncio.Task[bool]:
        self._connecting = asyncio.create_task(
            start_when_reachable(
                self._start_once, what=f"producer {self._client_id}", stopping=self._stopping
            )
        )
        return self._connecting

    async def stop(self) -> None:
        self._stopping.set()
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self._retiring:
            await asyncio.wait(self._retiring)
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    def _replace(self, producer: AIOKafkaProducer, why: str) -> None:
        """Retire `producer` (unless it was replaced already) and connect a new one."""
        if self._producer is not producer or self._stopping.is_set():
            return
        self._producer = None
        log.warning("producer.replaced", client_id=self._client_id, reason=why)
        PRODUCERS_REPLACED.labels(client_id=self._client_id).inc()
        retiring = asyncio.create_task(_retire(producer))
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)
        self._connect()

    async def check(self) -> None:
        """Raise unless the broker answers a metadata request."""
        producer = self._producer
        if producer is None:
            raise PublishError("the broker has not been reached yet")
        if _sender_stopped(producer):
            self._replace(producer, "its sender stopped")
            raise PublishError("the producer's sender stopped; a new producer is connecting")
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=3)

    async def publish(self, event: Event, *, source: str, now: datetime) -> None:
        """Publish one event and return once the broker has acknowledged it."""
        message = encode(event, source=source, time=now)
        await self.send_many(
            [Outgoing(event.topic.value, message.key, message.value, message.headers)]
        )

    async def send_many(self, messages: Sequence[Outgoing]) -> None:
        """Send `messages` in order; return once the broker has acknowledged every one."""
        producer = self._producer
        if producer is None:
            raise PublishError("the broker has not been reached yet")
        timeout = self._settings.delivery_timeout_ms / 1000
        try:
            async with asyncio.timeout(timeout):
                if len(messages) == 1:
                    [m] = messages
                    await (
                        await producer.send(
                            m.topic, m.value, key=m.key, headers=with_trace_context(m.headers)
                        )
                    )
                else:
                    await _send_in_batches(producer, messages, self._partitions)
                for topic, n in Counter(m.topic for m in messages).items():
                    labelled(EVENTS_PUBLISHED, topic).inc(n)
        except TimeoutError as exc:
            self._replace(producer, f"no acknowledgement within {timeout:g}s")
            raise PublishError(f"broker did not acknowledge within {timeout:g}s") from exc
        except KafkaError as exc:
            if _sender_stopped(producer):
                self._replace(producer, f"its sender stopped: {exc!r}")
            raise PublishError(f"broker did not acknowledge: {exc!r}") from exc


class PartitionCache:
    """The partition of each key recently sent, by the topic's set of partitions: what
    aiokafka's default partitioner (Kafka's: murmur2 of the key, modulo the number of
    partitions) chose for that key over that set. The partitioner is a pure function of the
    two, so a key's partition is the same on every topic with the same partitions, and stays
    right until partitions are added (the set differs then, and so does the entry looked up).

    aiokafka's murmur2 is pure Python: 5-9 µs per key of 14-26 bytes, ~7 µs per message with
    `_partition` around it (timeit); a look-up here ~0.2 µs. A journey's events share their
    customer's key (followup's relay sends a case's opening and its actions, notify's its
    results), so most of a relay's messages find their partition here. Bounded: emptied when
    `limit` keys are held (a few hundred KB)."""

    __slots__ = ("_known", "limit")

    def __init__(self, limit: int = 4096) -> None:
        self._known: dict[tuple[frozenset[int], bytes], int] = {}
        self.limit = limit

    def partition(
        self, producer: AIOKafkaProducer, topic: str, partitions: frozenset[int], key: bytes
    ) -> int:
        """The partition `producer.send` would choose for `key` on `topic`, whose partitions
        are `partitions` (from `partitions_for`)."""
        known = self._known.get((partitions, key))
        if known is None:
            # aiokafka's partitioner as `send()` applies it; it has no public form of its own.
            known = producer._partition(topic, None, key, None, key, None)
            if len(self._known) >= self.limit:
                self._known.clear()
            self._known[(partitions, key)] = known
        return known


async def _send_in_batches(
    producer: AIOKafkaProducer, messages: Sequence[Outgoing], partitions: PartitionCache
) -> None:
    """Send `messages` as record batches built here, one partition's messages in their order,
    and wait for every batch's acknowledgement. `producer.send` per message cost ~31 µs of
    CPU per event in scoring's relay, 19 µs this way (a future and the accumulator's
    bookkeeping per message; docs/performance.md, scoring, 2026-12-05): a batch is one
    future per ~16 KB.

    Each message goes to the partition `producer.send` would have chosen (the producer's own
    partitioner on the key, remembered in `partitions`), so a key's messages stay on their
    partition whichever way they were sent; batches of one partition are queued one after
    another, in order."""
    topics = {
        # Waits for the topic's metadata, as send() does.
        topic: frozenset(await producer.partitions_for(topic))
        for topic in {m.topic for m in messages}
    }
    open_batches: dict[tuple[str, int], Any] = {}
    delivered: list[asyncio.Future[Any]] = []
    for m in messages:
        partition = partitions.partition(producer, m.topic, topics[m.topic], m.key)
        headers = with_trace_context(m.headers)
        batch = open_batches.get((m.topic, partition))
        if batch is None:
            batch = open_batches[(m.topic, partition)] = producer.create_batch()
        if batch.append(key=m.key, value=m.value, timestamp=None, headers=headers) is None:
            # Full: queue it, and start the next with this message (an empty batch takes a
            # message of any size, as `send()` does).
            delivered.append(await producer.send_batch(batch, m.topic, partition=partition))
            batch = open_batches[(m.topic, partition)] = producer.create_batch()
            batch.append(key=m.key, value=m.value, timestamp=None, headers=headers)
    for (topic, partition), batch in open_batches.items():
        delivered.append(await producer.send_batch(batch, topic, partition=partition))
    for future in delivered:
        await future


def _sender_stopped(producer: AIOKafkaProducer) -> bool:
    """Whether `producer`'s background sender has ended (after a fatal error: every later
    send fails with it). aiokafka has no public way to ask."""
    sender = getattr(producer, "_sender", None)
    task = getattr(sender, "sender_task", None)
    return isinstance(task, asyncio.Task) and task.done()


async def _retire(producer: AIOKafkaProducer) -> None:
    """Stop a replaced producer without waiting on its undeliverable batches: a clean stop
    flushes them, which is what could not happen."""
    try:
        await asyncio.wait_for(producer.stop(), timeout=5)
    except (TimeoutError, KafkaError) as exc:
        log.info("producer.retired_uncleanly", error=repr(exc))


async def ensure_topics(settings: KafkaSettings, topics: Sequence[str], *, partitions: int) -> None:
    """Create `topics` (each with `partitions`) unless they exist, replicated
    `topic_replication_factor` times with `min.insync.replicas` `topic_min_insync_replicas`
    (`KafkaSettings`). A topic that exists is left as it is, whatever its settings."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                response = await admin.create_topics(
                    [
                        NewTopic(
                            name=t,
                            num_partitions=partitions,
                            replication_factor=settings.topic_replication_factor,
                            topic_configs={
                                "min.insync.replicas": str(settings.topic_min_insync_replicas)
                            },
                        )
                        for t in missing
                    ]
                )
                _raise_for_topic_errors(response.topic_errors)
    finally:
        await admin.close()


class TopicsNotCreatedError(KafkaError):  # type: ignore[misc]
    """The broker refused to create topics (say, a replication factor larger than the number
    of brokers): the reason for each, in the broker's words."""


def _raise_for_topic_errors(topic_errors: Sequence[tuple[Any, ...]]) -> None:
    """aiokafka returns CreateTopics' answer as it is, errors included: a topic the broker
    refused would otherwise look created. One that exists already is no error here (another
    process created it first)."""
    refused = [
        f"{topic}: {for_code(code).__name__}" + (f" ({rest[0]})" if rest and rest[0] else "")
        for topic, code, *rest in topic_errors
        if code not in (0, TopicAlreadyExistsError.errno)
    ]
    if refused:
        raise TopicsNotCreatedError("; ".join(refused))
