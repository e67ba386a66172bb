"""Real infrastructure for the tests: a Kafka-protocol broker, PostgreSQL, an SMTP sink and
the dev stack's OpenID Connect provider (real signatures, served over HTTP).

By default they are the embedded dev stack's (no Docker needed). `NPSLOOP_TEST_INFRA`:
- `apache-kafka`: the broker is Apache Kafka, one KRaft node run by the dev stack's
  launcher (Java and Maven; `make kafka` fetches it), with idempotent producers on; the rest
  is the embedded stack's;
- `containers` (with a Docker engine): Apache Kafka and PostgreSQL in testcontainers.

`running_cluster` adds a three-node Apache Kafka cluster beside the session's infrastructure,
for the failover tests and bench (Java and Maven).
"""

import asyncio
import contextlib
import dataclasses
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from nps_events.topics import ALL_TOPICS
from nps_kit.auth import AuthSettings
from nps_kit.devstack import (
    ApacheKafka,
    ApacheKafkaCluster,
    BrokerKind,
    EmbeddedBroker,
    EmbeddedPostgres,
    MailSink,
    free_port,
)
from nps_kit.devstack import new_broker as devstack_broker
from nps_kit.devstack.idp import ServedIdentityProvider
from nps_kit.messaging import ensure_topics
from nps_kit.migrations import upgrade
from nps_kit.settings import KafkaSettings

MIGRATED = ("nps_scoring", "nps_followup", "nps_notify", "nps_console")


@dataclass(frozen=True)
class Infra:
    bootstrap_servers: str
    database_url: str
    smtp_port: int
    mail: MailSink
    #: The servers themselves, where the tests run them (the chaos suite kills and pauses
    #: them); None with testcontainers.
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | ApacheKafka | ApacheKafkaCluster | None = None
    #: Producer idempotence (`KAFKA_ENABLE_IDEMPOTENCE`): Apache Kafka has it, Tansu not.
    idempotence: bool = False
    #: The identity provider whose tokens the services accept.
    idp: ServedIdentityProvider | None = None
    #: The console's key for the tokens it keeps (`CONSOLE_SESSION_KEYS`), new each session.
    session_key: str = dataclasses.field(default_factory=lambda: Fernet.generate_key().decode())

    @property
    def issuer(self) -> str:
        assert self.idp is not None
        return self.idp.issuer

    def auth(self) -> AuthSettings:
        return AuthSettings(issuer=self.issuer)

    def token(self, email: str, role: str | None = None) -> str:
        """A person's access token, really signed by the provider (a dev user's own role
        unless `role` is given)."""
        assert self.idp is not None
        return self.idp.provider.person_token(email, role=role)

    def bearer(self, email: str, role: str | None = None) -> dict[str, str]:
        """The `Authorization` header of a person's request."""
        return {"Authorization": f"Bearer {self.token(email, role)}"}

    def env(self) -> dict[str, str]:
        """The environment a service process needs to use this infrastructure."""
        kafka = (
            self.broker.env()
            if isinstance(self.broker, ApacheKafkaCluster)
            else {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}
        )
        return {
            "AUTH_ISSUER": self.issuer,
            **kafka,
            "KAFKA_ENABLE_IDEMPOTENCE": "true" if self.idempotence else "false",
            "DATABASE_URL": self.database_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "CONSOLE_SESSION_KEYS": self.session_key,
        }


def _mode() -> str:
    mode = os.environ.get("NPSLOOP_TEST_INFRA", "embedded")
    if mode not in ("embedded", "apache-kafka", "containers"):
        raise ValueError(
            f"NPSLOOP_TEST_INFRA={mode!r}: use embedded (default), apache-kafka or containers"
        )
    return mode


def new_broker(
    tmp: Path, *, port: int | None = None, advertised: str | None = None
) -> EmbeddedBroker | ApacheKafka:
    """A broker of the session's kind, not started, for a test that needs one of its own
    (started late, behind a proxy, with other settings): Apache Kafka with
    `NPSLOOP_TEST_INFRA=apache-kafka`, else Tansu."""
    kind: BrokerKind = "apache-kafka" if _mode() == "apache-kafka" else "tansu"
    return devstack_broker(kind, tmp, port=port, advertised=advertised)


@contextlib.contextmanager
def _embedded(
    tmp: Path,
) -> Iterator[tuple[str, str, EmbeddedPostgres, EmbeddedBroker | ApacheKafka]]:
    broker = new_broker(tmp)
    # Not under pytest's own temporary folder: another pytest session on the machine makes
    # that private to root again (0700) when it starts, and the unprivileged server user
    # could then not restart in it (the chaos suite restarts it).
    data = Path(tempfile.mkdtemp(prefix="npsloop-test-postgres-"))
    postgres = EmbeddedPostgres(data_dir=data / "postgres", port=free_port(), durable=False)
    broker.start()
    try:
        postgres.start()
        try:
            yield broker.bootstrap_servers, postgres.url, postgres, broker
        finally:
            postgres.stop()
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)


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
def _idempotence(on: bool) -> Iterator[None]:
    """Producer idempotence for every `KafkaSettings` the session builds (they read
    `KAFKA_ENABLE_IDEMPOTENCE`) and every service process it starts (`Infra.env`): on with
    `apache-kafka`, off on Tansu, which has no idempotent producer (and as it was with
    `containers`)."""
    before = os.environ.get("KAFKA_ENABLE_IDEMPOTENCE")
    os.environ["KAFKA_ENABLE_IDEMPOTENCE"] = "true" if on else "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ["KAFKA_ENABLE_IDEMPOTENCE"]
        else:
            os.environ["KAFKA_ENABLE_IDEMPOTENCE"] = before


@contextlib.contextmanager
def running_infra(tmp: Path) -> Iterator[Infra]:
    mode = _mode()
    servers = _containers() if mode == "containers" else _embedded(tmp)
    idempotence = mode == "apache-kafka"
    with _idempotence(idempotence), servers as (bootstrap, database_url, postgres, broker):
        asyncio.run(
            ensure_topics(KafkaSettings(bootstrap_servers=bootstrap), ALL_TOPICS, partitions=3)
        )
        for package in MIGRATED:
            upgrade(package, database_url)
        mail = MailSink(directory=tmp / "mail", port=free_port())
        mail.start()
        idp = ServedIdentityProvider(key_file=tmp / "idp" / "signing-key.pem", port=free_port())
        idp.start()
        try:
            yield Infra(
                bootstrap, database_url, mail.port, mail, postgres, broker, idempotence, idp
            )
        finally:
            idp.stop()
            mail.stop()


async def new_database(server_url: str, prefix: str) -> str:
    """A new, empty database on the server of `server_url` (named `<prefix>_<random>`): its
    URL, password included."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def running_cluster(infra: Infra, base_dir: Path) -> Iterator[Infra]:
    """`infra` with a three-node Apache Kafka cluster for its broker (every topic created with
    three replicas and `min.insync.replicas=2`) and a database of its own on the same
    PostgreSQL (services on the cluster must not share outbox tables with services on the
    session's broker); the SMTP sink is shared (the chaos suite counts by customer)."""
    cluster = ApacheKafkaCluster(base_dir=base_dir)
    cluster.start()
    try:
        asyncio.run(ensure_topics(cluster.settings(), ALL_TOPICS, partitions=3))
        database_url = asyncio.run(new_database(infra.database_url, "cluster"))
        for package in MIGRATED:
            upgrade(package, database_url)
        yield dataclasses.replace(
            infra,
            bootstrap_servers=cluster.bootstrap_servers,
            database_url=database_url,
            broker=cluster,
            idempotence=True,
        )
    finally:
        cluster.stop()
