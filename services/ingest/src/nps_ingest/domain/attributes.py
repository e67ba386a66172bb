"""What a survey tool knows about the customer, made into the customer's attributes.

Every provider keeps a bag of vendor fields about the respondent (Delighted's
`person_properties`, Typeform's hidden fields, Qualtrics' embedded data…). Each field becomes
one of:

- a customer field of the event: `locale` (`en`, `pt-BR`), `timezone` (IANA, `Europe/Paris`)
  or `phone` (E.164, `+14155550123`), normalised from the forms vendors send (`pt_BR`,
  `+1 (415) 555-0123`);
- an attribute (`plan`, `region`, `sms_consent`…) under a normalised key: lower case, runs of
  anything but letters and digits made one `_` ("Pricing Plan" → `pricing_plan`), at most 40
  characters;
- nothing: a field the source excludes, a field outside its `include` list, or one that holds
  what attributes must not (an email, a name, an address: attributes are not PII).

The source's rules (`AttributeRules`) say which field becomes what; without rules every
scalar field is taken under its normalised key, and the well-known names (language, tz,
phone, mobile…) become the customer fields. A field that should have been taken but cannot
(a value with a control character, longer than 200 characters, a phone that is not a
number, the 21st attribute…) is *set aside*: the response is still published, and the
answer names the field and why, never its value (values are the customer's data).
"""

import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nps_events.text import clean_line, line_error

#: The event's bounds (`Customer.attributes`): at most 20 attributes, keys of 40, values of 200.
MAX_ATTRIBUTES = 20
MAX_KEY_CHARS = 40
MAX_VALUE_CHARS = 200
#: How many set-aside fields an answer names; the rest are counted.
MAX_REPORTED = 20

#: Targets that are customer fields of the event, not attributes.
CUSTOMER_FIELDS = frozenset({"locale", "timezone", "phone"})
ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

#: Well-known vendor field names (normalised) and what they become by default.
SYNONYMS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "locale",
            "language",
            "lang",
            "language_code",
            "preferred_language",
            "user_language",
            "userlanguage",
            "hs_language",
        ),
        "locale",
    ),
    **dict.fromkeys(("timezone", "time_zone", "tz", "hs_timezone", "iana_timezone"), "timezone"),
    **dict.fromkeys(
        ("phone", "phone_number", "phonenumber", "mobile", "mobile_phone", "mobilephone"),
        "phone",
    ),
    **dict.fromkeys(
        ("sms_consent", "sms_opt_in", "sms_optin", "sms_opted_in", "consent_sms"),
        "sms_consent",
    ),
}

#: Normalised names never taken by default: attributes are not PII (the customer's email and
#: name travel in their own fields). A source may still map or include one explicitly.
PERSONAL: frozenset[str] = frozenset(
    {
        "email",
        "e_mail",
        "email_address",
        "name",
        "full_name",
        "fullname",
        "first_name",
        "firstname",
        "last_name",
        "lastname",
        "address",
        "street",
        "street_address",
        "ip",
        "ip_address",
        "birthday",
        "birth_date",
        "birthdate",
        "date_of_birth",
        "dob",
    }
)

_YES = frozenset({"yes", "y", "true", "1", "on", "opted_in", "opt_in", "subscribed", "granted"})
_NO = frozenset({"no", "n", "false", "0", "off", "opted_out", "opt_out", "unsubscribed", "denied"})
_LOCALE = re.compile(r"^([A-Za-z]{2})(?:[-_]([A-Za-z]{2}))?$")
_ZONE = re.compile(r"^[A-Za-z_]+(/[A-Za-z0-9_+\-]+)*$")
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True, slots=True)
class AttributeRules:
    """A source's rules (the sources file's `attributes`). Vendor fields are named as the
    vendor names them, or by their normalised key."""

    #: Vendor field → target: `locale`, `timezone`, `phone`, or an attribute key.
    map: Mapping[str, str] = field(default_factory=dict)
    #: Only these vendor fields (and those in `map`) are taken; None: every field.
    include: tuple[str, ...] | None = None
    #: Never taken.
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Profile:
    """What the vendor's fields made of the customer, and what could not be taken."""

    attributes: dict[str, str] = field(default_factory=dict)
    locale: str | None = None
    timezone: str | None = None
    phone: str | None = None
    #: "`Plan Tier`: why", one per field that should have been taken and was not: names
    #: and reasons only, never a value.
    set_aside: tuple[str, ...] = ()


@lru_cache(maxsize=4096)
def normalise_key(name: str) -> str | None:
    """The attribute key for a vendor field name ("Pricing Plan" → `pricing_plan`), or None
    when no key can be made of it (nothing but punctuation, or a leading digit)."""
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    key = re.sub(r"[^a-z0-9]+", "_", ascii_.lower()).strip("_")[:MAX_KEY_CHARS].rstrip("_")
    return key if ATTRIBUTE_KEY.fullmatch(key) else None


def target_error(target: str) -> str | None:
    """Why `target` cannot be what a vendor field becomes, or None."""
    if target in CUSTOMER_FIELDS or ATTRIBUTE_KEY.fullmatch(target):
        return None
    return (
        "must be locale, timezone, phone, or an attribute name: a lower-case letter, then "
        "up to 39 lower-case letters, digits or _"
    )


def normalise_locale(value: str) -> str | None:
    """`en`, `pt-BR` from `EN`, `pt_br`, `pt-BR`; None for anything else."""
    found = _LOCALE.fullmatch(value.strip())
    if found is None:
        return None
    language, region = found.groups()
    return language.lower() + (f"-{region.upper()}" if region else "")


@lru_cache(maxsize=512)
def normalise_timezone(value: str) -> str | None:
    """An IANA time zone this machine knows (`Europe/Paris`), or None."""
    text = value.strip()
    if len(text) > 64 or not _ZONE.fullmatch(text):
        return None
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return text


def normalise_phone(value: str) -> str | None:
    """E.164 (`+14155550123`) from `+1 (415) 555-0123` or `0014155550123`; None for a
    number without its country code (no country is guessed)."""
    text = _PHONE_PUNCTUATION.sub("", value.strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    return text if _E164.fullmatch(text) else None


def normalise_consent(value: str) -> str | None:
    """`yes` or `no` (what followup's SMS rule reads) from the ways vendors say it."""
    word = value.strip().lower().replace(" ", "_").replace("-", "_")
    return "yes" if word in _YES else "no" if word in _NO else None


def _scalar(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value.strip()
    return None


def _label(name: str) -> str:
    return repr(clean_line(name)[:60])


class _Reader:
    def __init__(self, rules: AttributeRules, skip: Collection[str]) -> None:
        self.rules = rules
        self.skip = skip
        self.found: dict[str, str] = {}
        self.taken_from: dict[str, str] = {}
        self.set_aside: list[str] = []
        self.attribute_count = 0

    def named(self, name: str, names: Iterable[str]) -> bool:
        key = normalise_key(name)
        return any(n == name or (key is not None and n == key) for n in names)

    def explicit_target(self, name: str) -> str | None:
        key = normalise_key(name)
        return self.rules.map.get(name) or (self.rules.map.get(key) if key else None)

    def target(self, name: str) -> tuple[int, str | None, bool] | None:
        """When the field is read (mapped fields first, then included ones, then the rest),
        what it becomes (None: no name can be made of it) and whether the source asked for it
        by name; None when it is not to be taken at all."""
        if name in self.skip or self.named(name, self.rules.exclude):
            return None
        explicit = self.explicit_target(name)
        included = self.rules.include is not None and self.named(name, self.rules.include)
        if explicit is None and self.rules.include is not None and not included:
            return None
        key = normalise_key(name)
        target = explicit or (SYNONYMS.get(key, key) if key else None)
        asked = explicit is not None or included
        if not asked and target in PERSONAL:
            return None
        return (0 if explicit is not None else 1 if included else 2), target, asked

    def take(self, name: str, value: object, target: str | None, *, asked: bool) -> None:
        text = _scalar(value)
        if text is None:
            asked_for = asked and value is not None
            why = "is not a single value (a string, number or true/false)" if asked_for else ""
        elif not text:
            why = ""
        elif target is None:
            why = "no attribute name can be made of it: map it to one"
        elif target in self.found:
            why = f"{target} is already taken from {_label(self.taken_from[target])}"
        else:
            why = self.store(target, text) or ""
            if not why:
                self.taken_from[target] = name
        if why:
            self.set_aside.append(f"{_label(name)}: {why}")

    def store(self, target: str, text: str) -> str | None:
        error = line_error(text)
        if error is not None:
            return f"the value {error}"
        if len(text) > MAX_VALUE_CHARS:
            return f"the value is longer than {MAX_VALUE_CHARS} characters"
        if target == "locale":
            value = normalise_locale(text)
            problem = "is not a language such as en or pt-BR"
        elif target == "timezone":
            value = normalise_timezone(text)
            problem = "is not an IANA time zone such as Europe/Paris"
        elif target == "phone":
            value = normalise_phone(text)
            problem = "is not a phone number with its country code (+14155550123)"
        elif target == "sms_consent":
            value = normalise_consent(text)
            problem = "is not a yes or a no"
        else:
            if self.attribute_count >= MAX_ATTRIBUTES:
                return f"the customer has {MAX_ATTRIBUTES} attributes already (an event's most)"
            self.attribute_count += 1
            value, problem = text, ""
        if value is None:
            return problem
        self.found[target] = value
        return None


def read_profile(
    fields: Iterable[tuple[str, object]], rules: AttributeRules, *, skip: Collection[str] = ()
) -> Profile:
    """The customer's attributes and fields from a provider's vendor fields, in payload order
    (the first of two fields with one target wins); `skip` names the vendor fields already read
    as the customer's id, email or name. Fields the source maps are read first, then those it
    includes, so a bound reached sets aside only fields taken by default."""
    reader = _Reader(rules, skip)
    planned = []
    for raw_name, value in fields:
        name = str(raw_name)
        plan = reader.target(name)
        if plan is not None:
            planned.append((plan, name, value))
    for (_, target, asked), name, value in sorted(planned, key=lambda item: item[0][0]):
        reader.take(name, value, target, asked=asked)
    found = reader.found
    reported = reader.set_aside[:MAX_REPORTED]
    if len(reader.set_aside) > MAX_REPORTED:
        reported.append(f"and {len(reader.set_aside) - MAX_REPORTED} more fields")
    return Profile(
        attributes={k: v for k, v in found.items() if k not in CUSTOMER_FIELDS},
        locale=found.get("locale"),
        timezone=found.get("timezone"),
        phone=found.get("phone"),
        set_aside=tuple(reported),
    )


def object_fields(value: object) -> list[tuple[str, object]]:
    """A JSON object's members as vendor fields; anything else has none."""
    return [(str(k), v) for k, v in value.items()] if isinstance(value, dict) else []
