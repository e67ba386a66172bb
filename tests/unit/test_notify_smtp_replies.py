"""Reading an SMTP relay's replies as they arrive when commands are pipelined (RFC 2920):
several replies in one read, one reply over several reads, multi-line replies (RFC 5321 4.2),
and what cannot be a reply; and a message's bytes as `DATA` carries them."""

import aiosmtplib
import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from aiosmtplib.response import SMTPResponse

from nps_notify.adapters.pipelining import MAX_REPLY_BYTES, as_sent, split_replies


def test_three_replies_in_one_read_come_out_in_order() -> None:
    buffer = bytearray(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
    assert split_replies(buffer) == [
        SMTPResponse(250, "2.1.0 Ok"),
        SMTPResponse(250, "2.1.5 Ok"),
        SMTPResponse(354, "End data with <CR><LF>.<CR><LF>"),
    ]
    assert buffer == b""


def test_a_reply_cut_anywhere_is_kept_until_its_last_line_arrives() -> None:
    whole = b"250-first line\r\n250 last line\r\n550 5.1.1 no such mailbox\r\n"
    for cut in range(1, len(whole)):
        buffer = bytearray(whole[:cut])
        got = split_replies(buffer)
        buffer += whole[cut:]
        got += split_replies(buffer)
        assert got == [
            SMTPResponse(250, "first line\nlast line"),
            SMTPResponse(550, "5.1.1 no such mailbox"),
        ], cut
        assert buffer == b""


def test_an_empty_text_and_bare_line_feeds_are_replies_too() -> None:
    assert split_replies(bytearray(b"250 \r\n221 Bye\n")) == [
        SMTPResponse(250, ""),
        SMTPResponse(221, "Bye"),
    ]


@pytest.mark.parametrize(
    "received", [b"hello\r\n", b"25\r\n", b"250 Ok\r\n*** garbage\r\n"], ids=repr
)
def test_a_line_without_a_reply_code_is_a_malformed_reply(received: bytes) -> None:
    with pytest.raises(aiosmtplib.SMTPResponseException) as raised:
        split_replies(bytearray(received))
    assert raised.value.code == -1
    assert "Malformed SMTP response line" in raised.value.message


@pytest.mark.parametrize(
    "received",
    [b"250-" + b"x" * MAX_REPLY_BYTES, b"250-x\r\n" * (MAX_REPLY_BYTES // 7 + 1)],
    ids=["one-endless-line", "endless-continuations"],
)
def test_a_reply_that_never_ends_is_refused_rather_than_kept(received: bytes) -> None:
    with pytest.raises(aiosmtplib.SMTPResponseException, match="Response too long"):
        split_replies(bytearray(received))


def _aiosmtplib_data(data: bytes) -> bytes:
    """What aiosmtplib's `data` sends for `data`, before the final `.` line."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"Subject: x\r\n\r\nbody\r\n",
        b"Subject: x\r\n\r\nno line end at the end",
        b"bare\nline\nfeeds\n",
        b"bare\rcarriage\rreturns\r",
        b"mixed\r\n\n\r\r\n\n\rend",
        b"a\n\r\nb\r\n",
        b".starts with a dot\r\n",
        b"x\r\n.a dotted line\r\n..two dots\r\n",
        b"x\n.after a bare line feed\r\n",
        b"x\r.after a bare carriage return\r\n",
        b"a dot . inside\r\n.\r\n",
    ],
)
def test_a_message_goes_out_as_aiosmtplib_sends_it(data: bytes) -> None:
    assert as_sent(data) == _aiosmtplib_data(data)


def test_any_mix_of_line_ends_and_dots_goes_out_as_aiosmtplib_sends_it() -> None:
    # Every string of up to 6 of these pieces: each line end, a dot, a letter.
    pieces = [b"\r", b"\n", b"\r\n", b".", b"a"]
    strings = [b""]
    for _ in range(6):
        strings = [s + p for s in strings for p in pieces]
        for data in strings:
            assert as_sent(data) == _aiosmtplib_data(data), data
