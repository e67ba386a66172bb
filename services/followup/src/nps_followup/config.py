from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from nps_kit.auth import AuthSettings
from nps_kit.settings import DatabaseSettings, HttpServerSettings, KafkaSettings, LogSettings


class FollowupSettings(BaseSettings):
    """`FOLLOWUP_*` in the environment, plus the shared `KAFKA_*`, `DATABASE_*`, `LOG_*`,
    `HTTP_*` and `AUTH_*`."""

    model_config = SettingsConfigDict(env_prefix="FOLLOWUP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8003, ge=1, le=65535)
    consumer_group: str = "npsloop-followup"
    #: The follow-up policy (YAML; a ConfigMap on Kubernetes). Unset: the shipped default.
    #: Validated at start-up: an invalid file stops the service with the lines at fault.
    policy_file: Path | None = None
    #: Scoring's theme taxonomy (the file SCORING_THEMES_FILE names): the policy's
    #: `content_by_theme` must use its theme ids. Unset: the taxonomy shipped with scoring.
    themes_file: Path | None = None
    #: What referral codes are made with (an HMAC of the customer id; docs/referrals.md).
    #: Required when the policy has a `referral` program; changing it changes every code not
    #: yet sent, and codes already sent keep working (followup stores each code it sends).
    referral_secret: SecretStr | None = None
    #: How often the sweeper looks for due timers when it found none last time.
    sweep_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    #: How many due timers one sweep fires in one transaction.
    sweep_batch_size: int = Field(default=500, ge=1, le=10_000)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: HttpServerSettings = Field(default_factory=HttpServerSettings)
    #: The identity provider whose bearer tokens the API accepts (`AUTH_*`).
    auth: AuthSettings = Field(default_factory=AuthSettings)
