"""What a message may show of text npsloop does not control, and which language it speaks.

A customer's name or comment can hold Unicode format characters that are invisible yet change
what a reader sees: a right-to-left override (U+202E) makes `Ada\u202egnp.exe` read
`Adaexe.png`; a zero-width joiner or space hides inside a word and defeats a reader's eye and a
filter's match. Headers and bodies treat them differently:

- a header (Subject, a display name) keeps none of them: every character of Unicode category
  `Cf` (format) is dropped, and so is every control character;
- a body shows each bidirectional embedding, override and isolate as its code point in
  brackets (`[U+202E]`), so it cannot reorder the text around it and a person can see it was
  there; the directional marks (U+200E, U+200F, U+061C: invisible letters of one direction,
  which reorder nothing beyond themselves and which right-to-left names may carry) are kept,
  as are the zero-width joiner and non-joiner, which emoji sequences and several scripts
  (Persian, the Indic scripts) need to be spelled right; other invisible format characters
  (zero-width space, word joiner, soft hyphen, byte-order mark…) are dropped.
"""

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

#: Bidirectional embeddings, overrides and isolates (Unicode UAX #9): they reorder the text
#: that follows them, up to their end or the end of the paragraph.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Kept in bodies: the zero-width joiner and non-joiner (emoji sequences, Persian, Indic
#: scripts) and the directional marks (right-to-left names).
KEPT_IN_BODY = frozenset("\u200c\u200d\u200e\u200f\u061c")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def header_text(value: str) -> str:
    """`value` fit for one header line: line breaks and tabs become one space; control
    characters and every invisible format character (bidi controls, zero-width joiner, space
    and non-joiner, soft hyphen, byte-order mark…) are dropped; runs of spaces become one."""
    if value.isprintable():
        # Nothing to drop or replace (a printable string holds no control, no format
        # character and no space but U+0020): only runs of spaces to fold. Most names and
        # subjects, in any script, take this path: the loop below cost ~25 µs per email.
        return " ".join(value.split())
    kept = "".join(
        " " if c in "\t\n\r\x0b\x0c\x85\u2028\u2029" else c
        for c in value
        if c in "\t\n\r\x0b\x0c\x85\u2028\u2029" or unicodedata.category(c) not in ("Cf", "Cc")
    )
    return " ".join(kept.split())


def body_text(value: str) -> str:
    """`value` fit for a message body: each bidi embedding, override or isolate shown as
    `[U+XXXX]`; other invisible format characters dropped but for the joiners and the
    directional marks; control characters other than tab and line breaks dropped."""
    if value.isprintable():  # no control, no format character: nothing to show or drop
        return value
    if value.isascii():  # no format character is ASCII: only the controls go
        return _CONTROL.sub("", value)
    out: list[str] = []
    for c in _CONTROL.sub("", value):
        if c in BIDI_CONTROLS:
            out.append(f"[U+{ord(c):04X}]")
        elif c in KEPT_IN_BODY or unicodedata.category(c) != "Cf":
            out.append(c)
    return "".join(out)


def shorten(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary to at most `limit` characters with an
    ellipsis when it was longer."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:  # a long word is cut inside rather than losing half the room
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"


LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")


def locale_chain(locale: str | None) -> tuple[str, ...]:
    """The variants to try for `locale`, most specific first, ending with the default (""):
    `pt-BR` → (`pt-BR`, `pt`, ``); None or a malformed locale → just the default."""
    if not locale or LOCALE.fullmatch(locale) is None:
        return ("",)
    language = locale.partition("-")[0]
    return (locale, language, "") if language != locale else (locale, "")


@dataclass(frozen=True, slots=True)
class Identity:
    """How a team's messages present themselves: the sender, where replies go, the brand and
    signature the templates show, and the language of its staff notices."""

    from_address: str
    reply_to: str | None
    brand: str
    signature: str
    staff_locale: str = "en"
    #: A customer's reply goes to the case's owner (and to `reply_to` too, when set).
    reply_to_owner: bool = False


def identity_for(team: str | None, *, teams: Mapping[str, Identity], default: Identity) -> Identity:
    """The identity of `team`, or the default for no team or a team without its own."""
    return teams.get(team, default) if team else default
