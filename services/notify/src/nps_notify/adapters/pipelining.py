"""One SMTP mail transaction in two round trips, where the relay offers PIPELINING (RFC 2920).

`MAIL FROM`, `RCPT TO` and `DATA` go out in one write and their three replies are read in
order; then the message and its final reply. aiosmtplib (5.1) keeps doing what it does well,
connecting, EHLO, STARTTLS and AUTH; it cannot read pipelined replies (it parses one reply per
write and drops what arrives while that one waits to be read), so once the relay's EHLO
advertises PIPELINING the connection's transport hands what it receives to `Replies`, which
keeps every complete reply in order.

Measured against Postfix's smtp-sink (docs/performance.md, "Issue #20, third session: …,
part 2"): the exchange's CPU per email −40% (0.12 → 0.08 ms, 8 emails in flight; 0.24 →
0.15 ms one at a time), and one round trip to the relay per email instead of three before the
message, which is what a relay across a network makes each email wait for.

Every reply is checked, in order, with the meaning of the unpipelined exchange (email.py's
`_transaction`): the exception raised is the one it raises for the same refusal, so a 4xx
stays transient and a 5xx fails the email with the relay's words. After a refusal the replies
still owed are read and the transaction is reset (`RSET`), so the connection stays in step with
the relay and can be used again; a timeout, a lost connection or a reply out of step leaves it
`in_step = False`, and the caller closes it."""

import asyncio
import contextlib
from collections import deque
from typing import cast

import aiosmtplib
from aiosmtplib import SMTPStatus
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from aiosmtplib.response import SMTPResponse

__all__ = ["Replies", "as_sent", "pipelined_transaction", "split_replies"]

#: One reply's lines together (aiosmtplib's bound: a real EHLO reply is a few KB).
MAX_REPLY_BYTES = 8192 * 4


def split_replies(buffer: bytearray) -> list[SMTPResponse]:
    """Take every complete reply off the front of `buffer`, in order; what is left is the
    start of a reply still arriving. A reply is one or more lines `ddd-text` ending with a line
    `ddd text` (RFC 5321, 4.2); its message is the lines' texts joined by newlines, as
    aiosmtplib makes it. A line that does not start with a code, or a reply longer than
    `MAX_REPLY_BYTES`, raises `SMTPResponseException` (-1): the connection is out of step."""
    replies = []
    start = 0
    while True:
        lines: list[bytes] = []
        at = start
        while (end := buffer.find(b"\n", at)) != -1:
            line = bytes(buffer[at : end + 1])
            if not line[:3].isdigit():
                text = line.decode("utf-8", "replace").strip()
                raise aiosmtplib.SMTPResponseException(
                    SMTPStatus.invalid_response, f"Malformed SMTP response line: {text}"
                )
            lines.append(line)
            at = end + 1
            if at - start > MAX_REPLY_BYTES:
                raise aiosmtplib.SMTPResponseException(
                    SMTPStatus.invalid_response, "Response too long"
                )
            if line[3:4] != b"-":
                break
        else:  # no last line yet
            if len(buffer) - start > MAX_REPLY_BYTES:
                raise aiosmtplib.SMTPResponseException(
                    SMTPStatus.invalid_response, "Response too long"
                )
            break
        message = b"\n".join(line[4:].strip(b" \t\r\n") for line in lines)
        replies.append(SMTPResponse(int(lines[-1][:3]), message.decode("utf-8", "surrogateescape")))
        start = at
    del buffer[:start]
    return replies


class Replies(asyncio.Protocol):
    """The receiving side of one connection past EHLO: every reply the relay sends, kept in
    order until read. It replaces aiosmtplib's protocol on the transport (`install`) and
    passes it what aiosmtplib must still learn: a lost connection (so `SMTP.is_connected`
    turns false and the connection is never reused) and the transport's flow control."""

    def __init__(self, inner: asyncio.BaseProtocol, transport: asyncio.WriteTransport) -> None:
        self._inner = inner
        self._transport = transport
        self._buffer = bytearray()
        self._replies: deque[SMTPResponse] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._fault: Exception | None = None
        self._step = True
        self._closing = False  # the relay said 421: it closes the connection (RFC 5321 3.8)

    @property
    def open(self) -> bool:
        """The relay neither closed the connection nor said it will (421)."""
        return not self._closing and self._fault is None

    @property
    def in_step(self) -> bool:
        """Open, with no reply owed and none unread: it may carry the next transaction."""
        return self._step and self.open

    @in_step.setter
    def in_step(self, value: bool) -> None:
        self._step = value

    @classmethod
    def install(cls, smtp: aiosmtplib.SMTP) -> "Replies":
        """Take over the receiving side of `smtp`'s connection (past EHLO, nothing owed)."""
        if smtp.protocol is None or smtp.transport is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        transport = cast(asyncio.WriteTransport, smtp.transport)
        replies = cls(smtp.protocol, transport)
        transport.set_protocol(replies)
        return replies

    def write(self, data: bytes) -> None:
        if self._fault is not None:
            raise self._fault
        if self._transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        self._transport.write(data)

    async def next(self) -> SMTPResponse:
        """The next reply, in the order the commands went out."""
        while not self._replies:
            if self._fault is not None:
                raise self._fault
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        reply = self._replies.popleft()
        if reply.code == SMTPStatus.domain_unavailable:
            self._closing = True
        return reply

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            self._replies.extend(split_replies(self._buffer))
        except aiosmtplib.SMTPResponseException as exc:
            self._fail(exc)
            self._transport.close()
            return
        if self._replies:
            self._wake()

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(aiosmtplib.SMTPServerDisconnected("Connection lost"))
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _fail(self, exc: Exception) -> None:
        if self._fault is None:
            self._fault = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def as_sent(data: bytes) -> bytes:
    """`data` as `DATA` carries it: every line ending CRLF, the message ending in one, and a
    line starting with a dot doubled, exactly as aiosmtplib's `data` sends it. The messages
    adapters/mime.py writes already end every line in CRLF and rarely hold a line starting
    with a dot, so two regular-expression passes over every message (~4% of notify's CPU in
    the pipeline) are made only when a count says they would change something."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf or not data.endswith(b"\r\n"):
        data = normalize_message_line_endings(data)
    if data.startswith(b".") or b"\n." in data:
        data = PERIOD_REGEX.sub(b"..", data)
    return data


async def pipelined_transaction(
    replies: Replies, *, sender: str, recipient: str, data: bytes, size: bool
) -> None:
    """`MAIL FROM` (with `SIZE` when `size`), `RCPT TO` and `DATA` in one write, their replies
    read in order, then the message (its line ends made CRLF and its lines starting with a dot
    doubled, exactly as aiosmtplib's `data` sends it) and its reply. No timer of its own: the
    caller's deadline covers every reply. A refusal raises what email.py's `_transaction`
    raises for it, after the transaction is reset where the connection allows."""
    replies.in_step = False
    mail_from = b"MAIL FROM:<" + sender.encode("ascii") + b">"
    if size:
        mail_from += b" SIZE=%d" % len(data)
    replies.write(mail_from + b"\r\nRCPT TO:<" + recipient.encode("ascii") + b">\r\nDATA\r\n")
    refusal: aiosmtplib.SMTPException | None = None
    try:
        mail = await replies.next()
        if mail.code != SMTPStatus.completed:
            refusal = aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender)
        rcpt = await replies.next()
        if refusal is None and rcpt.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
            refusal = aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(rcpt.code, rcpt.message, recipient)]
            )
        start = await replies.next()
    except aiosmtplib.SMTPServerDisconnected:
        if refusal is not None:  # a relay closing after a refusal (421): its words, not ours
            raise refusal from None
        raise
    if refusal is None and start.code != SMTPStatus.start_input:
        refusal = aiosmtplib.SMTPDataError(start.code, start.message)
    if refusal is not None:
        if start.code != SMTPStatus.start_input and replies.open:
            # Else the relay closes, or waits for a message (354 after a refusal): closed.
            with contextlib.suppress(aiosmtplib.SMTPServerDisconnected):
                replies.write(b"RSET\r\n")
                reset = await replies.next()
                replies.in_step = reset.code == SMTPStatus.completed
        raise refusal
    replies.write(as_sent(data) + b".\r\n")
    final = await replies.next()
    replies.in_step = True  # the relay answered the message: the transaction is over
    if final.code != SMTPStatus.completed:
        raise aiosmtplib.SMTPDataError(final.code, final.message)
