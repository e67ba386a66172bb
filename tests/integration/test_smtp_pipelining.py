"""notify's SMTP channel against relays that advertise PIPELINING (RFC 2920): `MAIL FROM`,
`RCPT TO` and `DATA` in one write, each reply checked in order with the meaning it has in the
one-command-at-a-time exchange, and the message's bytes exactly as that exchange sends them.
The relays are real SMTP servers: Postfix's smtp-sink (which advertises PIPELINING and, on
request, answers a chosen command with 421, hangs up, or stalls) and aiosmtpd told to
advertise it (it reads pipelined commands one line at a time, as any server may)."""

import ssl
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from nps_kit.clock import FrozenClock
from nps_kit.devstack import free_port
from nps_notify.adapters.email import SmtpEmailChannel, TemplateRenderer
from nps_notify.config import SmtpSettings
from nps_notify.domain.dispatch import DispatchState, EmailJob
from tests.support.smtp_sink import smtp_sink

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)


def _job(to: str, **context: Any) -> EmailJob:
    return EmailJob(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id="c-1",
        channel="email",
        template="detractor_apology",
        to_address=to,
        to_name="Ada",
        context={"name": "Ada", "score": 2, "comment": None, **context},
    )


def _stored(message: bytes) -> bytes:
    """The message as smtp-sink stored it, without the envelope lines and the `Received:`
    header it puts above it (a first line and tab-indented ones), and the empty line it adds
    at the end."""
    lines = message.split(b"\n")
    while lines[0].startswith(b"X-"):
        lines.pop(0)
    assert lines.pop(0).startswith(b"Received: ")
    while lines[0].startswith(b"\t"):
        lines.pop(0)
    return b"\n".join(lines).removesuffix(b"\n")


@pytest.fixture
def templates(tmp_path: Path) -> TemplateRenderer:
    """The shipped templates, with a text body whose lines start with a dot (the one line the
    exchange must double, RFC 5321 4.5.2) and one that is a dot alone."""
    directory = tmp_path / "templates" / "detractor_apology"
    directory.mkdir(parents=True)
    (directory / "body.txt.j2").write_text(
        "Hello {{ name }},\n.\n.. and a line starting with a dot\n{{ signature }}\n"
    )
    return TemplateRenderer(tmp_path / "templates")


@pytest.mark.parametrize(
    ("sink_options", "setting", "pipelined"),
    [
        ((), True, True),
        (("-p",), True, False),  # the relay does not advertise PIPELINING
        ((), False, False),  # SMTP_PIPELINING=false
    ],
    ids=["pipelined", "relay-without-pipelining", "turned-off"],
)
async def test_emails_arrive_as_built_whether_pipelined_or_not(
    tmp_path: Path,
    templates: TemplateRenderer,
    sink_options: tuple[str, ...],
    setting: bool,
    pipelined: bool,
) -> None:
    with smtp_sink(tmp_path / "mail", *sink_options) as sink:
        channel = SmtpEmailChannel(
            SmtpSettings(port=sink.port, max_connections=1, pipelining=setting),
            renderer=templates,
            attempts=1,
            clock=FrozenClock(NOW),
        )
        jobs = [_job(f"n{i}@example.com") for i in range(3)]
        with structlog.testing.capture_logs() as logged:
            outcomes = [await channel.send(job) for job in jobs]
        await channel.aclose()
        stored = [_stored(m) for m in sink.messages()]
    assert [o.state for o in outcomes] == [DispatchState.SENT] * 3, outcomes
    connected = [e for e in logged if e["event"] == "smtp.connected"]
    assert [e["pipelining"] for e in connected] == [pipelined]  # one connection, kept open
    expected = [channel.message_for(job).data.replace(b"\r\n", b"\n") for job in jobs]
    assert sorted(stored) == sorted(expected)
    assert b"\n.\n.. and a line starting with a dot\n" in stored[0]


@pytest.mark.parametrize(
    ("sink_options", "reason"),
    [
        (("-Q", "MAIL"), "SMTP: (421, "),  # 421 to MAIL, then it hangs up: the relay's words
        (("-Q", "."), "SMTP: (421, "),  # 421 to the message
        (("-q", "RCPT"), "SMTP: Unexpected EOF received"),  # hangs up without a word
        (("-W", "DATA:3"), "SMTP: the SMTP server did not answer within 0.3 s"),
    ],
    ids=["421-to-mail", "421-to-the-message", "hang-up-after-rcpt", "silent-after-data"],
)
async def test_a_pipelined_exchange_the_relay_breaks_fails_that_email_and_not_the_next(
    tmp_path: Path, sink_options: tuple[str, ...], reason: str
) -> None:
    with smtp_sink(tmp_path / "mail", *sink_options) as sink:
        channel = SmtpEmailChannel(
            SmtpSettings(port=sink.port, max_connections=1, timeout_seconds=0.3),
            renderer=TemplateRenderer(),
            attempts=1,
        )
        with structlog.testing.capture_logs() as logged:
            broken = await channel.send(_job("broken@example.com"))
            again = await channel.send(_job("again@example.com"))
        await channel.aclose()
    assert broken.state is DispatchState.FAILED
    assert (broken.reason or "").startswith(reason), broken.reason
    assert again.state is DispatchState.FAILED  # the same fault, on a new connection
    connected = [e for e in logged if e["event"] == "smtp.connected"]
    assert [e["pipelining"] for e in connected] == [True, True]  # never reused


class _Refusing:
    """aiosmtpd advertising PIPELINING; refuses the sender `refused@…` and the recipients
    `refused@…` (550) and `busy@…` (450), and `greylisted@…` the first time (451); counts
    connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.recipients: list[str] = []
        self.greylisted: set[str] = set()

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused@"):
            return "550 5.7.1 sender refused"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused@"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("busy@"):
            return "450 4.2.1 mailbox busy, try later"
        if address.startswith("greylisted@") and address not in self.greylisted:
            self.greylisted.add(address)
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def refusing() -> Iterator[tuple[Controller, _Refusing]]:
    handler = _Refusing()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


@pytest.mark.parametrize(
    ("sender", "to", "said"),
    [
        (
            "npsloop <noreply@npsloop.localhost>",
            "refused@example.com",
            "(550, '5.1.1 no such mailbox",
        ),
        ("npsloop <noreply@npsloop.localhost>", "busy@example.com", "(450, '4.2.1 mailbox busy"),
        ("npsloop <refused@npsloop.localhost>", "ada@example.com", "(550, '5.7.1 sender refused"),
    ],
    ids=["recipient-550", "recipient-450", "sender-550"],
)
async def test_a_refusal_fails_that_email_with_the_relays_words_and_keeps_the_connection(
    refusing: tuple[Controller, _Refusing], sender: str, to: str, said: str
) -> None:
    controller, handler = refusing
    refused_channel = SmtpEmailChannel(
        SmtpSettings(port=controller.port, max_connections=1, from_address=sender),
        renderer=TemplateRenderer(),
        attempts=1,
    )
    with structlog.testing.capture_logs() as logged:
        refused = await refused_channel.send(_job(to))
        # The replies still owed were read and the transaction reset: the same connection
        # takes the next email.
        after = await refused_channel.send(_job("after@example.com"))
    await refused_channel.aclose()
    assert refused.state is DispatchState.FAILED
    assert said in (refused.reason or ""), refused.reason
    connected = [e for e in logged if e["event"] == "smtp.connected"]
    assert [e["pipelining"] for e in connected] == [True]
    if sender.startswith("npsloop <refused@"):
        assert after.state is DispatchState.FAILED  # this sender is always refused
        assert handler.recipients == []
    else:
        assert after.state is DispatchState.SENT, after.reason
        assert handler.recipients == ["after@example.com"]
    assert handler.connections == 1


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-command"])
async def test_a_recipient_the_relay_asks_to_try_later_is_tried_again_and_sent(
    refusing: tuple[Controller, _Refusing], pipelining: bool
) -> None:
    """A 4xx to RCPT (greylisting) is a transient fault like any other 4xx: tried again, and
    sent once the relay takes it (before, it failed the email at once)."""
    controller, handler = refusing
    channel = SmtpEmailChannel(
        SmtpSettings(port=controller.port, max_connections=1, pipelining=pipelining),
        renderer=TemplateRenderer(),
        attempts=3,
    )
    outcome = await channel.send(_job("greylisted@example.com"))
    await channel.aclose()
    assert outcome.state is DispatchState.SENT, outcome.reason
    assert handler.greylisted == {"greylisted@example.com"}
    assert handler.recipients == ["greylisted@example.com"]


async def test_pipelined_emails_go_over_starttls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STARTTLS, then EHLO again over TLS, then the pipelined exchange on the TLS transport."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # the channel's default CAs
    handler = _Refusing()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_context,
        require_starttls=True,
    )
    controller.start()
    try:
        channel = SmtpEmailChannel(
            SmtpSettings(port=controller.port, security="starttls", max_connections=1),
            renderer=TemplateRenderer(),
            attempts=1,
        )
        with structlog.testing.capture_logs() as logged:
            outcomes = [await channel.send(_job(f"t{i}@example.com")) for i in range(2)]
            refused = await channel.send(_job("refused@example.com"))
            after = await channel.send(_job("after@example.com"))
        await channel.aclose()
    finally:
        controller.stop()
    assert [o.state for o in outcomes] == [DispatchState.SENT] * 2, outcomes
    assert refused.state is DispatchState.FAILED
    assert after.state is DispatchState.SENT, after.reason
    assert handler.recipients == ["t0@example.com", "t1@example.com", "after@example.com"]
    connected = [e for e in logged if e["event"] == "smtp.connected"]
    assert [e["pipelining"] for e in connected] == [True]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("notify.acme.example", b"notify.acme.example"), ("[192.0.2.10]", b"[192.0.2.10]")],
)
async def test_notify_greets_the_relay_with_the_configured_name(
    tmp_path: Path, templates: TemplateRenderer, setting: str, expected: bytes
) -> None:
    with smtp_sink(tmp_path / "mail") as sink:
        channel = SmtpEmailChannel(
            SmtpSettings(port=sink.port, max_connections=1, local_hostname=setting),
            renderer=templates,
            attempts=1,
            clock=FrozenClock(NOW),
        )
        outcome = await channel.send(_job("ada@example.com"))
        await channel.aclose()
        (message,) = sink.messages()
    assert outcome.state is DispatchState.SENT, outcome
    assert message.split(b"\n")[2] == b"X-Helo-Args: " + expected  # smtp-sink's record of EHLO


def test_an_ehlo_name_that_is_no_domain_nor_address_literal_is_refused_at_start_up() -> None:
    for wrong in ("notify pod", "", "[not an address]", "-notify.example", "notify.example\r\n"):
        with pytest.raises(ValueError, match="local_hostname"):
            SmtpSettings(local_hostname=wrong)
