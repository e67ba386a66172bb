"""The embedded dev stack: a Kafka-protocol broker, PostgreSQL and an SMTP sink from wheels,
for `make run` and the test fixtures; Apache Kafka from Maven Central instead of the broker
when asked (`kafka.py`). Nothing here is used in production."""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Literal

from nps_kit.devstack.broker import EmbeddedBroker
from nps_kit.devstack.kafka import ApacheKafka, ApacheKafkaCluster
from nps_kit.devstack.mailsink import MailSink
from nps_kit.devstack.postgres import EmbeddedPostgres
from nps_kit.devstack.process import free_port, wait_for_port

#: The brokers the dev stack, the tests and the benches can run on.
BrokerKind = Literal["tansu", "apache-kafka"]


def new_broker(
    kind: BrokerKind,
    folder: Path,
    *,
    port: int | None = None,
    advertised: str | None = None,
) -> EmbeddedBroker | ApacheKafka:
    """A broker of `kind`, not started, its log (and Apache Kafka's data) in `folder`.
    Producers talking to Apache Kafka should be idempotent (`KAFKA_ENABLE_IDEMPOTENCE`);
    Tansu has no idempotent producers."""
    port = port or free_port()
    if kind == "apache-kafka":
        return ApacheKafka(
            port=port,
            data_dir=folder / "kafka",
            log_path=folder / "broker.log",
            advertised=advertised,
        )
    return EmbeddedBroker(port=port, log_path=folder / "broker.log", advertised=advertised)


def scratch_dir(prefix: str) -> Path:
    """A new folder for a bench's servers (the database's files, the logs), removed when the
    process exits: a run of `bench/followup.py` leaves ~0.7 GB per 100,000 cases. With
    `NPSLOOP_BENCH_KEEP=1` it stays, and where it is is printed at exit."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if os.environ.get("NPSLOOP_BENCH_KEEP"):
        atexit.register(sys.stderr.write, f"(data kept in {folder})\n")
    else:
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


__all__ = [
    "ApacheKafka",
    "ApacheKafkaCluster",
    "BrokerKind",
    "EmbeddedBroker",
    "EmbeddedPostgres",
    "MailSink",
    "free_port",
    "new_broker",
    "scratch_dir",
    "wait_for_port",
]
