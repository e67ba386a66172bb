"""An email's bytes written directly from already-checked parts, without `EmailMessage`.

The stdlib's `EmailMessage` parses every header it is given into a header object and its
generator folds each one again on the way out: 1.8 ms of CPU per email here, most of an
email's cost in notify (docs/performance.md, "Notify's dispatch"). The parts of a notify
email are few and known, and all but two are checked before they arrive here (settings at
start-up, ids, locale), so this module writes them as they are:

- `Subject` and the `To` display name (text npsloop does not control, made one line by
  `header_text`) go as RFC 2047 encoded words (UTF-8, base64, each at most 68 characters)
  whenever a word is not ASCII or looks like an encoded word itself; plain ASCII words stay
  readable; lines are folded at 78 characters between words;
- `From` and `Reply-To` come from the settings: folded once by the stdlib's own header
  classes and kept;
- the rest (`Date`, ids, `List-Unsubscribe`, `Content-Language`) is ASCII by construction;
- the body is `multipart/alternative`, text then HTML, each UTF-8 and either 7bit (ASCII with
  lines of at most 78) or quoted-printable, so no server needs 8BITMIME; the boundary holds
  `=_`, which quoted-printable never writes, and a 7bit part that holds it is sent
  quoted-printable instead.

Every line ends in CRLF and no line is longer than 998 characters (RFC 5322 §2.1.1): a header
that would be is refused (`ValueError`), never sent. tests/unit/test_email_mime.py parses
the bytes back with the stdlib's strict parser and compares them with what `EmailMessage`
makes of the same parts."""

import binascii
import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.utils import format_datetime

__all__ = ["Draft", "configured", "envelope_address", "to_bytes"]

_FOLD = 78
_MAX_LINE = 998
#: RFC 2047 §2: an encoded word is at most 75 characters. 42 bytes make 56 characters of
#: base64 and a word of 68, so that one fits after `Subject: ` within 78.
_WORD_BYTES = 42
#: RFC 5322 `specials` that make a display name need quoting (as `email.utils.formataddr`).
_SPECIALS = frozenset('()<>[]:;@\\,."')
_LONGER_THAN_FOLD = re.compile(rf"[^\r\n]{{{_FOLD + 1}}}")


@dataclass(frozen=True, slots=True)
class Draft:
    """What one email says, every part already checked: `subject` and `to_name` one line
    without control or format characters (domain/messages.py `header_text`); `to_address`
    one ASCII addr-spec; `sender` and `reply_to` as the settings checked them; ids and the
    unsubscribe links ASCII."""

    date: datetime
    sender: str
    to_name: str
    to_address: str
    reply_to: str | None
    subject: str
    message_id: str
    thread: str
    list_unsubscribe: str | None
    one_click: bool
    auto_submitted: bool
    text: str
    html: str
    language: str | None
    #: The multipart boundary's unique part (e.g. the action id's hex).
    boundary: str


def to_bytes(draft: Draft) -> bytes:
    """The message as it goes to the SMTP server (`DATA`), CRLF line ends."""
    headers = [
        _token("Date", _date(draft.date)),
        configured("From", draft.sender),
        _mailbox("To", draft.to_name, draft.to_address),
    ]
    if draft.reply_to:
        headers.append(configured("Reply-To", draft.reply_to))
    headers += [
        _unstructured("Subject", draft.subject),
        _token("Message-ID", draft.message_id),
        _token("In-Reply-To", draft.thread),
        _token("References", draft.thread),
    ]
    if draft.list_unsubscribe is not None:
        headers.append(_list("List-Unsubscribe", draft.list_unsubscribe))
        if draft.one_click:
            headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    if draft.auto_submitted:
        headers.append("Auto-Submitted: auto-generated\r\n")
    boundary = f"=_{draft.boundary}"
    headers += [
        "MIME-Version: 1.0\r\n",
        _token("Content-Type", f'multipart/alternative;\r\n boundary="{boundary}"'),
    ]
    if draft.language:
        headers.append(_token("Content-Language", draft.language))
    text = _part("plain", draft.text, boundary)
    html = _part("html", draft.html, boundary)
    return (
        f"{''.join(headers)}\r\n--{boundary}\r\n{text}\r\n--{boundary}\r\n{html}\r\n"
        f"--{boundary}--\r\n"
    ).encode("ascii")


def _part(subtype: str, content: str, boundary: str) -> str:
    # As the stdlib's `set_content`: CR, LF and CRLF each end a line (U+2028 and the other
    # line breaks of `str.splitlines` stay characters), and the body ends with a line end.
    raw = b"\r\n".join(content.encode("utf-8").splitlines()) + b"\r\n"
    body = raw.decode("utf-8")
    # Its lines end in CRLF and hold no other CR or LF (`splitlines` above): a run of 79
    # characters without one is a line longer than 78, found in one pass in C.
    if body.isascii() and boundary not in body and _LONGER_THAN_FOLD.search(body) is None:
        encoding = "7bit"
    else:
        encoding = "quoted-printable"
        body = binascii.b2a_qp(raw, istext=True).decode("ascii")
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n{body}"
    )


def _date(at: datetime) -> str:
    """`Date`'s value: to the second (`format_datetime` drops the microseconds), so the emails
    of one second share one formatting (~1.3% of notify's CPU in the pipeline)."""
    return _formatted_date(at.replace(microsecond=0), at.utcoffset())


@functools.lru_cache(maxsize=8)
def _formatted_date(at: datetime, offset: timedelta | None) -> str:
    # The offset in the key: one instant in two zones is one key to `datetime` alone, and
    # `format_datetime` writes the offset.
    return format_datetime(at)


def _checked(header: str) -> str:
    """`header` if it is ASCII lines of at most 998 characters, each after the first folded
    (starting with a space), ending in CRLF; else `ValueError`: nothing is sent."""
    first, *rest = header.removesuffix("\r\n").split("\r\n")
    if (
        not header.isascii()
        or not header.endswith("\r\n")
        or any(len(line) > _MAX_LINE or "\r" in line or "\n" in line for line in (first, *rest))
        or any(not line.startswith(" ") or not line.strip() for line in rest)
    ):
        raise ValueError(f"the {first.partition(':')[0]} header cannot be written as it is")
    return header


def _token(name: str, value: str) -> str:
    """A header whose value is ASCII by construction, written as it is."""
    return _checked(f"{name}: {value}\r\n")


def _list(name: str, value: str) -> str:
    """A comma-separated ASCII list, folded after its commas."""
    return _checked(_fold(name, value.replace(", ", ",\0").split("\0")))


@functools.lru_cache(maxsize=256)
def configured(name: str, value: str) -> str:
    """A header from the settings (`From`, `Reply-To`), folded by the stdlib's own address
    header class once per value: the settings checked it is one line of one or more
    mailboxes, and a non-ASCII display name is written as the stdlib writes it."""
    header = policy.SMTP.header_factory(name, value)
    return _checked(header.fold(policy=policy.SMTP))


@functools.lru_cache(maxsize=256)
def envelope_address(value: str) -> str:
    """The addr-spec of the first mailbox of a header value from the settings (`MAIL FROM`)."""
    header = policy.SMTP.header_factory("From", value)
    return str(header.addresses[0].addr_spec)


def _needs_words(word: str) -> bool:
    return not word.isascii() or "=?" in word


def _encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 B-encoded words, each of whole characters and at most 75 long."""
    words: list[str] = []
    chunk = bytearray()
    for char in text:
        raw = char.encode("utf-8")
        if len(chunk) + len(raw) > _WORD_BYTES:
            words.append(_word(chunk))
            chunk.clear()
        chunk += raw
    if chunk:
        words.append(_word(chunk))
    return words


def _word(raw: bytes | bytearray) -> str:
    return f"=?utf-8?b?{binascii.b2a_base64(raw, newline=False).decode('ascii')}?="


def _phrase_tokens(text: str) -> list[str]:
    """The words of `text` as header tokens: runs of words that need encoding become encoded
    words (the spaces between them inside, as a decoder drops whitespace between two encoded
    words), the others stay as they are."""
    tokens: list[str] = []
    run: list[str] = []
    for word in text.split(" "):
        if _needs_words(word) or (len(word) > _FOLD - 10):
            run.append(word)
            continue
        if run:
            tokens += _encoded_words(" ".join(run))
            run = []
        tokens.append(word)
    if run:
        tokens += _encoded_words(" ".join(run))
    return [t for t in tokens if t]


def _fold(name: str, tokens: list[str]) -> str:
    """`name: ` and the tokens joined by spaces, a line break before a token that would pass
    78 characters."""
    lines: list[str] = []
    line = f"{name}:"
    for token in tokens:
        if len(line) + 1 + len(token) > _FOLD and line != f"{name}:":
            lines.append(line)
            line = ""
        line = f"{line} {token}"
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def _unstructured(name: str, text: str) -> str:
    """`Subject`: plain where it can be, encoded words where it must."""
    return _checked(_fold(name, _phrase_tokens(text)))


def _mailbox(name: str, display_name: str, address: str) -> str:
    """`To`: one mailbox; the display name quoted when it holds specials, as encoded words when
    it holds anything but ASCII."""
    if not display_name:
        return _token(name, address)
    words = display_name.split(" ")
    quoted = display_name.replace("\\", "\\\\").replace('"', '\\"')
    if any(_needs_words(w) or len(w) > _FOLD - 10 for w in words) or (
        _SPECIALS.intersection(display_name) and len(quoted) > _FOLD - 12
    ):
        tokens = _encoded_words(display_name)
    elif _SPECIALS.intersection(display_name):
        tokens = [f'"{quoted}"']
    else:
        tokens = words
    return _checked(_fold(name, [*tokens, f"<{address}>"]))
