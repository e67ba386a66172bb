from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from nps_kit.settings import DatabaseSettings, KafkaSettings, LogSettings


class FollowupSettings(BaseSettings):
    """`FOLLOWUP_*` in the environment, plus the shared `KAFKA_*`, `DATABASE_*` and `LOG_*`."""

    model_config = SettingsConfigDict(env_prefix="FOLLOWUP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8003, ge=1, le=65535)
    consumer_group: str = "npsloop-followup"
    #: A person must contact a detractor within this many days of the case opening.
    detractor_contact_days: int = Field(default=2, ge=1, le=30)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    log: LogSettings = Field(default_factory=LogSettings)
