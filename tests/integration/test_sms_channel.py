"""SMS through Twilio, against a local fake of the Messages API that checks every request
against Twilio's documented format (tests/support/fake_twilio.py): what is sent, how each of
Twilio's documented errors ends, 429 with Retry-After, and the action's path through the
dispatcher: ledger, parking, result."""

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url, select
from sqlalchemy.ext.asyncio import create_async_engine

from nps_events import ActionResultReported, ContactOptOut, Customer, QuietHours, SendSms
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, session_factory
from nps_kit.devstack import free_port
from nps_notify.adapters import tables
from nps_notify.adapters.repository import ledger_in
from nps_notify.adapters.sms import TwilioSmsChannel
from nps_notify.adapters.templates import TemplateRenderer
from nps_notify.config import TwilioSettings
from nps_notify.domain.dispatch import DispatchState, SmsJob, sms_segments
from nps_notify.domain.messages import Identity
from nps_notify.handlers import Dispatcher
from tests.support.fake_twilio import FakeTwilio
from tests.support.serve import served
from tests.support.tls_proxy import tcp_proxy
from tests.support.waits import recorded_waits

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _channel(
    fake: FakeTwilio, templates: Path | None = None, **settings: object
) -> TwilioSmsChannel:
    values: dict[str, object] = {
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "from_number": "+15005550006",
        "base_url": "http://twilio.test",
        "rate_per_second": 1000,
        **settings,
    }
    return TwilioSmsChannel(
        TwilioSettings.model_validate(values),
        renderer=TemplateRenderer(templates),
        attempts=3,
        transport=httpx.ASGITransport(app=fake.app()),
        sender=Identity(from_address="", reply_to=None, brand="Example Shop", signature="The team"),
    )


def _job(to: str | None = "+33612345678", template: str = "detractor_apology") -> SmsJob:
    return SmsJob(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id="c-sms",
        to=to,
        template=template,
        context={"name": "Ada"},
    )


async def test_an_sms_is_posted_as_twilio_documents_it_and_its_sid_reported() -> None:
    fake = FakeTwilio()
    outcome = await _channel(fake).send(_job())
    assert outcome.state is DispatchState.SENT
    [message] = fake.messages
    assert outcome.provider_message_id == message["sid"]
    assert (message["To"], message["From"]) == ("+33612345678", "+15005550006")
    assert message["Body"].startswith("Example Shop: Hi Ada, thank you for your answer.")


async def test_over_real_http_an_sms_is_posted_form_encoded_as_twilio_reads_it() -> None:
    """Through the transport notify runs on (aiohttp's connections under httpx), to the fake
    served over HTTP: basic auth with the account's SID and the form body Twilio documents."""
    fake = FakeTwilio()
    with served(fake.app()) as url:
        channel = TwilioSmsChannel(
            TwilioSettings.model_validate(
                {
                    "account_sid": fake.account_sid,
                    "auth_token": fake.auth_token,
                    "from_number": "+15005550006",
                    "base_url": url,
                    "rate_per_second": 1000,
                }
            ),
            renderer=TemplateRenderer(None),
            attempts=1,
            sender=Identity(from_address="", reply_to=None, brand="Example", signature="Us"),
        )
        try:
            outcome = await channel.send(_job(to="+33612345678"))
        finally:
            await channel.aclose()
    assert outcome.state is DispatchState.SENT, outcome
    [message] = fake.messages
    assert outcome.provider_message_id == message["sid"]
    assert (message["To"], message["From"]) == ("+33612345678", "+15005550006")
    assert message["Body"].startswith("Example: Hi Ada, thank you for your answer.")


async def test_an_sms_speaks_the_customers_language() -> None:
    fake = FakeTwilio()
    await _channel(fake).send(replace(_job(), locale="pt-BR"))
    assert fake.messages[0]["Body"].startswith("Example Shop: Olá Ada, obrigado")


async def test_a_messaging_service_sends_instead_of_a_number() -> None:
    fake = FakeTwilio()
    service = "MG" + "a" * 32
    outcome = await _channel(fake, from_number=None, messaging_service_sid=service).send(_job())
    assert outcome.state is DispatchState.SENT
    assert fake.messages[0]["MessagingServiceSid"] == service
    assert "From" not in fake.messages[0]


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        (None, "the customer has no phone number"),
        ("0612345678", "the phone number is not in E.164 form"),
    ],
)
async def test_a_number_that_cannot_be_texted_fails_without_calling_twilio(
    to: str | None, reason: str
) -> None:
    fake = FakeTwilio()
    outcome = await _channel(fake).send(_job(to=to))
    assert (outcome.state, outcome.reason) == (DispatchState.FAILED, reason)
    assert fake.requests == 0


async def test_a_documented_permanent_error_fails_at_once_with_twilios_reason() -> None:
    fake = FakeTwilio()
    fake.fail_next(400, code=21614)
    outcome = await _channel(fake).send(_job())
    assert outcome.state is DispatchState.FAILED
    assert outcome.reason is not None
    assert "error 21614" in outcome.reason
    assert fake.requests == 1


async def test_wrong_credentials_fail_with_twilios_authentication_error() -> None:
    fake = FakeTwilio()
    outcome = await _channel(fake, auth_token="not-the-token").send(_job())
    assert outcome.state is DispatchState.FAILED
    assert outcome.reason is not None
    assert "error 20003" in outcome.reason


async def test_429_is_retried_after_the_retry_after_twilio_asks_for() -> None:
    fake = FakeTwilio()
    fake.fail_next(429, retry_after=1)
    channel = _channel(fake)
    waits = recorded_waits(channel)
    outcome = await channel.send(_job())
    assert outcome.state is DispatchState.SENT
    assert fake.requests == 2
    assert waits
    assert waits[0] >= 1.0


async def test_a_long_retry_after_defers_the_message_instead_of_holding_the_batch() -> None:
    fake = FakeTwilio()
    fake.fail_next(429, retry_after=120)
    outcome = await _channel(fake).send(_job())
    assert outcome.state is DispatchState.DEFERRED
    assert outcome.retry_after == pytest.approx(120, abs=1)
    assert fake.messages == []


async def test_a_long_text_is_cut_to_the_configured_segments(tmp_path: Path) -> None:
    fake = FakeTwilio()
    (tmp_path / "detractor_apology").mkdir()
    (tmp_path / "detractor_apology" / "sms.txt.j2").write_text("{{ 'Thank you! ' * 40 }}")
    channel = _channel(fake, tmp_path, max_segments=1)
    await channel.send(_job())
    body = fake.messages[0]["Body"]
    assert sms_segments(body) == 1
    assert body.endswith("...")


async def _ledger(
    sessions: SessionFactory, action_id: uuid.UUID
) -> tuple[str, list[ActionResultReported]]:
    """The action's state in notify's ledger, and the results queued for it."""
    async with sessions() as session:
        state = (
            await session.execute(
                select(tables.dispatches.c.state).where(tables.dispatches.c.action_id == action_id)
            )
        ).scalar_one()
        rows = (
            await session.execute(
                select(tables.outbox).where(tables.outbox.c.topic == "nps.action-results.v1")
            )
        ).all()
    results = [ActionResultReported.model_validate_json(row.value) for row in rows]
    return state, [r for r in results if r.action_id == action_id]


async def test_a_deferred_sms_is_parked_and_sent_by_the_sweeper_later(
    sessions: SessionFactory,
) -> None:
    fake = FakeTwilio()
    fake.fail_next(503, retry_after=60)
    clock = FrozenClock(NOW)
    dispatcher = Dispatcher(
        ledger=ledger_in(sessions),
        channels={"sms": _channel(fake)},
        clock=clock,
        concurrency=2,
        case_url="http://cs.example.com/cases/{case_id}",
    )
    action = SendSms(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id="c-parked", phone="+33612345678", name="Ada"),
        template="detractor_acknowledgement",
        requested_at=NOW,
    )
    first = await dispatcher.dispatch([action])
    assert first[action.action_id].state is DispatchState.DEFERRED
    assert await dispatcher.sweep_parked(limit=10, lease=timedelta(minutes=5)) == 0  # not yet
    clock.advance(timedelta(seconds=61))
    assert await dispatcher.sweep_parked(limit=10, lease=timedelta(minutes=5)) == 1
    assert len(fake.messages) == 1
    state, results = await _ledger(sessions, action.action_id)
    async with sessions() as session:
        parked = (
            await session.execute(
                select(tables.parked).where(tables.parked.c.action_id == action.action_id)
            )
        ).all()
    assert state == "sent"
    assert parked == []
    [result] = results
    assert (result.channel.value, result.status.value) == ("sms", "sent")
    assert result.provider_message_id == fake.messages[0]["sid"]


async def test_an_sms_due_in_the_customers_quiet_hours_waits_for_their_end(
    sessions: SessionFactory,
) -> None:
    fake = FakeTwilio()
    night = datetime(2026, 11, 25, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    clock = FrozenClock(night)
    dispatcher = Dispatcher(
        ledger=ledger_in(sessions),
        channels={"sms": _channel(fake)},
        clock=clock,
        concurrency=2,
        case_url="http://cs.example.com/cases/{case_id}",
    )
    action = SendSms(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id="c-night", phone="+33612345678", name="Ada"),
        template="detractor_acknowledgement",
        requested_at=night,
        quiet_hours=QuietHours(timezone="Europe/Paris", start="21:00", end="08:00"),
    )
    outcome = (await dispatcher.dispatch([action]))[action.action_id]
    assert (outcome.state, outcome.reason) == (DispatchState.DEFERRED, "the customer's quiet hours")
    assert fake.requests == 0
    assert not dispatcher.breaker("sms").failures  # not the provider's fault
    clock.advance(timedelta(hours=7))  # 06:30 in Paris: still quiet
    assert await dispatcher.sweep_parked(limit=10, lease=timedelta(minutes=5)) == 0
    clock.advance(timedelta(hours=2))  # 08:30
    assert await dispatcher.sweep_parked(limit=10, lease=timedelta(minutes=5)) == 1
    assert len(fake.messages) == 1


async def test_a_database_outage_after_twilio_took_the_sms_still_records_it_sent(
    database_url: str,
) -> None:
    """The database disappears the moment Twilio takes the message (every connection reset,
    new ones refused, for 3 s). The outcome exists only in notify's memory: it is written once
    the database is back — `sent`, with Twilio's sid — never lost to `unknown`, and a
    redelivery of the action sends nothing more."""
    url = make_url(database_url)
    with tcp_proxy(port=free_port(), upstream=url.port or 5432) as proxy:
        engine = create_async_engine(
            url.set(port=proxy.port).render_as_string(hide_password=False), pool_pre_ping=True
        )
        sessions = session_factory(engine)
        loop = asyncio.get_running_loop()

        def outage() -> None:
            proxy.cut()
            loop.call_later(3, proxy.restore)

        fake = FakeTwilio(on_accept=outage)
        dispatcher = Dispatcher(
            ledger=ledger_in(sessions),
            channels={"sms": _channel(fake)},
            clock=FrozenClock(NOW),
            concurrency=2,
            case_url="http://cs.example.com/cases/{case_id}",
        )
        action = SendSms(
            action_id=uuid.uuid4(),
            case_id=uuid.uuid4(),
            customer=Customer(id="c-outage", phone="+33612345678", name="Ada"),
            template="detractor_acknowledgement",
            requested_at=NOW,
        )
        outcome = await asyncio.wait_for(dispatcher.dispatch([action]), timeout=60)
        assert outcome[action.action_id].state is DispatchState.SENT
        fake.on_accept = None
        assert await dispatcher.dispatch([action]) == {}  # already done: not sent again
        state, results = await _ledger(sessions, action.action_id)
        await engine.dispose()
    assert state == "sent"
    assert len(fake.messages) == 1
    [result] = results
    assert result.status.value == "sent"
    assert result.provider_message_id == fake.messages[0]["sid"]


async def _refused_send(
    sessions: SessionFactory, *, code: int, customer_id: str
) -> tuple[SendSms, DispatchState, FakeTwilio]:
    """An SMS to `customer_id` that Twilio refuses with its error `code` (HTTP 400)."""
    fake = FakeTwilio()
    fake.fail_next(400, code=code)
    dispatcher = Dispatcher(
        ledger=ledger_in(sessions),
        channels={"sms": _channel(fake)},
        clock=FrozenClock(NOW),
        concurrency=2,
        case_url="http://cs.example.com/cases/{case_id}",
    )
    action = SendSms(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id=customer_id, phone="+33612345678", name="Ada"),
        template="detractor_acknowledgement",
        requested_at=NOW,
    )
    outcome = (await dispatcher.dispatch([action]))[action.action_id]
    return action, outcome.state, fake


async def _published_opt_outs(sessions: SessionFactory) -> list[ContactOptOut]:
    """The opt-outs notify's outbox holds for `nps.responses.v1`."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(tables.outbox).where(tables.outbox.c.topic == "nps.responses.v1")
            )
        ).all()
    return [ContactOptOut.model_validate_json(row.value) for row in rows]


async def test_a_customer_who_texted_stop_is_put_on_the_do_not_contact_list_for_sms(
    sessions: SessionFactory,
) -> None:
    """Twilio answers 400 with error 21610: the action fails with Twilio's words, and notify
    publishes, in the same transaction, a `ContactOptOut` of scope `sms` for that customer
    (followup's do-not-contact list), whose id a redelivery cannot change."""
    action, state_, fake = await _refused_send(sessions, code=21610, customer_id="c-stop")
    assert state_ is DispatchState.FAILED
    state, [result] = await _ledger(sessions, action.action_id)
    assert (state, result.status.value) == ("failed", "failed")
    [opt_out] = [o for o in await _published_opt_outs(sessions) if o.customer_id == "c-stop"]
    assert (opt_out.scope.value, opt_out.source) == ("sms", "notify")
    assert opt_out.occurred_at == NOW
    assert opt_out.reason is not None
    assert "error 21610" in opt_out.reason
    assert "unsubscribed recipient" in opt_out.reason
    assert str(action.action_id) in opt_out.reason
    assert fake.messages == []


async def test_other_permanent_sms_errors_put_nobody_on_the_do_not_contact_list(
    sessions: SessionFactory,
) -> None:
    # 21614, not a mobile number: nothing the customer asked for.
    _, state, _ = await _refused_send(sessions, code=21614, customer_id="c-landline")
    assert state is DispatchState.FAILED
    opt_outs = await _published_opt_outs(sessions)
    assert [o for o in opt_outs if o.customer_id == "c-landline"] == []
