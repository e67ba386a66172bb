"""notify's SMTP channel against a real SMTP server: connections are kept open and reused,
and a connection the server dropped is replaced without losing the message."""

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from nps_kit.devstack import free_port
from nps_notify.adapters.email import SmtpEmailChannel, TemplateRenderer
from nps_notify.config import SmtpSettings
from nps_notify.domain.dispatch import DispatchState, EmailJob


class _Counting:
    """Counts connections (one EHLO each) and keeps what it receives."""

    def __init__(self) -> None:
        self.connections = 0
        self.recipients: list[str] = []

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


def _job(to: str) -> EmailJob:
    return EmailJob(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id="c-1",
        channel="email",
        template="detractor_apology",
        to_address=to,
        to_name="Ada",
        context={"name": "Ada", "score": 2, "comment": None},
    )


async def test_messages_share_one_kept_open_connection(
    smtp_server: tuple[Controller, _Counting],
) -> None:
    controller, handler = smtp_server
    channel = SmtpEmailChannel(
        SmtpSettings(port=controller.port), renderer=TemplateRenderer(), attempts=1, pool_size=1
    )
    outcomes = [await channel.send(_job(f"n{i}@example.com")) for i in range(5)]
    await channel.aclose()
    assert [o.state for o in outcomes] == [DispatchState.SENT] * 5
    assert handler.recipients == [f"n{i}@example.com" for i in range(5)]
    assert handler.connections == 1


async def test_a_connection_the_server_dropped_is_replaced_and_the_message_sent(
    smtp_server: tuple[Controller, _Counting],
) -> None:
    controller, handler = smtp_server
    channel = SmtpEmailChannel(
        SmtpSettings(port=controller.port), renderer=TemplateRenderer(), attempts=3, pool_size=1
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
