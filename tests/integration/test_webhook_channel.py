"""Outbound webhooks signed by the Standard Webhooks scheme, against a receiver that verifies
them as the specification says (tests/support/fake_webhook_receiver.py), and the SSRF guard."""

import base64
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from nps_events import NotifyStaff, Segment, StaffReason
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory
from nps_notify.adapters.webhooks import Refused, WebhookChannel, check_destination
from nps_notify.config import WebhookEndpoint
from nps_notify.domain.dispatch import DispatchState
from nps_notify.handlers import Dispatcher, webhook_job
from tests.support.fake_webhook_receiver import FakeReceiver
from tests.support.waits import recorded_waits

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"a-team-tool-secret-of-32-bytes!!").decode()
OLD = "whsec_" + base64.b64encode(b"the-secret-before-the-rotation!!").decode()
URL = "https://tools.example.com/hooks/npsloop"


def _channel(receiver: FakeReceiver, secrets: list[str], **endpoint: object) -> WebhookChannel:
    return WebhookChannel(
        {"ops": WebhookEndpoint.model_validate({"url": URL, "secrets": secrets, **endpoint})},
        attempts=3,
        transport=httpx.ASGITransport(app=receiver.app()),
    )


def _notice(recipient: str = "webhook:ops") -> NotifyStaff:
    return NotifyStaff(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id="c-hook",
        recipient=recipient,
        role="lead",
        reason=StaffReason.ESCALATION,
        level=1,
        due_at=NOW,
        segment=Segment.DETRACTOR,
        score=2,
        requested_at=NOW,
    )


def _job(notice: NotifyStaff) -> object:
    return webhook_job(notice, case_url="https://cs.example.com/cases/{case_id}")


@pytest.fixture(autouse=True)
def _public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """tools.example.com is a public address for these tests (no DNS in the sandbox)."""
    import socket  # noqa: PLC0415

    real = socket.getaddrinfo

    def fake(host: str, *args: object, **kwargs: object) -> object:
        if host == "tools.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443))]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", fake)


async def test_a_notice_is_posted_signed_as_standard_webhooks_says() -> None:
    receiver = FakeReceiver(secret=SECRET)
    notice = _notice()
    outcome = await _channel(receiver, [SECRET]).send(_job(notice))  # type: ignore[arg-type]
    assert outcome.state is DispatchState.SENT
    [(msg_id, payload)] = receiver.received.items()
    assert msg_id == outcome.provider_message_id == f"msg_{notice.action_id}"
    assert payload["type"] == "case.escalation"
    assert payload["data"]["case_url"] == f"https://cs.example.com/cases/{notice.case_id}"
    assert payload["data"]["level"] == 1
    assert "email" not in str(payload)  # no customer PII leaves for a team's tool


async def test_during_a_rotation_both_secrets_sign_and_the_receivers_new_one_accepts() -> None:
    receiver = FakeReceiver(secret=SECRET)
    outcome = await _channel(receiver, [OLD, SECRET]).send(_job(_notice()))  # type: ignore[arg-type]
    assert outcome.state is DispatchState.SENT


async def test_a_receiver_refusing_the_signature_fails_the_notice() -> None:
    receiver = FakeReceiver(secret=SECRET)
    outcome = await _channel(receiver, [OLD]).send(_job(_notice()))  # type: ignore[arg-type]
    assert (outcome.state, outcome.reason) == (DispatchState.FAILED, "the endpoint answered 401")


async def test_429_is_retried_after_the_receivers_retry_after() -> None:
    receiver = FakeReceiver(secret=SECRET)
    receiver.fail_next(429, retry_after=1)
    channel = _channel(receiver, [SECRET])
    waits = recorded_waits(channel)
    outcome = await channel.send(_job(_notice()))  # type: ignore[arg-type]
    assert outcome.state is DispatchState.SENT
    assert waits[0] >= 1.0
    assert receiver.deliveries == 2


@pytest.mark.parametrize(
    ("url", "allow_private"),
    [
        ("https://127.0.0.1/hook", False),
        ("https://localhost/hook", False),
        ("https://10.0.0.7/hook", False),
        ("https://169.254.169.254/latest/meta-data", False),  # the cloud metadata service
        ("https://[::1]/hook", False),
        ("http://tools.example.com/hook", False),  # plain http
        ("ftp://tools.example.com/hook", True),
    ],
)
async def test_private_loopback_and_plain_http_destinations_are_refused(
    url: str, allow_private: bool
) -> None:
    with pytest.raises(Refused):
        await check_destination(url, allow_private=allow_private)


async def test_an_internal_endpoint_is_allowed_when_configured_so() -> None:
    await check_destination("http://10.0.0.7:8080/hook", allow_private=True)
    await check_destination(URL, allow_private=False)


async def test_a_refused_destination_fails_the_notice_without_calling_it(
    sessions: SessionFactory,
) -> None:
    receiver = FakeReceiver(secret=SECRET)
    channel = WebhookChannel(
        {"ops": WebhookEndpoint(url="https://127.0.0.1/hooks/npsloop", secrets=[SECRET])},  # type: ignore[list-item]
        attempts=1,
        transport=httpx.ASGITransport(app=receiver.app()),
    )
    dispatcher = Dispatcher(
        sessions=sessions,
        channels={"webhook": channel},
        clock=FrozenClock(NOW),
        concurrency=2,
        case_url="https://cs.example.com/cases/{case_id}",
    )
    notice = _notice()
    outcome = (await dispatcher.dispatch([notice]))[notice.action_id]
    assert outcome.state is DispatchState.FAILED
    assert outcome.reason is not None
    assert outcome.reason.startswith("refused: 127.0.0.1 resolves to 127.0.0.1")
    assert receiver.deliveries == 0
