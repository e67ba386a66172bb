from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nps_kit.auth import AuthSettings
from nps_kit.settings import DatabaseSettings, HttpServerSettings, KafkaSettings, LogSettings


class ScoringSettings(BaseSettings):
    """`SCORING_*` in the environment, plus the shared `KAFKA_*`, `DATABASE_*`, `LOG_*`,
    `HTTP_*` and `AUTH_*`."""

    model_config = SettingsConfigDict(env_prefix="SCORING_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8002, ge=1, le=65535)
    consumer_group: str = "npsloop-scoring"
    consumers: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Consumers of `nps.responses.v1` in this process, all in the consumer "
        "group: each takes its share of the partitions, so that the batches of different "
        "partitions are scored at the same time (a batch waits on the database more than it "
        "computes). Order per customer and one transaction per batch hold as with one. More "
        "than the topic's partitions leaves some idle.",
    )
    themes_file: Path | None = Field(
        default=None,
        description="YAML theme taxonomy; unset: the one shipped with scoring (themes.yaml).",
    )
    figures_timezone: str = Field(
        default="UTC",
        description="IANA time zone whose days, weeks and months the figures count in. "
        "Changing it needs `nps-scoring rebuild-figures`.",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: HttpServerSettings = Field(default_factory=HttpServerSettings)
    #: The identity provider whose bearer tokens the API accepts (`AUTH_*`).
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @field_validator("figures_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown IANA time zone {value!r}") from error
        return value

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.figures_timezone)
