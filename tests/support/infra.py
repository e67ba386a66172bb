"""Real infrastructure for the tests: a Kafka-protocol broker, PostgreSQL and an SMTP sink.

By default they are the embedded dev stack's (no Docker needed). With a Docker engine and
`NPSLOOP_TEST_INFRA=containers`, Apache Kafka and PostgreSQL run in testcontainers instead.
"""

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nps_events.topics import ALL_TOPICS
from nps_kit.devstack import EmbeddedBroker, EmbeddedPostgres, MailSink, free_port
from nps_kit.messaging import ensure_topics
from nps_kit.migrations import upgrade
from nps_kit.settings import KafkaSettings

MIGRATED = ("nps_scoring", "nps_followup", "nps_notify")


@dataclass(frozen=True)
class Infra:
    bootstrap_servers: str
    database_url: str
    smtp_port: int
    mail: MailSink
    #: The servers themselves, where the tests run them (the chaos suite kills and pauses
    #: them); None with testcontainers.
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None

    def env(self) -> dict[str, str]:
        """The environment a service process needs to use this infrastructure."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "DATABASE_URL": self.database_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
        }


@contextlib.contextmanager
def _embedded(tmp: Path) -> Iterator[tuple[str, str, EmbeddedPostgres, EmbeddedBroker]]:
    broker = EmbeddedBroker(port=free_port(), log_path=tmp / "broker.log")
    postgres = EmbeddedPostgres(data_dir=tmp / "postgres", port=free_port(), durable=False)
    broker.start()
    try:
        postgres.start()
        try:
            yield broker.bootstrap_servers, postgres.url, postgres, broker
        finally:
            postgres.stop()
    finally:
        broker.stop()


@contextlib.contextmanager
def _containers() -> Iterator[tuple[str, str, None, None]]:
    from testcontainers.kafka import KafkaContainer  # noqa: PLC0415 - only with Docker
    from testcontainers.postgres import PostgresContainer  # noqa: PLC0415

    with (
        KafkaContainer("apache/kafka:3.9.0").with_kraft() as kafka,
        PostgresContainer("postgres:17", driver="asyncpg") as postgres,
    ):
        yield kafka.get_bootstrap_server(), postgres.get_connection_url(), None, None


@contextlib.contextmanager
def running_infra(tmp: Path) -> Iterator[Infra]:
    mode = os.environ.get("NPSLOOP_TEST_INFRA", "embedded")
    servers = _containers() if mode == "containers" else _embedded(tmp)
    with servers as (bootstrap, database_url, postgres, broker):
        asyncio.run(
            ensure_topics(KafkaSettings(bootstrap_servers=bootstrap), ALL_TOPICS, partitions=3)
        )
        for package in MIGRATED:
            upgrade(package, database_url)
        mail = MailSink(directory=tmp / "mail", port=free_port())
        mail.start()
        try:
            yield Infra(bootstrap, database_url, mail.port, mail, postgres, broker)
        finally:
            mail.stop()
