from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nps_kit.auth import AuthSettings
from nps_kit.settings import DatabaseSettings, HttpServerSettings, LogSettings

_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class ConsoleSettings(BaseSettings):
    """`CONSOLE_*` in the environment, plus the shared `DATABASE_*`, `LOG_*`, `HTTP_*` and
    `AUTH_*` (the identity provider people sign in with: `AUTH_ISSUER`)."""

    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where people's browsers reach the console (the sign-in redirect and the "
        "Origin every form must come from). Session cookies are Secure unless it is "
        "http://127.0.0.1 or http://localhost.",
    )
    followup_url: str = Field(
        default="http://127.0.0.1:8003", description="Followup's API (cases, figures, policy)."
    )
    scoring_url: str = Field(default="http://127.0.0.1:8002", description="Scoring's API (NPS).")
    client_id: str = Field(
        default="npsloop-console",
        description="The console's client id at the identity provider (a confidential "
        "client: authorization code with PKCE).",
    )
    client_secret: SecretStr = SecretStr("npsloop-console-secret")
    scopes: str = Field(
        default="openid email profile",
        description="The scopes it asks for; `offline_access` is added when the provider's "
        "discovery document lists it (its refresh tokens keep a person signed in).",
    )
    session_hours: float = Field(
        default=12, gt=0, description="A session ends this long after sign-in at the latest."
    )
    session_idle_minutes: float = Field(
        default=60,
        gt=0,
        description="A session ends when no page was asked for this long.",
    )
    refresh_before_seconds: float = Field(
        default=60,
        ge=0,
        description="The access token is refreshed when it has less than this left.",
    )
    session_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Fernet keys (comma-separated; the first encrypts, every one decrypts) "
        "that encrypt the tokens kept in the sessions table. Required.",
    )
    page_size: int = Field(default=25, ge=5, le=200)
    api_timeout_seconds: float = Field(default=10.0, gt=0)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: HttpServerSettings = Field(default_factory=HttpServerSettings)
    #: The identity provider (`AUTH_*`): its issuer for sign-in, and how its access tokens'
    #: roles read (the same settings as the APIs').
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @field_validator("public_url", "followup_url", "scoring_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("session_keys")
    @classmethod
    def _fernet_keys(cls, value: SecretStr) -> SecretStr:
        for number, key in enumerate(_split(value.get_secret_value()), start=1):
            try:
                Fernet(key)
            except ValueError:
                raise ValueError(
                    f"key {number} of CONSOLE_SESSION_KEYS is not a Fernet key (32 url-safe "
                    "base64-encoded bytes)"
                ) from None
        return value

    @property
    def session_key_list(self) -> list[str]:
        """The Fernet keys, newest (the one that encrypts) first."""
        return _split(self.session_keys.get_secret_value())

    @property
    def secure_cookies(self) -> bool:
        """Secure cookies, unless the console is served over plain HTTP on this machine."""
        parts = urlsplit(self.public_url)
        return not (parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"


def _split(keys: str) -> list[str]:
    return [key.strip() for key in keys.split(",") if key.strip()]
