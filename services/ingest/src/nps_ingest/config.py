import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from nps_ingest.domain.attributes import AttributeRules, target_error
from nps_ingest.domain.responses import MAX_COMMENT_CHARS
from nps_ingest.domain.signatures import MalformedSecretError, standard_webhooks_key
from nps_ingest.domain.sources import (
    STANDARD_WEBHOOKS_ONLY,
    EventTypes,
    FieldMapping,
    Proof,
    Provider,
    Source,
)
from nps_kit.settings import HttpServerSettings, KafkaSettings, LogSettings
from nps_kit.yaml_file import Location, YamlFileError, read_yaml, validate

_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
SourceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$")]


class IngestSettings(BaseSettings):
    """`INGEST_*` in the environment, plus the shared `KAFKA_*` and `LOG_*`."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=1, le=65535)
    #: The sources file (YAML, see docs/sources.md); on Kubernetes, a mounted ConfigMap.
    sources_file: Path | None = None
    #: Shorthand for sources that only use the canonical API: {"shop": "s3cr3t"} (JSON).
    api_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    #: How long a request may wait for the broker's acknowledgement before answering 503.
    publish_timeout_seconds: float = Field(default=5.0, gt=0)
    #: The largest request body accepted; larger ones get 413.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: Longer comments are cut to this many characters (and the cut is reported).
    comment_max_chars: int = Field(default=MAX_COMMENT_CHARS, ge=10, le=MAX_COMMENT_CHARS)
    #: Timeout of one call to a provider's API (thin payloads), in seconds.
    vendor_timeout_seconds: float = Field(default=5.0, gt=0)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: HttpServerSettings = Field(default_factory=HttpServerSettings)


# --- the sources file ------------------------------------------------------------------------


class SourcesError(ValueError):
    """The sources file (or INGEST_API_TOKENS) is wrong; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """A secret: from an environment variable (`env: NAME`), from a file such as a mounted
    Kubernetes Secret (`file: /etc/npsloop/secrets/key`), or, for development, inline."""

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: Path | None = None
    value: SecretStr | None = None

    def resolve(self, environ: Mapping[str, str], where: str) -> str:
        given = [x for x in (self.env, self.file, self.value) if x is not None]
        if len(given) != 1:
            raise SourcesError(f"{where}: give exactly one of 'env', 'file' or 'value'")
        if self.value is not None:
            secret = self.value.get_secret_value()
        elif self.file is not None:
            try:
                secret = self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SourcesError(f"{where}: cannot read {self.file}: {exc.strerror}") from None
        else:
            secret = environ.get(str(self.env), "")
            if not secret:
                raise SourcesError(f"{where}: environment variable {self.env} is not set")
        if len(secret) < 8:
            raise SourcesError(f"{where}: a secret needs at least 8 characters")
        return secret


#: A dotted path from a body's root (`data.member.id`); Standard Webhooks mappings use them.
FieldPath = Annotated[str, StringConstraints(pattern=r"^[^.\s]+(\.[^.\s]+)*$", max_length=200)]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class EventTypesSpec(_Strict):
    """A Standard Webhooks sender's event types by meaning (given, they replace the canonical
    `response.created`, `response.updated`, `contact.opted_out`)."""

    created: list[EventType] = Field(default_factory=list)
    updated: list[EventType] = Field(default_factory=list)
    opted_out: list[EventType] = Field(default_factory=list)
    ignored: list[EventType] = Field(default_factory=list)


class MappingSpec(_Strict):
    score: str | None = None
    comment: str | None = None
    customer_id: str | None = None
    customer_email: str | None = None
    customer_name: str | None = None
    survey_id: str | None = None
    # Standard Webhooks only: paths in the body, and the sender's event types.
    response_id: FieldPath | None = None
    responded_at: FieldPath | None = None
    customer: FieldPath | None = None
    attributes: FieldPath | None = None
    scope: FieldPath | None = None
    events: EventTypesSpec | None = None

    def to_domain(self) -> FieldMapping:
        values = self.model_dump(exclude={"events"})
        events = (
            EventTypes(
                created=tuple(self.events.created),
                updated=tuple(self.events.updated),
                opted_out=tuple(self.events.opted_out),
                ignored=tuple(self.events.ignored),
            )
            if self.events is not None
            else None
        )
        return FieldMapping(**values, events=events)


#: A vendor's field name, as it names it ("Plan Tier", `plan`, `QID_plan`).
VendorField = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class AttributesSpec(_Strict):
    """Which of the vendor's fields about the customer become what. Without it, every scalar
    field becomes an attribute under its normalised key, and the well-known names (language,
    timezone, phone…) the customer's locale, time zone and phone."""

    #: vendor field → `locale`, `timezone`, `phone`, or an attribute name (`plan`).
    map: dict[VendorField, str] = Field(default_factory=dict)
    #: Only these vendor fields (and those in `map`) are taken.
    include: list[VendorField] | None = None
    #: These vendor fields are never taken.
    exclude: list[VendorField] = Field(default_factory=list)

    @field_validator("map")
    @classmethod
    def _targets(cls, value: dict[str, str]) -> dict[str, str]:
        for vendor_field, target in value.items():
            problem = target_error(target)
            if problem is not None:
                raise ValueError(f"{vendor_field!r} → {target!r}: {problem}")
        return value

    @model_validator(mode="after")
    def _not_both(self) -> "AttributesSpec":
        taken = set(self.map) | set(self.include or ())
        both = sorted(taken & set(self.exclude))
        if both:
            raise ValueError(f"{both[0]!r} is both excluded and mapped or included")
        return self

    def to_domain(self) -> AttributeRules:
        return AttributeRules(
            map=dict(self.map),
            include=tuple(self.include) if self.include is not None else None,
            exclude=tuple(self.exclude),
        )


def _check_standard_webhooks_mapping(where: str, spec: "SourceSpec") -> None:
    """The keys only Standard Webhooks reads are refused elsewhere (they would do nothing);
    its paths must be paths, and an event type may mean one thing only."""
    mapping = spec.mapping
    if spec.provider is not Provider.STANDARD_WEBHOOKS:
        for key in STANDARD_WEBHOOKS_ONLY:
            if getattr(mapping, key) is not None:
                raise SourcesError(
                    f"{where}.mapping.{key}: only a standard-webhooks source reads it"
                )
        return
    for key in ("score", "comment", "customer_id", "customer_email", "customer_name", "survey_id"):
        value = getattr(mapping, key)
        if value is not None and not _PATH.fullmatch(value):
            raise SourcesError(f"{where}.mapping.{key}: {value!r} is not a dotted path")
    if mapping.events is None:
        return
    seen: dict[str, str] = {}
    for meaning in ("created", "updated", "opted_out", "ignored"):
        for kind in getattr(mapping.events, meaning):
            if kind in seen:
                raise SourcesError(
                    f"{where}.mapping.events: {kind!r} is in both {seen[kind]} and {meaning}"
                )
            seen[kind] = meaning
    if not (mapping.events.created or mapping.events.updated):
        raise SourcesError(
            f"{where}.mapping.events: no event type means a response (created or updated)"
        )


class SourceSpec(_Strict):
    provider: Provider
    secrets: list[SecretRef] = Field(default_factory=list)
    tokens: list[SecretRef] = Field(default_factory=list)
    api_token: SecretRef | None = None
    mapping: MappingSpec = Field(default_factory=MappingSpec)
    timestamp_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    options: dict[str, str] = Field(default_factory=dict)
    #: How deliveries prove their origin: the provider's signature (default) or, where the
    #: provider can do neither signature nor header, a secret last segment of the URL.
    proof: Proof = Proof.SIGNATURE
    #: Which vendor fields become the customer's attributes (survey tools' providers only).
    attributes: AttributesSpec | None = None


class SourcesFile(_Strict):
    sources: dict[SourceName, SourceSpec]


#: Providers that need a field mapping to find the score at all.
_NEEDS_SCORE_MAPPING = {Provider.FORMBRICKS, Provider.SURVEYMONKEY, Provider.QUALTRICS}
#: Providers whose customer comes with its attributes in npsloop's shape: no vendor fields.
_OWN_ATTRIBUTES = {Provider.CANONICAL, Provider.STANDARD_WEBHOOKS}
#: Providers that sign with Standard Webhooks: their secrets must be the spec's base64.
_STANDARD_WEBHOOKS = {Provider.STANDARD_WEBHOOKS, Provider.FORMBRICKS}
#: Providers whose webhooks carry ids only: the response is fetched with `api_token`.
_FETCHES = {Provider.SURVEYMONKEY, Provider.HUBSPOT, Provider.QUALTRICS}
#: Providers whose deliveries may be proven by a secret URL segment instead of a signature:
#: those that can send unsigned and carry ids only, so that nothing is published before the
#: provider's API, with the source's own token, returns the response.
_PATH_SECRET_OK = {Provider.QUALTRICS}
#: A secret that goes in a URL: URL-safe, and long enough not to be guessed (e.g.
#: `python -c 'import secrets; print(secrets.token_urlsafe(32))'`).
_PATH_SECRET = re.compile(r"^[A-Za-z0-9_-]{32,200}$")


def _build(name: str, spec: SourceSpec, environ: Mapping[str, str]) -> Source:
    where = f"sources.{name}"
    secrets = tuple(
        ref.resolve(environ, f"{where}.secrets[{i}]") for i, ref in enumerate(spec.secrets)
    )
    tokens = tuple(
        ref.resolve(environ, f"{where}.tokens[{i}]") for i, ref in enumerate(spec.tokens)
    )
    if spec.provider is Provider.CANONICAL and not tokens:
        raise SourcesError(f"{where}: a canonical source needs at least one token")
    if spec.provider is not Provider.CANONICAL and not secrets:
        raise SourcesError(f"{where}: a {spec.provider} source needs at least one secret")
    if spec.provider in _STANDARD_WEBHOOKS:
        for i, secret in enumerate(secrets):
            try:
                standard_webhooks_key(secret)
            except MalformedSecretError as exc:
                raise SourcesError(f"{where}.secrets[{i}]: {exc}") from None
    _check_standard_webhooks_mapping(where, spec)
    if spec.proof is Proof.PATH_SECRET:
        if spec.provider not in _PATH_SECRET_OK:
            raise SourcesError(
                f"{where}.proof: {spec.provider} deliveries are proven by their signature"
            )
        for i, secret in enumerate(secrets):
            if not _PATH_SECRET.fullmatch(secret):
                raise SourcesError(
                    f"{where}.secrets[{i}]: a secret path segment needs 32 or more of "
                    "A-Z a-z 0-9 _ - (e.g. secrets.token_urlsafe(32))"
                )
    if spec.attributes is not None and spec.provider in _OWN_ATTRIBUTES:
        raise SourcesError(
            f"{where}.attributes: a {spec.provider} source sends the customer's attributes in "
            "npsloop's own shape (standard-webhooks: where mapping.attributes says)"
        )
    if spec.provider in _NEEDS_SCORE_MAPPING and not spec.mapping.score:
        raise SourcesError(f"{where}.mapping.score: {spec.provider} needs the score question's id")
    if spec.provider in _FETCHES and spec.api_token is None:
        raise SourcesError(f"{where}.api_token: {spec.provider} responses are fetched with it")
    return Source(
        name=name,
        provider=spec.provider,
        secrets=secrets,
        tokens=tokens,
        mapping=spec.mapping.to_domain(),
        timestamp_tolerance_seconds=spec.timestamp_tolerance_seconds,
        options=dict(spec.options),
        api_token=spec.api_token.resolve(environ, f"{where}.api_token") if spec.api_token else None,
        proof=spec.proof,
        attributes=spec.attributes.to_domain() if spec.attributes else AttributeRules(),
    )


def _loc_of(message: str) -> Location:
    """The path a `_build` message starts with (`sources.acme.secrets[0]: …`)."""
    where = message.partition(": ")[0]
    return tuple(
        int(part[1:-1]) if part.startswith("[") else part
        for part in re.findall(r"\[\d+\]|[^.\[\]]+", where)
    )


def parse_sources(
    text: str, environ: Mapping[str, str], *, origin: str = "sources"
) -> dict[str, Source]:
    """The sources a YAML document defines, or `SourcesError` naming the line of each problem
    (the kit's YAML loader, with YAML's own types: `300` is a number, `null` is none)."""
    try:
        document = read_yaml(text, name=origin, typed=True)
        parsed = validate(
            SourcesFile,
            replace(document, data={} if document.data is None else document.data),
        )
    except YamlFileError as exc:
        raise SourcesError(str(exc)) from None
    sources: dict[str, Source] = {}
    for name, spec in parsed.sources.items():
        try:
            sources[name] = _build(name, spec, environ)
        except SourcesError as exc:
            line = document.line_of(_loc_of(str(exc)) or ("sources", name))
            raise SourcesError(f"{origin}:{line}: {exc}") from None
    return sources


def load_sources(
    settings: IngestSettings, environ: Mapping[str, str] | None = None
) -> dict[str, Source]:
    """Every source: the sources file's, plus one canonical source per INGEST_API_TOKENS entry.
    Raises `SourcesError` at start-up rather than serving with a half-read configuration."""
    environ = os.environ if environ is None else environ
    sources: dict[str, Source] = {}
    if settings.sources_file is not None:
        try:
            text = settings.sources_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise SourcesError(
                f"INGEST_SOURCES_FILE: cannot read {settings.sources_file}: {exc}"
            ) from None
        sources = parse_sources(text, environ, origin=str(settings.sources_file))
    for name, secret in settings.api_tokens.items():
        if name in sources:
            raise SourcesError(f"INGEST_API_TOKENS: source {name!r} is also in the sources file")
        if not secret.get_secret_value():
            raise SourcesError(f"INGEST_API_TOKENS: source {name!r} has an empty token")
        sources[name] = Source(
            name=name, provider=Provider.CANONICAL, tokens=(secret.get_secret_value(),)
        )
    seen: dict[str, str] = {}
    for source in sources.values():
        for token in source.tokens:
            if token in seen and seen[token] != source.name:
                raise SourcesError(
                    f"sources {seen[token]!r} and {source.name!r} share a token: "
                    "a token must identify one source"
                )
            seen[token] = source.name
    return sources
