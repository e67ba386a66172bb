"""notify's MIME writer (adapters/mime.py) against the stdlib: what it writes parses back
strictly to the parts it was given, and to the same message the stdlib's `EmailMessage` makes
of those parts, for text chosen to be awkward."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from zoneinfo import ZoneInfo

import pytest

from nps_events import NotifyStaff, Segment, StaffReason
from nps_kit.clock import FrozenClock
from nps_notify.adapters.email import SmtpEmailChannel, TemplateRenderer
from nps_notify.adapters.mime import Draft, to_bytes
from nps_notify.config import SmtpSettings
from nps_notify.domain.dispatch import EmailJob
from nps_notify.domain.messages import body_text, header_text
from nps_notify.handlers import email_job
from tests.support.stdlib_email import stdlib_bytes

NOW = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)

#: Names and comments a customer may send: accents, other scripts, right-to-left text with
#: its marks, emoji with joiners and skin tones, bidi overrides and zero-width characters,
#: RFC 5322 specials, a would-be header, and lengths past any line.
NAMES = [
    "Zoë Ñandú",
    "Ада Лавлейс",
    "李小龍",
    "\u200fمحمد\u200f الأحمد",
    "Ada 👩🏽\u200d💻 Lovelace",
    "Ada\u202eexe.gnp\u200b",
    'Eve "the \\ admin", Jr. <eve@x.example>',
    "Eve\r\nBcc: x@example.com",
    "Ada " * 60,
    "Zoë " * 40,
    "x" * 300,
    "",
]
COMMENTS = [
    "slow delivery, and the box was damaged 📦",
    "fine\u2066 until \u202edelivery\u200d\u200b — très lent",
    "=_ and =?utf-8?b?QmNjOiB4?= and --=_ boundary-like text",
    "word " * 400,
    "x" * 2000,
    ".\nFrom the start\n. a dot line\ntrailing spaces   \nline\u2028separated",
    "نظرًا للتأخير 👍🏿👨\u200d👩\u200d👧",
]


def _channel(**smtp: object) -> SmtpEmailChannel:
    return SmtpEmailChannel(
        SmtpSettings.model_validate(
            {
                "from_address": "Café Zoë <noreply@shop.example>",
                "reply_to": "Customer success <cs@shop.example>",
                "unsubscribe_url": "https://shop.example/optout?customer={customer_id}",
            }
            | smtp
        ),
        renderer=TemplateRenderer(),
        attempts=1,
        clock=FrozenClock(NOW),
    )


def _job(name: str, comment: str, *, locale: str | None = None) -> EmailJob:
    return EmailJob(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id="c/1 ü",
        channel="email",
        template="detractor_apology",
        to_address="ada@exämple.com",
        to_name=name,
        context={"name": name, "score": 2, "comment": comment},
        locale=locale,
    )


def _staff_job() -> EmailJob:
    notice = NotifyStaff(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id="c-1",
        customer_name="Zoë 👍",
        comment=COMMENTS[1],
        recipient="lead@example.com",
        role="owner",
        reason=StaffReason.ASSIGNED,
        level=0,
        due_at=NOW,
        segment=Segment.DETRACTOR,
        score=2,
        requested_at=NOW,
    )
    return email_job(notice, case_url="https://cs.example.com/cases/{case_id}")


def _drafts() -> list[Draft]:
    channel = _channel()
    drafts = [
        channel.draft_for(_job(name, comment, locale=locale))
        for name, comment, locale in zip(
            NAMES, COMMENTS * 2, ["fr", "de", None, "es", "pt", None, "en"] * 2, strict=False
        )
    ]
    drafts.append(channel.draft_for(_staff_job()))
    # A subject beyond any template: long words, long runs of encoded words, emoji.
    for subject in (
        "Your answer " * 30,
        "Ünïcödé " * 30,
        "📦" * 100,
        "a" * 1200,
        "RE: [case 12] ça va? 👍 " * 8,
    ):
        drafts.append(
            Draft(
                **{
                    **_fields(drafts[0]),
                    "subject": header_text(subject),
                    "text": body_text(subject),
                }
            )
        )
    return drafts


def _fields(draft: Draft) -> dict[str, object]:
    return {f: getattr(draft, f) for f in Draft.__dataclass_fields__}


DRAFTS = _drafts()


def _parsed(data: bytes, strict: bool = False) -> EmailMessage:
    parser = BytesParser(policy=policy.strict if strict else policy.default)
    message = parser.parsebytes(data.replace(b"\r\n", b"\n"))
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize("draft", DRAFTS, ids=lambda d: d.subject[:20])
def test_the_bytes_are_ascii_crlf_lines_of_at_most_998_characters(draft: Draft) -> None:
    data = to_bytes(draft)
    assert data.isascii()
    assert data.endswith(b"\r\n")
    lines = data[:-2].split(b"\r\n")
    assert not any(b"\r" in line or b"\n" in line for line in lines)
    assert max(len(line) for line in lines) <= 998
    # Everything npsloop writes itself (all but a configured header) keeps to 78.
    assert max(len(line) for line in lines) <= 78


@pytest.mark.parametrize("draft", DRAFTS, ids=lambda d: d.subject[:20])
def test_the_bytes_parse_strictly_back_to_the_parts_they_were_written_from(draft: Draft) -> None:
    data = to_bytes(draft)
    message = _parsed(data, strict=True)
    for part in message.walk():
        assert not part.defects, part.defects
    assert message["Date"].datetime == draft.date
    assert str(message["Subject"]) == draft.subject
    [to] = message["To"].addresses
    assert to.addr_spec == draft.to_address
    assert _display_name(data) == draft.to_name
    assert len(message.get_all("To")) == 1
    assert message["Bcc"] is None
    assert str(message["From"]) == draft.sender
    assert str(message["Reply-To"]) == draft.reply_to
    assert message["Message-ID"] == draft.message_id
    assert message["In-Reply-To"] == message["References"] == draft.thread
    assert message["List-Unsubscribe"] == draft.list_unsubscribe
    assert message["Content-Language"] == draft.language
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert text.get_content() == _lines(draft.text)
    assert html.get_content() == _lines(draft.html)


def _lines(content: str) -> str:
    """`content` as the stdlib's `set_content` keeps it: CR, LF or CRLF end a line."""
    return "\n".join(re.split("\r\n|\r|\n", content.removesuffix("\n"))) + "\n"


def _display_name(data: bytes) -> str:
    """The `To` display name as RFC 2047 §6.2 reads it: the whitespace between two adjacent
    encoded words is dropped. (The stdlib's parser, as of 3.11, keeps it in an address's
    display name, though not in `Subject`: it reads its own writer's long names with spaces
    added, `Zo ë`.)"""
    raw = message_from_bytes(data, policy=policy.compat32)["To"]
    return parseaddr(str(make_header(decode_header(raw))))[0]


def _summary(message: EmailMessage) -> list[object]:
    headers = [
        (k, str(v)) if k != "Content-Type" else (k, message.get_content_type())
        for k, v in message.items()
    ]
    parts = [
        (p.get_content_type(), p.get_content_charset(), p.get_content())
        for p in message.iter_parts()
    ]
    return [headers, parts]


@pytest.mark.parametrize("draft", DRAFTS, ids=lambda d: d.subject[:20])
def test_the_stdlibs_email_message_reads_the_same_from_both_writers(draft: Draft) -> None:
    ours = _summary(_parsed(to_bytes(draft)))
    theirs = _summary(_parsed(stdlib_bytes(draft)))
    assert ours[1] == theirs[1]  # the parts
    for (name, mine), (their_name, stdlib) in zip(ours[0], theirs[0], strict=True):
        assert name == their_name
        if name in ("Subject", "To"):
            # The stdlib's folding of long text moves spaces: its own round trip drops one
            # before an encoded word (`[case 12]ça`) and adds them inside a long address
            # phrase. The other test holds ours to the draft; here the text agrees.
            assert "".join(mine.split()) == "".join(stdlib.split()), name
        else:
            assert mine == stdlib, name


def test_text_that_looks_like_an_encoded_word_is_shown_as_it_was_written() -> None:
    draft = _channel().draft_for(_job("=?utf-8?b?QmNjOiB4?=", "hi"))
    message = _parsed(to_bytes(draft), strict=True)
    assert str(message["Subject"]).startswith("=?utf-8?b?QmNjOiB4?=, we are sorry")
    assert message["To"].addresses[0].display_name == "=?utf-8?b?QmNjOiB4?="


@pytest.mark.parametrize(
    "field",
    [
        {"subject": "hi\r\nBcc: x@example.com"},
        {"subject": "hi\nBcc: x@example.com"},
        {"to_name": "Eve\r\nBcc: x@example.com"},
        {"message_id": "<a@b>\r\nBcc: x@example.com"},
        {"list_unsubscribe": "<mailto:a@b>\r\nBcc: x@example.com"},
    ],
)
def test_a_part_that_would_add_a_header_is_refused_not_written(field: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        to_bytes(Draft(**{**_fields(DRAFTS[0]), **field}))


def test_what_the_channel_hands_the_server_is_one_recipient_and_the_senders_address() -> None:
    job = _job("Zoë", "slow")
    message = _channel().message_for(job)
    assert (message.sender, message.recipient) == ("noreply@shop.example", "ada@xn--exmple-cua.com")
    assert message.message_id == f"<{job.action_id}@shop.example>"
    parsed = message_from_bytes(message.data, policy=policy.default)
    assert str(parsed["From"]) == "Café Zoë <noreply@shop.example>"


def test_one_instant_in_two_zones_is_dated_in_each_ones_offset() -> None:
    # The Date header is formatted once per second: one instant in another zone is still
    # written with its own offset, and the next second is written anew.
    at = datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC)
    paris = at.astimezone(ZoneInfo("Europe/Paris"))
    dates = [
        _parsed(to_bytes(Draft(**{**_fields(DRAFTS[0]), "date": when})))["Date"]
        for when in (at, paris, at + timedelta(seconds=1), at.replace(microsecond=0))
    ]
    assert dates == [
        "Wed, 25 Nov 2026 09:30:15 +0000",
        "Wed, 25 Nov 2026 10:30:15 +0100",
        "Wed, 25 Nov 2026 09:30:16 +0000",
        "Wed, 25 Nov 2026 09:30:15 +0000",
    ]
