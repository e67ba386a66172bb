from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from nps_kit.settings import KafkaSettings, LogSettings


class IngestSettings(BaseSettings):
    """`INGEST_*` in the environment, plus the shared `KAFKA_*` and `LOG_*`."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=1, le=65535)
    #: Bearer tokens of the canonical API, by source name: {"shop": "s3cr3t"} (JSON).
    api_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    #: How long a request may wait for the broker's acknowledgement before answering 503.
    publish_timeout_seconds: float = Field(default=5.0, gt=0)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log: LogSettings = Field(default_factory=LogSettings)
