"""Sources: one upstream product installation each, with its secrets, tokens and mapping."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from nps_ingest.domain.attributes import AttributeRules


class Provider(StrEnum):
    """The upstream products ingest understands, by the name a sources file uses."""

    CANONICAL = "canonical"
    STANDARD_WEBHOOKS = "standard-webhooks"
    FORMBRICKS = "formbricks"
    DELIGHTED = "delighted"
    TYPEFORM = "typeform"
    WOOTRIC = "wootric"
    ASKNICELY = "asknicely"
    SURVEYMONKEY = "surveymonkey"
    HUBSPOT = "hubspot"
    QUALTRICS = "qualtrics"


class Proof(StrEnum):
    """How a source's deliveries prove where they come from."""

    #: The provider's own signature (or header) scheme, with the source's secrets.
    SIGNATURE = "signature"
    #: A secret last segment of the URL the provider posts to (`/v1/webhooks/{source}/{secret}`),
    #: for a sender that can neither sign nor add a header: Qualtrics without a shared key.
    PATH_SECRET = "path_secret"  # noqa: S105 - the name of a proof, not a secret


@dataclass(frozen=True, slots=True)
class EventTypes:
    """A Standard Webhooks sender's own event type names (the envelope's `type`), by meaning.
    A type in none of them is undeclared: counted and answered with a warning."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    opted_out: tuple[str, ...] = ()
    #: Types the sender sends that carry nothing for npsloop (acknowledged, no warning).
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Where a provider's payload holds what npsloop needs; each provider reads the keys it
    knows (a Typeform field `ref`, a Formbricks question id, a hidden field's name…). For
    Standard Webhooks every key is a dotted path from the body's root (`data.member.id`), and
    the rest below are read by it alone."""

    score: str | None = None
    comment: str | None = None
    customer_id: str | None = None
    customer_email: str | None = None
    customer_name: str | None = None
    survey_id: str | None = None
    response_id: str | None = None
    #: When the customer answered: an RFC 3339 date-time or Unix seconds.
    responded_at: str | None = None
    #: The customer object (`id`, `email`, `name`, `attributes` inside, unless mapped one by one).
    customer: str | None = None
    #: An object of the customer's attributes (plan, region…), for the policy's rules.
    attributes: str | None = None
    #: An opt-out's scope (`email`, `sms` or `all`).
    scope: str | None = None
    events: EventTypes | None = None


#: The mapping keys that only the `standard-webhooks` provider reads.
STANDARD_WEBHOOKS_ONLY = (
    "response_id",
    "responded_at",
    "customer",
    "attributes",
    "scope",
    "events",
)


@dataclass(frozen=True, slots=True)
class Source:
    """One upstream product installation. Its secrets verify webhook signatures (several at
    once during a rotation); its tokens authenticate the canonical API."""

    name: str
    provider: Provider
    secrets: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    mapping: FieldMapping = field(default_factory=FieldMapping)
    #: How far a signed timestamp may be from now, where the scheme signs one.
    timestamp_tolerance_seconds: int = 300
    #: Provider-specific settings that are not secrets (an API base URL, a data centre…).
    options: Mapping[str, str] = field(default_factory=dict)
    #: Provider API credentials for fetching thin payloads (SurveyMonkey access token…).
    api_token: str | None = None
    proof: Proof = Proof.SIGNATURE
    #: Which of the vendor's fields about the customer become which attributes (plan,
    #: region…) and customer fields (locale, timezone, phone); every scalar by default.
    attributes: AttributeRules = field(default_factory=AttributeRules)
