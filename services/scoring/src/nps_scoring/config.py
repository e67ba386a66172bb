from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from nps_kit.settings import DatabaseSettings, KafkaSettings, LogSettings


class ScoringSettings(BaseSettings):
    """`SCORING_*` in the environment, plus the shared `KAFKA_*`, `DATABASE_*` and `LOG_*`."""

    model_config = SettingsConfigDict(env_prefix="SCORING_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8002, ge=1, le=65535)
    consumer_group: str = "npsloop-scoring"
    themes_file: Path | None = Field(
        default=None,
        description="YAML theme taxonomy; unset: the one shipped with scoring (themes.yaml).",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    log: LogSettings = Field(default_factory=LogSettings)
