"""Kafka plumbing: a publisher, topic creation, and an at-least-once consumer runner with a DLQ.

The runner commits a partition's offsets only after its handler's work is durable. A message
that cannot be decoded, or that the handler rejects, goes to `<topic>.dlq` with the reason. An
infrastructure fault (database or broker unavailable) pauses the partition and retries without
limit; a data fault or a bug splits the batch so that only the record at fault is
dead-lettered (`ConsumerRunner`, `nps_kit.faults`).
"""

import asyncio
import contextlib
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.structs import ConsumerRecord
from sqlalchemy.exc import DBAPIError
from tenacity import AsyncRetrying, RetryCallState, wait_exponential_jitter

from nps_events import CloudEvent, EnvelopeError, Event, decode, dlq, encode
from nps_kit.faults import Fault, InfrastructureFault, classify
from nps_kit.logging import get_logger
from nps_kit.metrics import (
    CONSUMER_FAULTS,
    CONSUMER_LAG,
    CONSUMER_PAUSED,
    CONSUMER_READY,
    DEAD_LETTERED,
    EVENTS_CONSUMED,
    EVENTS_PUBLISHED,
    HANDLER_SECONDS,
    PRODUCERS_REPLACED,
    labelled,
)
from nps_kit.redact import safe_error, safe_traceback
from nps_kit.settings import KafkaSettings
from nps_kit.tracing import consuming, with_trace_context

log = get_logger(__name__)

Headers = list[tuple[str, bytes]]
E = TypeVar("E", bound=Event)


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
                await asyncio.wait_for(
                    stopping.wait(), timeout=RECONNECT_BACKOFF(_attempt_state(attempt))
                )
        else:
            if attempt:
                log.info("broker.reached", what=what, after_attempts=attempt)
            return True
    return False


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
                futures = [
                    await producer.send(
                        m.topic, m.value, key=m.key, headers=with_trace_context(m.headers)
                    )
                    for m in messages
                ]
                for message, future in zip(messages, futures, strict=True):
                    await future
                    labelled(EVENTS_PUBLISHED, message.topic).inc()
        except TimeoutError as exc:
            self._replace(producer, f"no acknowledgement within {timeout:g}s")
            raise PublishError(f"broker did not acknowledge within {timeout:g}s") from exc
        except KafkaError as exc:
            if _sender_stopped(producer):
                self._replace(producer, f"its sender stopped: {exc!r}")
            raise PublishError(f"broker did not acknowledge: {exc!r}") from exc


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


@dataclass(frozen=True, slots=True)
class Inbound:
    """A consumed record and the event decoded from it."""

    record: ConsumerRecord[bytes, bytes]
    event: CloudEvent


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that cannot be processed, and why. It goes to the DLQ.

    `reason` is logged, so it names what is wrong, never the record's data; `detail` (the
    error's own message, which may quote the data) goes only into the dead letter, beside the
    original bytes."""

    record: ConsumerRecord[bytes, bytes]
    reason: str
    detail: str = ""


BatchHandler = Callable[[list[Inbound]], Awaitable[list[Rejection]]]


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: "ConsumerRunner") -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Wait for the batch in flight to finish and commit before giving partitions away.
        async with self._runner.processing:
            self._runner.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info(
            "consumer.assigned", partitions=sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
        )


@dataclass
class Pause:
    """A partition whose batch met an infrastructure fault: not fetched until `resume_at`,
    then the same records are tried again (from `offset`, the first one not committed)."""

    offset: int
    reason: str
    since: float
    resume_at: float
    attempts: int = 1
    #: Fetching again, the outcome of the next try not known yet.
    resumed: bool = False


class ConsumerRunner:
    """Runs `handler` over batches from `topics`, at least once, committing after success.

    What happens to a batch whose handler raises depends on the fault (`nps_kit.faults`):

    - infrastructure (database or broker away, a lost connection, a timeout): the partition is
      paused and the same batch tried again after a capped exponential backoff, for as long
      as it takes; nothing is dead-lettered, the other partitions keep flowing, and `/readyz`
      says which partition waits and why;
    - data (a record that can never succeed): the batch is split in halves until the record
      at fault is alone, and it goes to `<topic>.dlq` with the reason; the rest is processed;
    - unexpected (a bug): the same splitting, then the record alone is tried
      `unexpected_attempts` times in all, then dead-lettered with the exception's class, and
      logged as an error. Never a crash loop that blocks the partition.
    """

    def __init__(
        self,
        *,
        settings: KafkaSettings,
        group_id: str,
        topics: Sequence[str],
        handler: BatchHandler,
        publisher: Publisher,
        max_records: int = 500,
        unexpected_attempts: int = 3,
        retry_min_wait: float = 0.5,
        retry_max_wait: float = 10.0,
    ) -> None:
        self._settings = settings
        self._group_id = group_id
        self._topics = list(topics)
        self._handler = handler
        self._publisher = publisher
        self._max_records = max_records
        self._unexpected_attempts = unexpected_attempts
        self._retry_min_wait = retry_min_wait
        self._retry_max_wait = retry_max_wait
        self.processing = asyncio.Lock()
        self.ready = asyncio.Event()
        #: Partitions waiting for the infrastructure to come back.
        self.paused: dict[TopicPartition, Pause] = {}
        self._consumer = AIOKafkaConsumer(
            **client_options(settings),
            group_id=group_id,
            client_id=f"{settings.client_id_prefix}-{group_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=max(settings.request_timeout_ms, 40_000),
        )
        self._stopping = False
        self._stopped = asyncio.Event()

    @property
    def group_id(self) -> str:
        return self._group_id

    async def run(self) -> None:
        """Consume until `stop()`."""
        self._consumer.subscribe(self._topics, listener=_CommitOnRevoke(self))
        started = await start_when_reachable(
            self._consumer.start, what=f"consumer {self._group_id}", stopping=self._stopped
        )
        if not started:
            return
        try:
            while not self._stopping:
                self._resume_due()
                try:
                    batches = await self._consumer.getmany(
                        timeout_ms=self._poll_timeout_ms(), max_records=self._max_records
                    )
                except KafkaError as exc:
                    if not exc.retriable:
                        raise  # the consumer itself is broken: the orchestrator restarts us
                    log.warning("consumer.poll_failed", group=self._group_id, error=repr(exc))
                    await asyncio.sleep(self._retry_min_wait)
                    continue
                if not self.ready.is_set():
                    self.ready.set()
                    CONSUMER_READY.labels(group=self._group_id).set(1)
                    log.info("consumer.ready", group=self._group_id, topics=self._topics)
                async with self.processing:
                    for tp, records in batches.items():
                        if records:  # a paused partition returns none until resumed
                            await self._process(tp, records)
                await self._record_lag()
        finally:
            CONSUMER_READY.labels(group=self._group_id).set(0)
            await self._consumer.stop()

    def waiting(self) -> str | None:
        """Why this consumer is held back, if it is: the partitions paused on an
        infrastructure fault, since when, and the last error."""
        if not self.paused:
            return None
        now = time.monotonic()
        return "; ".join(
            f"{tp.topic}[{tp.partition}] paused {now - pause.since:.0f}s "
            f"({pause.attempts} tries): {pause.reason}"
            for tp, pause in sorted(self.paused.items())
        )

    def forget(self, revoked: set[TopicPartition]) -> None:
        """Partitions given away in a rebalance: whoever gets them starts from the committed
        offset, so their pauses end here, and so does this member's report of their lag."""
        for tp in revoked:
            if self.paused.pop(tp, None) is not None:
                CONSUMER_PAUSED.labels(self._group_id, tp.topic, str(tp.partition)).set(0)
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self._group_id, tp.topic, str(tp.partition))

    def _poll_timeout_ms(self) -> int:
        waiting = [p.resume_at for p in self.paused.values() if not p.resumed]
        if not waiting:
            return 500
        return int(min(500.0, max(0.0, min(waiting) - time.monotonic()) * 1000))

    def _pause(self, tp: TopicPartition, offset: int, exc: BaseException) -> None:
        if tp not in self._consumer.assignment():
            return  # revoked meanwhile: its new owner starts from the committed offset
        now = time.monotonic()
        previous = self.paused.get(tp)
        attempts = previous.attempts + 1 if previous else 1
        wait = RECONNECT_BACKOFF(_attempt_state(attempts))
        wait = min(self._retry_max_wait, max(self._retry_min_wait, wait))
        fault = classify(exc)
        reason = f"{fault.value} fault: {safe_error(exc)}"
        self.paused[tp] = Pause(
            offset=offset,
            reason=reason,
            since=previous.since if previous else now,
            resume_at=now + wait,
            attempts=attempts,
        )
        self._consumer.pause(tp)
        self._consumer.seek(tp, offset)
        CONSUMER_PAUSED.labels(self._group_id, tp.topic, str(tp.partition)).set(1)
        CONSUMER_FAULTS.labels(self._group_id, fault.value).inc()
        log.warning(
            "consumer.paused",
            group=self._group_id,
            topic=tp.topic,
            partition=tp.partition,
            offset=offset,
            attempt=attempts,
            retry_in=round(wait, 2),
            error=reason,
        )

    def _resume_due(self) -> None:
        now = time.monotonic()
        assigned = self._consumer.assignment()
        due = [tp for tp, p in self.paused.items() if not p.resumed and p.resume_at <= now]
        # aiokafka refuses to resume a partition this member no longer holds: its new owner
        # starts from the committed offset.
        self.forget({tp for tp in due if tp not in assigned})
        due = [tp for tp in due if tp in assigned]
        for tp in due:
            self.paused[tp].resumed = True
        if due:
            self._consumer.resume(*due)

    def _recovered(self, tp: TopicPartition) -> None:
        pause = self.paused.pop(tp, None)
        if pause is not None:
            CONSUMER_PAUSED.labels(self._group_id, tp.topic, str(tp.partition)).set(0)
            log.info(
                "consumer.resumed",
                group=self._group_id,
                topic=tp.topic,
                partition=tp.partition,
                paused_seconds=round(time.monotonic() - pause.since, 1),
                attempts=pause.attempts,
            )

    async def _record_lag(self) -> None:
        """Each assigned partition's lag, from the high watermark the last fetch reported and
        the consumer's position (both known locally: no request to the broker).

        Never fatal: a rebalance can take a partition away while this waits (`position` waits
        for a newly assigned partition's committed offset, which a broker's failover delays),
        and aiokafka then raises `IllegalStateError`; that partition's lag is its new owner's
        to report. Before this was caught, a leader's loss on a cluster could end the runner,
        and with it the process."""
        for tp in self._consumer.assignment():
            if tp not in self._consumer.assignment():
                continue  # given away while an earlier partition's position was awaited
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await asyncio.wait_for(self._consumer.position(tp), timeout=1)
            except (KafkaError, TimeoutError):
                continue  # reassigned meanwhile, or its position not known yet
            CONSUMER_LAG.labels(self._group_id, tp.topic, str(tp.partition)).set(
                max(0, highwater - position)
            )

    def stop(self) -> None:
        """Finish the batch in flight, commit it, and return from `run()`."""
        self._stopping = True
        self._stopped.set()

    async def _process(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        started = time.perf_counter()
        inbound: list[Inbound] = []
        rejections: list[Rejection] = []
        for record in records:
            try:
                inbound.append(Inbound(record, decode(record.headers, record.value)))
            except EnvelopeError as exc:
                rejections.append(Rejection(record, f"undecodable: {exc}"))
        try:
            with consuming(tp.topic, self._group_id, [r.headers for r in records]):
                if inbound:
                    rejections.extend(await self._handle(inbound))
                for rejection in rejections:
                    await self._dead_letter(rejection)
            await self._consumer.commit({tp: records[-1].offset + 1})
        except Exception as exc:  # whatever it is, the partition waits
            # An infrastructure fault (or a fault of this plumbing itself, say the DLQ
            # refusing a message): nothing was committed, so the same records come again
            # once the partition resumes; handlers are idempotent on the event id.
            self._pause(tp, records[0].offset, exc)
            return
        self._recovered(tp)
        EVENTS_CONSUMED.labels(topic=tp.topic, outcome="processed").inc(
            len(records) - len(rejections)
        )
        HANDLER_SECONDS.labels(topic=tp.topic).observe(time.perf_counter() - started)

    async def _handle(self, inbound: list[Inbound]) -> list[Rejection]:
        """The handler over `inbound`; an infrastructure fault propagates (the partition
        pauses); any other fault splits the batch until the record at fault is alone."""
        try:
            return await self._handler(inbound)
        except Exception as exc:
            fault = classify(exc)
            if fault is Fault.INFRASTRUCTURE:
                raise
            if len(inbound) > 1:
                log.warning(
                    "consumer.batch_failed_splitting",
                    size=len(inbound),
                    fault=fault.value,
                    error=safe_error(exc),
                )
                half = len(inbound) // 2
                return [*await self._handle(inbound[:half]), *await self._handle(inbound[half:])]
            if fault is Fault.DATA:
                return [_rejection(inbound[0].record, exc, fault)]
            return await self._try_unexpected(inbound[0], exc)

    async def _try_unexpected(self, one: Inbound, exc: Exception) -> list[Rejection]:
        """One record whose handler failed in a way nobody foresaw: a few more tries (a race
        may pass), then the DLQ, loudly."""
        last = exc
        for attempt in range(2, self._unexpected_attempts + 1):
            await asyncio.sleep(self._retry_min_wait * 2 ** (attempt - 2))
            try:
                return await self._handler([one])
            except Exception as again:
                fault = classify(again)
                if fault is Fault.INFRASTRUCTURE:
                    raise
                if fault is Fault.DATA:
                    return [_rejection(one.record, again, fault)]
                last = again
        log.error(
            "consumer.unexpected_error",
            group=self._group_id,
            topic=one.record.topic,
            partition=one.record.partition,
            offset=one.record.offset,
            attempts=self._unexpected_attempts,
            error=safe_error(last),
            traceback=safe_traceback(last),
        )
        return [_rejection(one.record, last, Fault.UNEXPECTED, attempts=self._unexpected_attempts)]

    async def _dead_letter(self, rejection: Rejection) -> None:
        record = rejection.record
        reason = f"{rejection.reason}: {rejection.detail}" if rejection.detail else rejection.reason
        headers: Headers = [
            *[(k, v) for k, v in record.headers if not k.startswith("dlq_")],
            ("dlq_reason", reason[:4000].encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_group", self._group_id.encode()),
            ("dlq_at", datetime.now(UTC).isoformat().encode()),
        ]
        await self._publisher.send_many(
            [Outgoing(dlq(record.topic), record.key or b"", record.value or b"", headers)]
        )
        DEAD_LETTERED.labels(topic=record.topic).inc()
        EVENTS_CONSUMED.labels(topic=record.topic, outcome="dead_lettered").inc()
        log.warning(
            "consumer.dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=rejection.reason,
        )


def _rejection(
    record: ConsumerRecord[bytes, bytes], exc: BaseException, fault: Fault, *, attempts: int = 1
) -> Rejection:
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    # The driver's own message, without SQLAlchemy's copy of the statement around it.
    said = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return Rejection(
        record, f"{fault.value} fault{tried}: {safe_error(exc)}", detail=str(said)[:2000]
    )


def accept(
    batch: list[Inbound], model: type[E], *, ignore: tuple[type[Event], ...] = ()
) -> tuple[list[E], list[Rejection]]:
    """The events of type `model` in `batch`. Types in `ignore` share the topic but are not
    this consumer's business: they are skipped. Any other type is rejected to the DLQ."""
    events: list[E] = []
    rejections: list[Rejection] = []
    for inbound in batch:
        if isinstance(inbound.event.data, model):
            events.append(inbound.event.data)
        elif not isinstance(inbound.event.data, ignore):
            rejections.append(
                Rejection(
                    inbound.record,
                    f"unexpected event type {inbound.event.type!r} on {inbound.record.topic}",
                )
            )
    return events, rejections
