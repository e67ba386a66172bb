"""Kafka plumbing: an at-least-once consumer runner with a DLQ; the publisher and topic creation
are `nps_kit.publishing`'s, importable from here too.

The runner commits a partition's offsets only after its handler's work is durable. A message
that cannot be decoded, or that the handler rejects, goes to `<topic>.dlq` with the reason. An
infrastructure fault (database or broker unavailable) pauses the partition and retries without
limit; a data fault or a bug splits the batch so that only the record at fault is
dead-lettered (`ConsumerRunner`, `nps_kit.faults`).
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from sqlalchemy.exc import DBAPIError

from nps_events import CloudEvent, EnvelopeError, Event, decode, dlq
from nps_kit.faults import Fault, classify
from nps_kit.logging import get_logger
from nps_kit.metrics import (
    CONSUMER_FAULTS,
    CONSUMER_LAG,
    CONSUMER_PAUSED,
    CONSUMER_READY,
    DEAD_LETTERED,
    EVENTS_CONSUMED,
    HANDLER_SECONDS,
)
from nps_kit.publishing import (
    Headers,
    Outgoing,
    Publisher,
    PublishError,
    TopicsNotCreatedError,
    client_options,
    ensure_topics,
    reconnect_wait,
    start_when_reachable,
)
from nps_kit.redact import safe_error, safe_traceback
from nps_kit.settings import KafkaSettings
from nps_kit.tracing import consuming

log = get_logger(__name__)

# What the services and tests import from here, wherever it lives.
__all__ = [
    "BatchHandler",
    "ConsumerRunner",
    "Headers",
    "Inbound",
    "Outgoing",
    "Pause",
    "PublishError",
    "Publisher",
    "Rejection",
    "TopicsNotCreatedError",
    "accept",
    "client_options",
    "ensure_topics",
    "start_when_reachable",
]

E = TypeVar("E", bound=Event)


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

    `ignores` are the event types on `topics` that this consumer does not act on (followup
    reads `nps.responses.v1` for the opt-outs, not the responses). A record whose `ce_type`
    header names one is skipped before it is decoded: it never reaches the handler, claims
    nothing in the inbox, counts as processed, and its offset is committed with the rest.
    Decoding (pydantic over the whole event) was the cost: ~10 µs per `ResponseReceived` that
    followup then ignored (docs/performance.md, the pipeline, sixth session). Skipped
    undecoded, such a record is not checked either: one that would not decode goes to the DLQ
    from the consumers that act on its type, not from every group that reads the topic.
    """

    def __init__(
        self,
        *,
        settings: KafkaSettings,
        group_id: str,
        topics: Sequence[str],
        handler: BatchHandler,
        publisher: Publisher,
        ignores: Collection[type[Event]] = (),
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
        self._ignored = frozenset(model.ce_type.encode() for model in ignores)
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
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
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
        wait = reconnect_wait(attempts)
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
        ignored = self._ignored
        for record in records:
            if ignored and _ce_type(record.headers) in ignored:
                continue
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


def _ce_type(headers: Sequence[tuple[str, bytes]]) -> bytes | None:
    """The raw `ce_type` header of a record, as `decode` would read it (names in any case,
    the last one if repeated), or None."""
    found = None
    for name, raw in headers:
        if name.lower() == "ce_type":
            found = raw
    return found


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
