"""Dead-letter topics for operators: list what is in them, and re-drive it.

`nps-dlq list [--topic T.dlq]` shows every dead letter still retained (offset, key, event type and
id, reason, when), and whether it has been re-driven already. `nps-dlq redrive --topic T.dlq`
sends each dead letter back to the topic it came from (its `dlq_topic` header) as it was
published: the same key, the same value, the same headers less the `dlq_*` ones, so the
consumer sees the original message again, and its idempotence on the event id makes a record
that was processed after all harmless.

Progress is the consumer group `npsloop-dlq-redrive`'s committed offset on each DLQ partition:
a record before it has been re-driven (or was there before the group's first run and
deliberately left), so running `redrive` twice sends nothing twice. A re-drive reads each
partition to its end before it sends anything from it, so a record that fails again is
dead-lettered after the run has read past the end: it waits for the next run and cannot loop.
With filters (`--since`, `--until`, `--reason-match`) a run commits only up to the first record
it left behind: that one stays to re-drive, and those it sent after it may be sent again by a
later run (harmless, see above).
"""

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from nps_events import Topic, dlq
from nps_kit.logging import configure_logging, get_logger
from nps_kit.publishing import Outgoing, Publisher, client_options
from nps_kit.redact import safe_error
from nps_kit.settings import KafkaSettings, LogSettings

log = get_logger(__name__)

#: The consumer group whose committed offsets record how far each DLQ has been re-driven.
REDRIVE_GROUP = "npsloop-dlq-redrive"
DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a DLQ, with what the dead-lettering consumer recorded about it."""

    topic: str
    partition: int
    offset: int
    key: str
    ce_type: str
    ce_id: str
    reason: str
    origin: str
    group: str
    at: datetime | None
    redriven: bool
    record: ConsumerRecord[bytes, bytes]

    @classmethod
    def of(cls, record: ConsumerRecord[bytes, bytes], *, redriven: bool) -> "DeadLetter":
        headers = {name: raw.decode(errors="replace") for name, raw in record.headers}
        at = headers.get("dlq_at")
        try:
            when = datetime.fromisoformat(at) if at else None
        except ValueError:
            when = None
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=(record.key or b"").decode(errors="replace"),
            ce_type=headers.get("ce_type", "?"),
            ce_id=headers.get("ce_id", "?"),
            reason=headers.get("dlq_reason", ""),
            origin=headers.get("dlq_topic") or record.topic.removesuffix(DLQ_SUFFIX),
            group=headers.get("dlq_group", ""),
            at=when,
            redriven=redriven,
            record=record,
        )

    def original(self) -> Outgoing:
        """The message as it was before it was dead-lettered."""
        headers = [(k, v) for k, v in self.record.headers if not k.startswith("dlq_")]
        return Outgoing(self.origin, self.record.key or b"", self.record.value or b"", headers)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a re-drive sends; all of them by default."""

    since: datetime | None = None
    until: datetime | None = None
    reason_match: re.Pattern[str] | None = None

    def selects(self, letter: DeadLetter) -> bool:
        if self.since is not None and (letter.at is None or letter.at < self.since):
            return False
        if self.until is not None and (letter.at is None or letter.at >= self.until):
            return False
        return self.reason_match is None or bool(self.reason_match.search(letter.reason))


@dataclass(frozen=True, slots=True)
class Redriven:
    sent: list[DeadLetter]
    left: list[DeadLetter]


def all_dlqs() -> list[str]:
    return [dlq(topic.value) for topic in Topic]


def _check_dlq(topic: str) -> None:
    if not topic.endswith(DLQ_SUFFIX):
        raise ValueError(f"{topic!r} is not a dead-letter topic (<topic>{DLQ_SUFFIX})")


async def _partitions(settings: KafkaSettings, topic: str) -> list[TopicPartition]:
    """The topic's partitions, asked of the cluster. Not the consumer's
    `partitions_for_topic`: it knows only the topics its client tracks, which on Apache Kafka
    are those it assigned or subscribed to (Tansu's metadata answers list every topic)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = sorted(
        p["partition"]
        for t in described
        if t["topic"] == topic and t["error_code"] == 0
        for p in t["partitions"]
    )
    if not partitions:
        raise ValueError(f"no topic {topic!r} on the broker")
    return [TopicPartition(topic, p) for p in partitions]


async def _read(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """The records of `tp` from `start`: at least up to `end`, and on until a fetch is empty.

    Not cut at `end`: the embedded Tansu broker reports the end of a topic whose last write was
    a batch of several records as that batch's first offset + 1 (seen in
    tests/integration/test_dlq_redrive.py), so `end` may be short of the last record."""
    consumer.assign([tp])
    consumer.seek(tp, start)
    records: list[ConsumerRecord[bytes, bytes]] = []
    while True:
        fetched = (await consumer.getmany(tp, timeout_ms=1000)).get(tp, [])
        records.extend(fetched)
        if not fetched and await consumer.position(tp) >= end:
            return records


def _consumer(settings: KafkaSettings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **client_options(settings),
        group_id=REDRIVE_GROUP,
        client_id=f"{settings.client_id_prefix}-dlq",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=max(settings.request_timeout_ms, 40_000),
    )


async def list_dead_letters(settings: KafkaSettings, topic: str) -> list[DeadLetter]:
    """Every dead letter `topic` retains, oldest first per partition."""
    _check_dlq(topic)
    consumer = _consumer(settings)
    try:
        await consumer.start()  # inside: a consumer that failed to start is stopped too
        letters: list[DeadLetter] = []
        tps = await _partitions(settings, topic)
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            done = await consumer.committed(tp) or 0
            records = await _read(consumer, tp, begins[tp], ends[tp])
            letters.extend(DeadLetter.of(r, redriven=r.offset < done) for r in records)
        return letters
    finally:
        await consumer.stop()


async def redrive(
    settings: KafkaSettings,
    topic: str,
    *,
    selection: Selection | None = None,
    dry_run: bool = False,
) -> Redriven:
    """Send the dead letters of `topic` not re-driven yet back to their topics; commit progress."""
    _check_dlq(topic)
    selection = selection or Selection()
    consumer = _consumer(settings)
    publisher = Publisher(settings, client_id="dlq-redrive")
    sent: list[DeadLetter] = []
    left: list[DeadLetter] = []
    try:
        await consumer.start()
        await publisher.start()
        tps = await _partitions(settings, topic)
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            start = max(await consumer.committed(tp) or 0, begins[tp])
            records = await _read(consumer, tp, start, ends[tp])
            letters = [DeadLetter.of(r, redriven=False) for r in records]
            chosen = [letter for letter in letters if selection.selects(letter)]
            first_left = next((x.offset for x in letters if not selection.selects(x)), None)
            left += [letter for letter in letters if not selection.selects(letter)]
            if dry_run or not letters:
                sent += chosen
                continue
            # Send first, then commit: a crash in between re-sends, never loses.
            await publisher.send_many([letter.original() for letter in chosen])
            sent += chosen
            done = first_left if first_left is not None else letters[-1].offset + 1
            if done > start:
                await consumer.commit({tp: done})
            for letter in chosen:
                log.info(
                    "dlq.redriven",
                    dlq=letter.topic,
                    partition=letter.partition,
                    offset=letter.offset,
                    to=letter.origin,
                    event_id=letter.ce_id,
                )
    finally:
        await publisher.stop()
        await consumer.stop()
    return Redriven(sent=sent, left=left)


# --- the command line ------------------------------------------------------------------------


def _row(letter: DeadLetter) -> str:
    at = letter.at.isoformat(timespec="seconds") if letter.at else "?"
    state = "redriven" if letter.redriven else "pending"
    reason = letter.reason.replace("\n", " ")[:200]
    return (
        f"{letter.topic}\t{letter.partition}\t{letter.offset}\t{letter.key}\t{letter.ce_type}\t"
        f"{letter.ce_id}\t{at}\t{state}\t{reason}\n"
    )


HEADER = "dlq\tpartition\toffset\tkey\ttype\tid\tdead_lettered_at\tstate\treason\n"


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone offset (e.g. …Z or +00:00)")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="nps-dlq",
        description="List npsloop's dead-letter topics and re-drive them to their topics. "
        "Reads KAFKA_BOOTSTRAP_SERVERS like the services.",
    )
    sub = root.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="show the dead letters the DLQs retain")
    listing.add_argument("--topic", action="append", help="a DLQ (default: all of npsloop's)")
    again = sub.add_parser("redrive", help="send dead letters back to their topic")
    again.add_argument("--topic", required=True, help="the DLQ, e.g. nps.scored.v1.dlq")
    again.add_argument("--since", type=_aware, help="dead-lettered at or after (RFC 3339)")
    again.add_argument("--until", type=_aware, help="dead-lettered before (RFC 3339)")
    again.add_argument("--reason-match", type=re.compile, help="a regular expression on the reason")
    again.add_argument("--dry-run", action="store_true", help="show what would be sent; send none")
    return root


async def run(argv: Sequence[str], settings: KafkaSettings) -> int:
    args = parser().parse_args(argv)
    out = sys.stdout
    try:
        if args.command == "list":
            letters = [
                letter
                for topic in args.topic or all_dlqs()
                for letter in await list_dead_letters(settings, topic)
            ]
            out.write(HEADER + "".join(_row(letter) for letter in letters))
            return 0
        selection = Selection(since=args.since, until=args.until, reason_match=args.reason_match)
        result = await redrive(settings, args.topic, selection=selection, dry_run=args.dry_run)
    except ValueError as error:
        sys.stderr.write(f"nps-dlq: {error}\n")
        return 2
    except (KafkaError, OSError) as error:
        sys.stderr.write(
            f"nps-dlq: cannot reach the broker at {settings.bootstrap_servers} "
            f"({safe_error(error)}); check KAFKA_BOOTSTRAP_SERVERS\n"
        )
        return 1
    out.write(HEADER)
    for letter in result.sent:
        out.write(_row(letter))
    verb = "would send" if args.dry_run else "sent"
    out.write(f"{verb} {len(result.sent)}, left {len(result.left)} (not selected)\n")
    return 0


def main() -> None:
    configure_logging(LogSettings(), service="dlq")
    # The client's own retries are noise here: an unreachable broker is one line (see `run`).
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    raise SystemExit(asyncio.run(run(sys.argv[1:], KafkaSettings())))


if __name__ == "__main__":
    main()
