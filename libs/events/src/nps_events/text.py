"""What text an event may carry: nothing that cannot be stored or sent.

Every service decodes events with these models, and every boundary (ingest, the HTTP APIs)
validates its input with the same types, so a value one of them refuses is refused by all:
at a boundary it is a 422 naming the field, on a topic an event that does not decode (the
consumer dead-letters it with the reason).

- `Line`: a single line — an id, a name, an owner, a status. No control character at all:
  no C0 (U+0000–U+001F, which holds NUL, tab, CR and LF), no DEL, no C1 (U+0080–U+009F), no
  Unicode line or paragraph separator. A line break in a name becomes a new header line in
  an email; NUL cannot be stored by PostgreSQL.
- `Text`: free text that may span lines — a comment, a note. Tab and line breaks (LF, CR,
  CRLF: browsers send a text area's line breaks as CRLF) are kept; every other control
  character is refused.
- Neither may hold a lone surrogate (U+D800–U+DFFF): it is no character, and cannot be
  written as UTF-8.
- `EmailAddress`: exactly one address (`ada@example.com`), checked by `email-validator`
  (syntax only, no DNS): no display name, no list, no comment, no quoted local part. The
  value is kept as sent (not normalised), so an event's id does not change with it.
- `StaffRecipient`: a person of the team — an email address — or `webhook:<name>`, one of
  the team's tools that notify calls instead of emailing.

`clean_line` and `clean_text` are the normalisations for text npsloop does not control (a
survey tool's payload, a provider's error message): they make any string fit the types.
"""

import re
from typing import Annotated, Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

#: Refused in a `Line`: every control character, the Unicode line and paragraph separators,
#: and lone surrogates.
_NOT_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: Refused in `Text`: the same, except tab, LF and CR (and the Unicode separators, which are
#: line breaks, not controls).
_NOT_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: What a line break or a tab becomes in `clean_line`.
_BREAKS = re.compile("[\t\n\x0b\x0c\r\x85\u2028\u2029]+")

#: The same rules as JSON Schema patterns (ECMA-262), for the contracts and the OpenAPI
#: documents. A pattern cannot express "no lone surrogate"; the models check it.
LINE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"
TEXT_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
#: A necessary condition for one email address, for schema-driven tools (a JSON Schema
#: `format: email` checks next to nothing): one @, a dot after it, none of the characters
#: that separate or quote addresses. The models check the whole address.
EMAIL_PATTERN = r'^[^\s@",:;<>()\[\]\\]+@[^\s@",:;<>()\[\]\\]+\.[^\s@",:;<>()\[\]\\]+$'
WEBHOOK_RECIPIENT = re.compile(r"webhook:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: RFC 5321's limit on an address in a mail path; email-validator enforces it.
MAX_EMAIL_LENGTH = 254


def _describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def line_error(value: str) -> str | None:
    """Why `value` is not a `Line`, or None when it is."""
    found = _NOT_IN_LINE.search(value)
    if found is None:
        return None
    char = found.group()
    what = "a line break" if _BREAKS.fullmatch(char) else "a control character"
    if "\ud800" <= char <= "\udfff":
        what = "a lone surrogate"
    return (
        f"must be a single line without control characters; found {what} "
        f"({_describe(char)}) at position {found.start()}"
    )


def text_error(value: str) -> str | None:
    """Why `value` is not a `Text`, or None when it is."""
    found = _NOT_IN_TEXT.search(value)
    if found is None:
        return None
    char = found.group()
    what = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return (
        f"must not contain control characters other than tab and line breaks; found {what} "
        f"({_describe(char)}) at position {found.start()}"
    )


# The validators below check the common case first, inline: every event's strings pass
# through them on every decode (measured: each Python call costs ~0.3 µs here).


def _line(value: str) -> str:
    if _NOT_IN_LINE.search(value) is None:
        return value
    raise ValueError(line_error(value))


def _text(value: str) -> str:
    if _NOT_IN_TEXT.search(value) is None:
        return value
    raise ValueError(text_error(value))


#: The common address, ASCII `local@label.label.tld`, in a form email-validator always
#: accepts (tests/unit/test_text_rules.py checks that it accepts all of it). Measured: ~1 µs
#: instead of email-validator's ~70 µs (its per-character IDNA checks), which would add about
#: a quarter to ingest's CPU per response.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_+-]{1,64}(?:\.[A-Za-z0-9_+-]{1,64})*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


#: The last label of each special-use domain name email-validator refuses (`test`, `local`…).
_SPECIAL_USE_TLDS = frozenset(name.rpartition(".")[2] for name in SPECIAL_USE_DOMAIN_NAMES)


def _plain_email(value: str) -> bool:
    if len(value) > MAX_EMAIL_LENGTH or _PLAIN_EMAIL.fullmatch(value) is None:
        return False
    local, _, domain = value.rpartition("@")
    # A special-use name ends the domain, so its last label is enough to leave it to
    # email-validator (which then names the reason).
    return (
        len(local) <= 64
        and len(domain) <= 253
        and "--" not in domain
        and domain.rpartition(".")[2].lower() not in _SPECIAL_USE_TLDS
    )


def _email_problem(value: str) -> str | None:
    if _plain_email(value):
        return None
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def email_error(value: str) -> str | None:
    """Why `value` is not exactly one email address, or None when it is."""
    problem = _email_problem(value)
    return None if problem is None else f"must be one email address: {problem}"


def _email(value: str) -> str:
    if _plain_email(value):
        return value
    error = email_error(value)
    if error is not None:
        raise ValueError(error)
    return value


def recipient_error(value: str) -> str | None:
    """Why `value` is not a `StaffRecipient`, or None when it is."""
    if value.startswith("webhook:"):
        if WEBHOOK_RECIPIENT.fullmatch(value) is None:
            return "must be webhook:<name>, the name of letters, digits, '_', '.' and '-'"
        return None
    problem = _email_problem(value)
    return None if problem is None else f"must be one email address (or webhook:<name>): {problem}"


def _recipient(value: str) -> str:
    error = recipient_error(value)
    if error is not None:
        raise ValueError(error)
    return value


def is_staff_recipient(value: str) -> bool:
    return recipient_error(value) is None


def clean_line(value: str) -> str:
    """`value` made a `Line`: line breaks and tabs become one space, other control
    characters and lone surrogates are dropped, and the ends are stripped."""
    return _NOT_IN_LINE.sub("", _BREAKS.sub(" ", value)).strip()


def clean_text(value: str) -> str:
    """`value` made a `Text`: control characters other than tab and line breaks, and lone
    surrogates, are dropped."""
    return _NOT_IN_TEXT.sub("", value)


class _JsonSchema:
    """Adds keywords to a type's JSON Schema (the validation is the type's own)."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(self.keywords)
        return schema


Line = Annotated[str, AfterValidator(_line), _JsonSchema(pattern=LINE_PATTERN)]
Text = Annotated[str, AfterValidator(_text), _JsonSchema(pattern=TEXT_PATTERN)]
EmailAddress = Annotated[
    str,
    AfterValidator(_email),
    _JsonSchema(format="email", pattern=EMAIL_PATTERN, maxLength=MAX_EMAIL_LENGTH),
]
StaffRecipient = Annotated[
    str,
    AfterValidator(_recipient),
    _JsonSchema(
        maxLength=MAX_EMAIL_LENGTH,
        anyOf=[
            {"format": "email", "pattern": EMAIL_PATTERN},
            {"pattern": f"^{WEBHOOK_RECIPIENT.pattern}$"},
        ],
    ),
]
