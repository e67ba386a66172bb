"""Outbound webhooks signed by the Standard Webhooks scheme, against a receiver that verifies
them as the specification says (tests/support/fake_webhook_receiver.py), and the SSRF guard."""

import base64
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from nps_events import NotifyStaff, Segment, StaffReason
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory
from nps_notify.adapters.repository import ledger_in
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
        ledger=ledger_in(sessions),
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


class _Recording(httpx.AsyncBaseTransport):
    """The receiver's transport, noting where each request was sent and for which name."""

    def __init__(self, receiver: FakeReceiver) -> None:
        self.inner = httpx.ASGITransport(app=receiver.app())
        self.sent: list[tuple[str, str, object]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(
            (request.url.host, request.headers["host"], request.extensions.get("sni_hostname"))
        )
        return await self.inner.handle_async_request(request)


async def test_the_call_goes_to_the_address_that_was_checked_whatever_dns_says_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name is public when it is checked and points inside a moment later.
    The channel resolves it once and connects to the address it checked, with the name in the
    Host header and as the TLS server name (the certificate is verified for the name)."""
    import socket  # noqa: PLC0415

    answers = iter(["93.184.215.14", "127.0.0.1", "127.0.0.1"])
    real = socket.getaddrinfo

    def rebinding(host: str, *args: object, **kwargs: object) -> object:
        if host == "rebind.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), 443))]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    transport = _Recording(FakeReceiver(secret=SECRET))
    endpoint = {"url": "https://rebind.example.com/hooks/npsloop", "secrets": [SECRET]}
    channel = WebhookChannel(
        {"ops": WebhookEndpoint.model_validate(endpoint)}, attempts=1, transport=transport
    )
    outcome = await channel.send(_job(_notice()))  # type: ignore[arg-type]
    assert outcome.state is DispatchState.SENT
    assert transport.sent == [("93.184.215.14", "rebind.example.com", "rebind.example.com")]
    assert next(answers) == "127.0.0.1"  # resolved once: the second answer was never asked for


async def test_a_pinned_call_verifies_the_certificate_for_the_name() -> None:
    """What the pinning relies on, over real TLS: a request sent to an address, with the name
    as TLS server name, is accepted for a certificate of that name and refused for another."""
    import ssl  # noqa: PLC0415

    import trustme  # noqa: PLC0415

    from nps_kit.devstack import free_port  # noqa: PLC0415
    from nps_notify.adapters.http_transport import AiohttpTransport  # noqa: PLC0415
    from nps_notify.adapters.webhooks import pinned  # noqa: PLC0415
    from tests.support.serve import served  # noqa: PLC0415
    from tests.support.tls_proxy import tls_proxy  # noqa: PLC0415

    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.test").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    receiver = FakeReceiver(secret=SECRET)
    with served(receiver.app()) as base:
        port = free_port()
        with tls_proxy(port=port, upstream=int(base.rsplit(":", 1)[1]), context=server):
            # No keep-alive, as the channel: a connection verified for one name must not
            # carry a request for another (pooled connections are keyed by address). Both
            # httpx's own transport and the one notify runs on (aiohttp's connections).
            no_reuse = httpx.Limits(max_keepalive_connections=0)
            for http in (
                httpx.AsyncClient(verify=client, limits=no_reuse),
                httpx.AsyncClient(
                    transport=AiohttpTransport(
                        max_connections=1, keep_alive=False, ssl_context=client
                    )
                ),
            ):
                async with http:
                    for name, accepted in (("hooks.test", True), ("other.test", False)):
                        url, host, extensions = pinned(f"https://{name}:{port}/hook", "127.0.0.1")
                        assert url == f"https://127.0.0.1:{port}/hook"
                        assert host == {"host": f"{name}:{port}"}
                        if accepted:
                            answer = await http.get(url, headers=host, extensions=extensions)
                            assert answer.status_code in (401, 404, 405)  # TLS passed; HTTP spoke
                        else:
                            with pytest.raises(
                                httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"
                            ):
                                await http.get(url, headers=host, extensions=extensions)


async def test_each_attempt_is_signed_at_its_own_time_under_the_same_id() -> None:
    """A retry after a 503 keeps `webhook-id` (the receiver dedupes on it) but carries its own
    timestamp and signature: a strict receiver would refuse the first attempt's as stale."""
    receiver = FakeReceiver(secret=SECRET)
    receiver.fail_next(503)
    moments = iter([time.time() - 200, time.time()])  # the retry comes 200 s later
    channel = WebhookChannel(
        {"ops": WebhookEndpoint.model_validate({"url": URL, "secrets": [SECRET]})},
        attempts=3,
        transport=httpx.ASGITransport(app=receiver.app()),
        clock=lambda: next(moments),
    )
    recorded_waits(channel)
    outcome = await channel.send(_job(_notice()))  # type: ignore[arg-type]
    assert outcome.state is DispatchState.SENT, outcome
    assert receiver.deliveries == 2
    first, second = (int(s) for s in receiver.stamps)
    assert second - first >= 199  # signed again, at the retry's own time (and verified)
    assert len(receiver.received) == 1
