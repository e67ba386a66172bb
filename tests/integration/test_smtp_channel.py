"""notify's SMTP channel against a real SMTP server: connections are kept open and reused,
a connection the server dropped is replaced without losing the message, and no input adds a
header or a recipient."""

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from nps_kit.clock import FrozenClock
from nps_kit.devstack import free_port
from nps_notify.adapters.email import SmtpEmailChannel, TemplateRenderer
from nps_notify.config import SmtpSettings
from nps_notify.domain.dispatch import DispatchState, EmailJob


class _Counting:
    """Counts connections (one EHLO each) and keeps what it receives."""

    def __init__(self) -> None:
        self.connections = 0
        self.recipients: list[str] = []
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []

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
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.recipients.extend(envelope.rcpt_tos)
        content = envelope.original_content or b""
        self.raw.append(content)
        self.messages.append(message_from_bytes(content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, _Counting]]:
    handler = _Counting()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    # A test may have stopped it already; stop() then finds no daemon and no loop.
    with contextlib.suppress(RuntimeError, AssertionError):
        controller.stop()


def _job(to: str, name: str = "Ada", **fields: Any) -> EmailJob:
    return EmailJob(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id="c-1",
        channel="email",
        template="detractor_apology",
        to_address=to,
        to_name=name,
        context={"name": name, "score": 2, "comment": None},
        **fields,
    )


async def test_messages_share_one_kept_open_connection(
    smtp_server: tuple[Controller, _Counting],
) -> None:
    controller, handler = smtp_server
    channel = SmtpEmailChannel(
        SmtpSettings(port=controller.port, max_connections=1),
        renderer=TemplateRenderer(),
        attempts=1,
    )
    outcomes = [await channel.send(_job(f"n{i}@example.com")) for i in range(5)]
    await channel.aclose()
    assert [o.state for o in outcomes] == [DispatchState.SENT] * 5
    assert handler.recipients == [f"n{i}@example.com" for i in range(5)]
    assert handler.connections == 1


async def test_concurrent_sends_open_no_more_connections_than_smtp_max_connections(
    smtp_server: tuple[Controller, _Counting],
) -> None:
    controller, handler = smtp_server
    channel = SmtpEmailChannel(
        SmtpSettings(port=controller.port, max_connections=2),
        renderer=TemplateRenderer(),
        attempts=1,
    )
    outcomes = await asyncio.gather(*(channel.send(_job(f"c{i}@example.com")) for i in range(8)))
    await channel.aclose()
    assert [o.state for o in outcomes] == [DispatchState.SENT] * 8
    assert sorted(handler.recipients) == sorted(f"c{i}@example.com" for i in range(8))
    assert handler.connections == 2


async def test_a_connection_the_server_dropped_is_replaced_and_the_message_sent(
    smtp_server: tuple[Controller, _Counting],
) -> None:
    controller, handler = smtp_server
    channel = SmtpEmailChannel(
        SmtpSettings(port=controller.port, max_connections=1),
        renderer=TemplateRenderer(),
        attempts=3,
    )
    assert (await channel.send(_job("before@example.com"))).state is DispatchState.SENT
    controller.stop()  # the server goes away, closing the kept-open connection
    again = Controller(handler, hostname="127.0.0.1", port=controller.port)
    again.start()
    try:
        outcome = await channel.send(_job("after@example.com"))
        await channel.aclose()
    finally:
        again.stop()
    assert outcome.state is DispatchState.SENT
    assert handler.recipients == ["before@example.com", "after@example.com"]
    assert handler.connections == 2


class _Refusing(_Counting):
    """Refuses one recipient (550), and holds the answer to DATA of another until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.startswith("refused@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if envelope.rcpt_tos == ["stuck@example.com"]:
            await asyncio.to_thread(self.release.wait, 10)
        return await super().handle_DATA(server, session, envelope)


async def test_a_refused_recipient_or_a_silent_server_fails_that_email_and_not_the_next() -> None:
    handler = _Refusing()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    channel = SmtpEmailChannel(
        SmtpSettings(port=controller.port, timeout_seconds=0.5, max_connections=1),
        renderer=TemplateRenderer(),
        attempts=1,
    )
    try:
        refused = await channel.send(_job("refused@example.com"))
        stuck = await channel.send(_job("stuck@example.com"))
        handler.release.set()
        after = await channel.send(_job("after@example.com"))
        await channel.aclose()
    finally:
        handler.release.set()
        controller.stop()
    assert refused.state is DispatchState.FAILED
    assert "550" in (refused.reason or "")
    assert "no such mailbox" in (refused.reason or "")
    assert stuck.state is DispatchState.FAILED
    assert stuck.reason == "SMTP: the SMTP server did not answer within 0.5 s"
    assert after.state is DispatchState.SENT
    # Neither failed exchange's connection was used again: its state was unknown.
    assert handler.recipients[-1] == "after@example.com"
    assert handler.connections == 3


# --- no input adds a header or a recipient (issue #12) ----------------------------------------
# The jobs below carry what the event models refuse; they stand for anything that reaches the
# channel some other way.


async def test_a_name_with_a_line_break_adds_no_header_and_no_recipient(
    smtp_server: tuple[Controller, _Counting],
) -> None:
    controller, handler = smtp_server
    channel = SmtpEmailChannel(
        SmtpSettings(port=controller.port), renderer=TemplateRenderer(), attempts=1
    )
    outcome = await channel.send(_job("eve@example.com", name="Eve\r\nBcc: x@example.com"))
    await channel.aclose()
    assert outcome.state is DispatchState.SENT, outcome.reason
    assert handler.recipients == ["eve@example.com"]
    [message] = handler.messages
    assert message["Bcc"] is None
    assert [str(a) for a in message["To"].addresses] == [
        '"Eve Bcc: x@example.com" <eve@example.com>'
    ]
    assert message["Subject"].startswith("Eve Bcc: x@example.com, we are sorry")


@pytest.mark.parametrize(
    ("to", "said"),
    [
        ("x@y.z,bob", "the recipient address cannot be sent to"),
        ("ok@team.example, outsider@example.org", "the recipient address cannot be sent to"),
        ("Bob <bob@example.com>", "the recipient address cannot be sent to"),
        ("zoë@example.com", "Internationalized characters before the @-sign are not supported"),
    ],
)
async def test_anything_but_one_address_fails_that_email_with_its_reason(
    smtp_server: tuple[Controller, _Counting], to: str, said: str
) -> None:
    controller, handler = smtp_server
    channel = SmtpEmailChannel(
        SmtpSettings(port=controller.port), renderer=TemplateRenderer(), attempts=1
    )
    outcome = await channel.send(_job(to))
    await channel.aclose()
    assert outcome.state is DispatchState.FAILED
    assert outcome.reason is not None
    assert said in outcome.reason
    assert handler.recipients == []


async def test_an_internationalised_domain_is_sent_to_in_its_ascii_form(
    smtp_server: tuple[Controller, _Counting],
) -> None:
    controller, handler = smtp_server
    channel = SmtpEmailChannel(
        SmtpSettings(port=controller.port), renderer=TemplateRenderer(), attempts=1
    )
    outcome = await channel.send(_job("ada@exämple.com"))
    await channel.aclose()
    assert outcome.state is DispatchState.SENT, outcome.reason
    assert handler.recipients == ["ada@xn--exmple-cua.com"]


async def test_what_the_server_receives_parses_strictly_with_the_headers_as_configured(
    smtp_server: tuple[Controller, _Counting],
) -> None:
    controller, handler = smtp_server
    now = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)
    channel = SmtpEmailChannel(
        SmtpSettings(
            port=controller.port,
            from_address="Example Shop <noreply@shop.example>",
            reply_to="Customer success <cs@shop.example>",
        ),
        renderer=TemplateRenderer(),
        attempts=1,
        clock=FrozenClock(now),
    )
    job = _job("ada@example.com", name="Ad\u202ea", locale="fr", timezone="Europe/Paris")
    outcome = await channel.send(job)
    await channel.aclose()
    assert outcome.state is DispatchState.SENT, outcome.reason
    [raw] = handler.raw
    message = BytesParser(policy=policy.strict).parsebytes(raw)
    assert message["Date"].datetime == now
    assert str(message["From"]) == "Example Shop <noreply@shop.example>"
    assert str(message["Reply-To"]) == "Customer success <cs@shop.example>"
    assert message["Message-ID"] == f"<{job.action_id}@shop.example>" == outcome.provider_message_id
    assert message["References"] == f"<case.{job.case_id}@shop.example>"
    assert message["Content-Language"] == "fr"
    assert str(message["Subject"]).startswith("Ada, nous sommes désolés")
