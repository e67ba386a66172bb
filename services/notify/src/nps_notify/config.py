from email import policy
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nps_events.text import Line, Text, line_error
from nps_kit.settings import DatabaseSettings, HttpServerSettings, KafkaSettings, LogSettings
from nps_notify.domain.messages import LOCALE, Identity
from nps_notify.domain.webhook_secrets import standard_webhooks_key


def _mailbox(value: str, *, display_name: bool) -> str:
    """Exactly one mailbox, parsed as a `From` header is (RFC 5322, by the stdlib's parser
    that builds the headers): `Name <address>` when `display_name`, else a bare address. Not
    email-validator, which checks customers' and staff addresses: an operator's own sender may
    well use a reserved domain (`.localhost` in the dev stack, `.invalid` as a placeholder)."""
    problem = line_error(value)
    if problem is not None:
        raise ValueError(problem)
    header = policy.default.header_factory("From", value)
    if header.defects or len(header.groups) != 1 or header.groups[0].display_name is not None:
        raise ValueError(f"must be one address, e.g. 'npsloop <noreply@example.com>': {value!r}")
    [address] = header.addresses
    if not address.username or not address.domain:
        raise ValueError(f"must be one address, e.g. 'npsloop <noreply@example.com>': {value!r}")
    if address.display_name and not display_name:
        raise ValueError(f"must be a bare address, without a name: {value!r}")
    return value


def _formats(value: str, field: str) -> str:
    try:
        value.format(**{field: "x"})
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"may hold no placeholder but {{{field}}}: {exc!r}") from None
    return value


Sender = Annotated[str, AfterValidator(lambda v: _mailbox(v, display_name=True))]
BareAddress = Annotated[str, AfterValidator(lambda v: _mailbox(v, display_name=False))]


class SmtpSettings(BaseSettings):
    """`SMTP_*` in the environment."""

    model_config = SettingsConfigDict(env_prefix="SMTP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=1025, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    #: "none" for a local sink, "starttls" (port 587) or "tls" (port 465) for a real relay.
    security: str = Field(default="none", pattern="^(none|starttls|tls)$")
    #: For connecting, and for the server's answers to one email (MAIL, RCPT, DATA) in all.
    timeout_seconds: float = Field(default=10.0, gt=0)
    #: The most connections notify keeps open to the relay at once (per process): a slice's
    #: emails (`NOTIFY_SEND_CONCURRENCY`) share them. Relays limit connections per client
    #: (Postfix: 50 by default), and each replica of notify opens its own.
    max_connections: int = Field(default=8, ge=1, le=100)
    #: Send `MAIL FROM`, `RCPT TO` and `DATA` in one write when the relay's EHLO offers
    #: PIPELINING (RFC 2920): two round trips per email instead of four. `false` keeps the
    #: one-command-at-a-time exchange, for a relay whose PIPELINING misbehaves.
    pipelining: bool = True
    #: The name notify gives itself in `EHLO` (RFC 5321 4.1.1.1: its fully qualified domain
    #: name, or an address literal such as `[192.0.2.10]`). By default the host's own, which
    #: in a container is often a bare pod name that relays with strict HELO checks refuse
    #: (Postfix's `reject_non_fqdn_helo_hostname`); and looking it up costs a DNS query at each
    #: new connection.
    local_hostname: str | None = Field(
        default=None,
        pattern=r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[(?:IPv6:)?[0-9A-Fa-f.:]+\])$",
    )
    #: One mailbox, with or without a name: checked at start-up, never taken from input. The
    #: default sender; a team's own comes from `NOTIFY_SENDERS`.
    from_address: Sender = "npsloop <noreply@npsloop.localhost>"
    #: Where a customer's reply goes (`Reply-To`), e.g. `Customer success <cs@example.com>`:
    #: set it when `from_address` is a no-reply address, since the messages invite replies.
    reply_to: Sender | None = None
    #: The domain of every `Message-ID`; by default the domain of the message's sender.
    message_id_domain: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$"
    )
    #: `List-Unsubscribe` on every customer message (RFC 2369): a mailbox your team or your
    #: ESP watches, and, with `unsubscribe_url`, an RFC 8058 one-click URL (`{customer_id}`
    #: is filled in) — e.g. your product's own opt-out, which posts to ingest's
    #: `/v1/opt-outs`.
    unsubscribe_mailto: BareAddress = "unsubscribe@npsloop.localhost"
    unsubscribe_url: str | None = Field(
        default=None, pattern=r"^https://[^\x00-\x20<>\"]*\{customer_id\}[^\x00-\x20<>\"]*$"
    )

    @field_validator("unsubscribe_url")
    @classmethod
    def _one_placeholder(cls, value: str | None) -> str | None:
        return value if value is None else _formats(value, "customer_id")


class TwilioSettings(BaseSettings):
    """`TWILIO_*`: SMS through Twilio. Without an account SID, notify has no SMS channel."""

    model_config = SettingsConfigDict(env_prefix="TWILIO_", extra="ignore")

    account_sid: str | None = Field(default=None, pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr = SecretStr("")
    #: The sender: a Twilio number in E.164 form, or a Messaging Service (which picks one).
    from_number: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    base_url: str = "https://api.twilio.com"
    timeout_seconds: float = Field(default=10.0, gt=0)
    #: Twilio queues what a sender cannot send at once; a US long code sends about one
    #: segment per second, a toll-free number three, a short code 100: match your sender.
    rate_per_second: float = Field(default=1.0, gt=0)
    #: Longer texts are cut (with an ellipsis) to fit: 2 segments = 306 GSM-7 characters.
    max_segments: int = Field(default=2, ge=1, le=10)

    @model_validator(mode="after")
    def _one_sender(self) -> "TwilioSettings":
        if self.account_sid and not (self.from_number or self.messaging_service_sid):
            raise ValueError("set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        return self

    @property
    def configured(self) -> bool:
        return self.account_sid is not None


class ZendeskSettings(BaseSettings):
    """`ZENDESK_*`: tickets in Zendesk. Without a subdomain (or URL), notify has no ticket
    channel. Authentication is an API token: `{email}/token:{api_token}`."""

    model_config = SettingsConfigDict(env_prefix="ZENDESK_", extra="ignore")

    subdomain: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]*$")
    #: Instead of the subdomain: the full API root (a proxy, or a fake in tests).
    base_url: str | None = None
    email: str = ""
    api_token: SecretStr = SecretStr("")
    group_id: int | None = None
    tags: list[str] = Field(default_factory=lambda: ["nps"])
    timeout_seconds: float = Field(default=10.0, gt=0)
    #: Signing secrets of the webhook Zendesk calls back on ticket changes (several during a
    #: rotation), a JSON list in the environment: `ZENDESK_WEBHOOK_SECRETS='["…"]'`.
    webhook_secrets: list[SecretStr] = Field(default_factory=list)
    #: Zendesk's limits run from 200 to 2,500 requests a minute by plan; stay well inside.
    rate_per_second: float = Field(default=3.0, gt=0)

    @property
    def configured(self) -> bool:
        return bool(self.subdomain or self.base_url)

    @property
    def url(self) -> str:
        return self.base_url or f"https://{self.subdomain}.zendesk.com"


class JiraSettings(BaseSettings):
    """`JIRA_*`: tickets as Jira Cloud issues, instead of Zendesk (one helpdesk per
    installation). Without a base URL, notify has no Jira."""

    model_config = SettingsConfigDict(env_prefix="JIRA_", extra="ignore")

    #: https://<your-site>.atlassian.net
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    email: str = ""
    api_token: SecretStr = SecretStr("")
    project_key: str = Field(default="CS", pattern=r"^[A-Z][A-Z0-9_]+$")
    issue_type: str = "Task"
    #: npsloop's priority → the name of a priority in your Jira (Jira's defaults below).
    priorities: dict[str, str] = Field(
        default_factory=lambda: {
            "low": "Low",
            "normal": "Medium",
            "high": "High",
            "urgent": "Highest",
        }
    )
    timeout_seconds: float = Field(default=10.0, gt=0)
    rate_per_second: float = Field(default=3.0, gt=0)
    #: Secrets of the admin webhook Jira calls back on issue transitions (several during a
    #: rotation), a JSON list in the environment: `JIRA_WEBHOOK_SECRETS='["…"]'`.
    webhook_secrets: list[SecretStr] = Field(default_factory=list)

    @property
    def configured(self) -> bool:
        return self.base_url is not None


class WebhookEndpoint(BaseModel):
    """One of the team's own tools, called with staff notices addressed `webhook:<name>`."""

    url: str = Field(pattern=r"^https?://")
    #: Standard Webhooks secrets, `whsec_` + base64 (several during a rotation: each signs).
    secrets: list[SecretStr] = Field(min_length=1)
    #: Allow a private, loopback or plain-http address: an internal tool. Off by default.
    allow_private: bool = False

    @field_validator("secrets")
    @classmethod
    def _base64_secrets(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        for secret in secrets:
            standard_webhooks_key(secret.get_secret_value())  # raises, saying what is wrong
        return secrets


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"not an IANA time zone: {value!r} (e.g. Europe/Paris)") from None
    return value


def _locale(value: str) -> str:
    if LOCALE.fullmatch(value) is None:
        raise ValueError(f"not a locale: {value!r} (e.g. en, fr, pt-BR)")
    return value


TimeZone = Annotated[str, AfterValidator(_timezone)]
Locale = Annotated[str, AfterValidator(_locale)]
Brand = Annotated[Line, Field(min_length=1, max_length=100)]
Signature = Annotated[Text, Field(min_length=1, max_length=1_000)]


class TeamSender(BaseModel):
    """How one team's messages present themselves (`NOTIFY_SENDERS`, by the policy's team
    name); what is not set comes from the defaults (`SMTP_FROM_ADDRESS`, `SMTP_REPLY_TO`,
    `NOTIFY_BRAND`, `NOTIFY_SIGNATURE`, `NOTIFY_STAFF_LOCALE`)."""

    model_config = {"extra": "forbid", "frozen": True}

    from_address: Sender | None = None
    reply_to: Sender | None = None
    brand: Brand | None = None
    signature: Signature | None = None
    #: The language of the team's staff notices.
    staff_locale: Locale | None = None
    #: A customer's reply goes to the person who owns their case (and to `reply_to` too).
    reply_to_owner: bool | None = None


class NotifySettings(BaseSettings):
    """`NOTIFY_*` in the environment, plus the shared `KAFKA_*`, `DATABASE_*`, `SMTP_*`, `LOG_*`."""

    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8004, ge=1, le=65535)
    consumer_group: str = "npsloop-notify"
    #: How many messages one process hands to providers at once (a slice): a crash can leave
    #: up to this many `unknown` (docs/notify.md). 16 rather than 8: fewer ledger
    #: transactions and less CPU per message, measured (docs/performance.md, issue #20).
    send_concurrency: int = Field(default=16, ge=1, le=100)
    send_attempts: int = Field(default=3, ge=1, le=10)
    #: A deferred action (429, 5xx, open circuit) is tried again after this long at least
    #: (longer when the provider's Retry-After says so) …
    retry_delay_seconds: float = Field(default=30.0, gt=0)
    #: … and fails for good after this many tries.
    max_attempts: int = Field(default=20, ge=1)
    parked_interval_seconds: float = Field(default=2.0, gt=0)
    parked_batch_size: int = Field(default=100, ge=1, le=1000)
    #: Link to a case in staff notices: where your team opens it (by default the console's case
    #: page on this machine, as in the dev stack; NOTIFY_CONSOLE_URL sets it from the console's
    #: public address).
    case_url: str = Field(
        default="http://127.0.0.1:8000/cases/{case_id}",
        pattern=r"^[^\x00-\x20<>\"]*\{case_id\}[^\x00-\x20<>\"]*$",
    )

    @field_validator("case_url")
    @classmethod
    def _case_placeholder(cls, value: str) -> str:
        return _formats(value, "case_id")

    #: The console's base URL, e.g. https://console.example.com: a staff notice links to
    #: `<it>/cases/<case id>`. Replaces `case_url` when set.
    console_url: str | None = Field(default=None, pattern=r"^https?://[^\x00-\x20<>\"{}]+$")
    #: A directory of templates (a ConfigMap on Kubernetes) that override the shipped ones
    #: file by file (docs/templates.md); checked whole at start-up.
    templates_dir: Path | None = None
    #: The default brand name and signature the templates show (a team's from `senders`).
    brand: Brand = "npsloop"
    signature: Signature = "The customer success team"
    #: A customer's reply goes to the person who owns their case (`Reply-To`, with
    #: `SMTP_REPLY_TO` too when set), so "reply to this email" reaches the one who will call.
    reply_to_owner: bool = False
    #: The language and time zone of staff notices when the action names none.
    staff_locale: Locale = "en"
    staff_timezone: TimeZone = "UTC"
    #: Per team of the follow-up policy: `NOTIFY_SENDERS='{"enterprise": {"from_address":
    #: "Acme <care@acme.example>", "brand": "Acme"}}'`.
    senders: dict[str, TeamSender] = Field(default_factory=dict)

    @field_validator("templates_dir")
    @classmethod
    def _a_directory(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"not a directory: {value}")
        return value

    @model_validator(mode="after")
    def _one_case_link(self) -> "NotifySettings":
        if self.console_url and "case_url" in self.model_fields_set:
            raise ValueError("set NOTIFY_CONSOLE_URL or NOTIFY_CASE_URL, not both")
        return self

    @property
    def case_link(self) -> str:
        """Where a staff notice links a case to, with `{case_id}` to fill in."""
        if self.console_url:
            return self.console_url.rstrip("/") + "/cases/{case_id}"
        return self.case_url

    def identity(self) -> Identity:
        """The default sender identity."""
        return Identity(
            from_address=self.smtp.from_address,
            reply_to=self.smtp.reply_to,
            brand=self.brand,
            signature=self.signature,
            staff_locale=self.staff_locale,
            reply_to_owner=self.reply_to_owner,
        )

    def identities(self) -> dict[str, Identity]:
        """Each team's sender identity, the defaults filling what it does not set."""
        default = self.identity()
        return {
            team: Identity(
                from_address=own.from_address or default.from_address,
                reply_to=own.reply_to or default.reply_to,
                brand=own.brand or default.brand,
                signature=own.signature or default.signature,
                staff_locale=own.staff_locale or default.staff_locale,
                reply_to_owner=(
                    default.reply_to_owner if own.reply_to_owner is None else own.reply_to_owner
                ),
            )
            for team, own in self.senders.items()
        }

    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    zendesk: ZendeskSettings = Field(default_factory=ZendeskSettings)
    jira: JiraSettings = Field(default_factory=JiraSettings)
    #: `NOTIFY_WEBHOOKS='{"ops-tools": {"url": "https://…", "secrets": ["whsec_…"]}}'`
    webhooks: dict[str, WebhookEndpoint] = Field(default_factory=dict)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: HttpServerSettings = Field(default_factory=HttpServerSettings)
