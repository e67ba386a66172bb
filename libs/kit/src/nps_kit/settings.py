"""Settings shared by every service. Built once in `main`, passed down; nothing reads the
environment at import time."""

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """Where the broker is. `KAFKA_*` in the environment."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    # Idempotent producers need broker support: on for Apache Kafka, off for the embedded
    # Tansu broker, which has none. Correctness never depends on it (consumers dedupe).
    enable_idempotence: bool = False
    client_id_prefix: str = "npsloop"
    request_timeout_ms: int = Field(default=10_000, ge=1_000)


class DatabaseSettings(BaseSettings):
    """Where PostgreSQL is. `DATABASE_URL` in the environment (postgresql+asyncpg://…)."""

    model_config = SettingsConfigDict(env_prefix="DATABASE_", extra="ignore")

    url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/npsloop")
    pool_size: int = Field(default=5, ge=1)
    echo: bool = False


class LogSettings(BaseSettings):
    """`LOG_LEVEL`, `LOG_FORMAT` (json in containers, console for people)."""

    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = "json"
