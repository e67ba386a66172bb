"""Settings shared by every service. Built once in `main`, passed down; nothing reads the
environment at import time."""

from typing import Literal, Self

from pydantic import Field, FilePath, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """Where the broker is. `KAFKA_*` in the environment."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    # Idempotent producers need broker support: on for Apache Kafka, off for the embedded
    # Tansu broker, which has none. Correctness never depends on it (consumers dedupe).
    enable_idempotence: bool = False
    client_id_prefix: str = "npsloop"
    # How `ensure_topics` creates a topic that does not exist yet: copies of each partition,
    # and how many must have a write before it is acknowledged (producers use acks=all). 1 and
    # 1 for a single broker (the dev stack); 3 and 2 on a cluster, as deploy/k8s's KafkaTopics
    # declare: an acknowledged event is on two brokers, and one broker can be lost without
    # stopping writes. Topics that exist are left as they are.
    topic_replication_factor: int = Field(default=1, ge=1)
    topic_min_insync_replicas: int = Field(default=1, ge=1)
    # How often clients refresh the cluster's metadata even when nothing failed: a consumer
    # sees partitions added to a topic it reads (and a producer starts writing to them) only
    # then. Kafka's and aiokafka's default is 5 minutes (docs/operations.md, "Scale out").
    metadata_max_age_ms: int = Field(default=300_000, ge=1_000)
    request_timeout_ms: int = Field(default=10_000, ge=1_000)
    # How long a consumer's fetch may wait at the broker for records to arrive. Apache Kafka
    # answers as soon as a record is there, so this only sets how often an idle consumer asks.
    # The embedded Tansu broker holds a fetch for part of this even when records arrive, which
    # lets batches fill: at a steady 100/s the first action came p99 1.4 s after the post at
    # 500, and 6.3 s at 50 (smaller batches, more CPU per response, the stages fall behind);
    # at a steady 20/s, p99 0.83 s at 500 and 0.12 s at 50 (docs/performance.md).
    fetch_max_wait_ms: int = Field(default=500, ge=0, le=10_000)
    # How long a producer may take to have a send acknowledged before it is given up and the
    # producer replaced (a new connection and producer id; the caller retries). Kafka's own
    # `delivery.timeout.ms`, 2 minutes: a leader's failover takes seconds.
    delivery_timeout_ms: int = Field(default=120_000, ge=1_000)
    # How clients reach the brokers: PLAINTEXT for the embedded broker; SSL (TLS) or
    # SASL_SSL (TLS and a user) for a managed or Strimzi cluster.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # The CA bundle that signed the brokers' certificates (default: the system's), and a client
    # certificate and key for mutual TLS (Strimzi's `tls` authentication). Paths, checked at
    # start-up: on Kubernetes, mount the Secret as files.
    ssl_cafile: FilePath | None = None
    ssl_certfile: FilePath | None = None
    ssl_keyfile: FilePath | None = None
    ssl_check_hostname: bool = True
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _settings_are_consistent(self) -> Self:
        """Refuse, at start-up and by name, settings that would only fail at the first
        connection (or, worse, be silently ignored)."""
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol in ("SSL", "SASL_SSL")
        given = [
            name
            for name in ("sasl_mechanism", "sasl_username", "sasl_password")
            if getattr(self, name) is not None
        ]
        if sasl and len(given) < 3:
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs KAFKA_SASL_MECHANISM, "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if not sasl and given:
            raise ValueError(
                f"KAFKA_{given[0].upper()} is set but KAFKA_SECURITY_PROTOCOL is "
                f"{self.security_protocol}: use SASL_SSL (or SASL_PLAINTEXT)"
            )
        files = [
            name
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
            if getattr(self, name) is not None
        ]
        if files and not tls:
            raise ValueError(
                f"KAFKA_{files[0].upper()} is set but KAFKA_SECURITY_PROTOCOL is "
                f"{self.security_protocol}: use SSL or SASL_SSL"
            )
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError(
                f"KAFKA_TOPIC_MIN_INSYNC_REPLICAS={self.topic_min_insync_replicas} is more than "
                f"KAFKA_TOPIC_REPLICATION_FACTOR={self.topic_replication_factor}: no write "
                "could ever be acknowledged"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("mutual TLS needs both KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE")
        return self


class DatabaseSettings(BaseSettings):
    """Where PostgreSQL is. `DATABASE_URL` in the environment (postgresql+asyncpg://…)."""

    model_config = SettingsConfigDict(env_prefix="DATABASE_", extra="ignore")

    url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/npsloop")
    pool_size: int = Field(default=5, ge=1)
    echo: bool = False
    #: How outbox rows store their events' headers (`nps_kit.outbox.stored_headers`):
    #: `compact` writes ~150 bytes (and ~145 bytes of WAL) less per event. A relay of a
    #: release before the compact form cannot read such rows, so turn it on once no replica
    #: of such a release runs, nor will again (docs/operations.md, "Deploy and upgrade").
    outbox_headers: Literal["json", "compact"] = "json"


class LogSettings(BaseSettings):
    """`LOG_LEVEL`, `LOG_FORMAT` (json in containers, console for people)."""

    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = "json"


class HttpServerSettings(BaseSettings):
    """Each service's HTTP server: its operational endpoints and how long it waits on a
    client. `HTTP_*` in the environment.

    `metrics_port`: Prometheus scrapes `GET /metrics` on this port, a listener of its own
    beside the API's port, so that a network policy can open it to the scraper alone; the
    API's port has no `/metrics`. `docs_enabled`: serve `/docs`, `/redoc` and `/openapi.json`
    (off unless asked: in production the API's description is not published to whoever can
    reach the port; the dev stack turns it on).

    `keep_alive_timeout_seconds`: an idle keep-alive connection is closed after this long
    (behind a load balancer that reuses connections, make it longer than the balancer's own
    idle timeout). `header_timeout_seconds`: a request's line and headers must all arrive
    within this long of its first byte (or of the connection opening): a client that sends
    them slowly, or connects and sends nothing, is disconnected. Bodies are not limited by it.
    """

    model_config = SettingsConfigDict(env_prefix="HTTP_", extra="ignore")

    keep_alive_timeout_seconds: int = Field(default=5, ge=1)
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    # 9464 is the port OpenTelemetry's Prometheus exporters use by convention; on Kubernetes
    # every pod has it to itself. Two services on one machine need one each (the dev stack
    # gives each its own).
    metrics_port: int = Field(default=9464, ge=1, le=65535)
    docs_enabled: bool = False
