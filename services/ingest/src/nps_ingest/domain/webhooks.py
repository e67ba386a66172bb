"""What a provider adapter gets (the raw request) and gives (responses, opt-outs, or ids to
fetch), and the typed errors every adapter raises for bad input."""

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from nps_events import Customer, OptOutScope
from nps_events.text import clean_line, line_error
from nps_ingest.domain.attributes import Profile
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.sources import Source


class MalformedPayloadError(Exception):
    """The body cannot be read at all: not JSON, not a form, not the provider's shape (400)."""


class VendorUnavailableError(Exception):
    """The provider's API did not give the response now; the sender should retry later."""


class InvalidResponseError(Exception):
    """The body is readable but a value is wrong: a score of 11 or "nine" (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class WebhookRequest:
    """A webhook delivery as received: header names lower-cased, the body untouched, and the
    URL it was posted to (only HubSpot's signature covers it: given as a function, it is
    built on first use)."""

    __slots__ = ("_url", "body", "headers", "path_secret")

    def __init__(
        self,
        *,
        headers: Mapping[str, str],
        body: bytes,
        url: str | Callable[[], str] = "",
        path_secret: str | None = None,
    ) -> None:
        self.headers = headers
        self.body = body
        self._url = url
        #: The secret last segment of the URL, for a source whose proof is `path_secret`.
        self.path_secret = path_secret

    @property
    def url(self) -> str:
        if not isinstance(self._url, str):
            self._url = self._url()
        return self._url

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayloadError(f"the body is not valid JSON: {exc}") from None
        except RecursionError:
            # The stdlib decoder stops near 1,000 levels; no provider nests a tenth as deep.
            raise MalformedPayloadError("the body is not valid JSON: nested too deeply") from None

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise MalformedPayloadError("the body is not a JSON object")
        return data

    def form(self) -> dict[str, str]:
        """An `application/x-www-form-urlencoded` body; the last value of a repeated key wins."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedPayloadError("the form body is not UTF-8") from None
        try:
            return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
        except ValueError as exc:
            raise MalformedPayloadError(f"the body is not a form: {exc}") from None


@dataclass(frozen=True, slots=True)
class OptOut:
    """A customer's request not to be contacted, as a provider reported it."""

    customer_id: str
    provider_event_id: str
    occurred_at: datetime
    scope: OptOutScope = OptOutScope.ALL


@dataclass(frozen=True, slots=True)
class Fetch:
    """A thin payload: the response must be fetched from the provider's API by these ids."""

    response_id: str
    survey_id: str


@dataclass(frozen=True, slots=True)
class Parsed:
    responses: tuple[CanonicalResponse, ...] = ()
    opt_outs: tuple[OptOut, ...] = ()
    fetches: tuple[Fetch, ...] = ()
    #: Why the delivery carries nothing for npsloop (an event type it does not use), if so.
    ignored: str | None = None
    #: An event type the source did not declare (Standard Webhooks with its own names): why
    #: nothing was published. Answered as a `warning` and counted, never silently dropped.
    undeclared: str | None = None


# --- helpers every adapter uses -------------------------------------------------------------


def parse_score(value: object, field: str = "score") -> int:
    """An NPS score: an integer 0–10, or the decimal string of one ("8") as some vendors send."""
    if isinstance(value, bool):
        raise InvalidResponseError(field, "must be a number from 0 to 10")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidResponseError(field, "must be a whole number from 0 to 10")
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 2:
            raise InvalidResponseError(field, f"must be a number from 0 to 10, not {value[:20]!r}")
        value = int(text)
    if not isinstance(value, int):
        raise InvalidResponseError(field, "must be a number from 0 to 10")
    if not 0 <= value <= 10:
        raise InvalidResponseError(field, f"must be from 0 to 10, not {value}")
    return value


def text_or_none(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def required_text(value: object, field: str) -> str:
    """An id or a name that identifies something: one line, refused (never changed) when it
    holds a control character, since a changed id would name something else."""
    text = text_or_none(value)
    if text is None:
        raise InvalidResponseError(field, "is required")
    if len(text) > 200:
        raise InvalidResponseError(field, "is longer than 200 characters")
    error = line_error(text)
    if error is not None:
        raise InvalidResponseError(field, error)
    return text


def dig(data: object, path: str) -> object:
    """`data["a"]["b"]` for the path "a.b"; None where any step is missing."""
    for step in path.split("."):
        if isinstance(data, dict):
            data = data.get(step)
        elif isinstance(data, list) and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        else:
            return None
    return data


def from_unix(value: object, field: str) -> datetime:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidResponseError(field, "must be a Unix time in seconds")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidResponseError(field, "is not a valid Unix time") from None


def from_iso(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidResponseError(field, "must be an RFC 3339 date-time")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidResponseError(field, f"is not an RFC 3339 date-time: {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def customer(
    *,
    id_: object,
    email: object = None,
    name: object = None,
    field: str = "customer",
    profile: Profile | None = None,
) -> Customer:
    """A `Customer`, or InvalidResponseError naming what is wrong. Without an id, the email
    stands in for it (many survey tools know a respondent only by their address). The name is
    made one line (a line break or a tab becomes a space, other control characters are
    dropped): it is only shown, and a survey tool's respondent cannot be asked to fix it. The
    id and the email are refused instead when they hold what the event cannot carry. The
    `profile` (see `domain.attributes`) brings attributes, locale, time zone and phone, already
    made to fit."""
    email_text = text_or_none(email)
    customer_id = text_or_none(id_) or email_text
    if customer_id is None:
        raise InvalidResponseError(f"{field}.id", "no customer id (nor email) in the payload")
    name_text = text_or_none(name)
    known = profile or Profile()
    try:
        return Customer(
            id=customer_id[:200],
            email=email_text,
            name=(clean_line(name_text)[:200] or None) if name_text else None,
            attributes=known.attributes,
            locale=known.locale,
            timezone=known.timezone,
            phone=known.phone,
        )
    except ValueError as exc:
        first = exc.errors()[0] if hasattr(exc, "errors") else None  # pydantic ValidationError
        where = ".".join(str(p) for p in first["loc"]) if first else "customer"
        message = first["msg"] if first else str(exc)
        raise InvalidResponseError(f"{field}.{where}", message) from None


@dataclass(frozen=True, slots=True)
class ProviderAdapter:
    """A provider: how its deliveries are signed, and how they become npsloop's responses.

    Both are pure functions of the raw request (and `now`); `from_fetched` turns what a thin
    payload's `Fetch` brought back from the provider's API into a response.
    """

    verify: Callable[[WebhookRequest, Source, datetime], None]
    parse: Callable[[WebhookRequest, Source, datetime], Parsed]
    from_fetched: Callable[[Any, Fetch, Source], CanonicalResponse] | None = None


def as_dict(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}
