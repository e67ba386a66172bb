"""Tickets in Zendesk, against a local fake of the Tickets API that checks every request
against Zendesk's documented format (tests/support/fake_zendesk.py): the ticket's content,
the Idempotency-Key that makes a resend harmless, 429 with Retry-After, the documented errors,
and the priority raised on escalation through the dispatcher's ledger."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest

from nps_events import CreateTicket, Customer, RaiseTicketPriority, Segment, TicketPriority
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, unit_of_work
from nps_notify.adapters.repository import NotifyRepository, ledger_in
from nps_notify.adapters.tickets import ZendeskTicketChannel
from nps_notify.config import ZendeskSettings
from nps_notify.domain.dispatch import DispatchState
from nps_notify.handlers import Dispatcher, ticket_job
from tests.support.fake_zendesk import FakeZendesk
from tests.support.serve import served
from tests.support.waits import recorded_waits

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CASE_URL = "http://cs.example.com/cases/{case_id}"


def _channel(fake: FakeZendesk, **settings: object) -> ZendeskTicketChannel:
    values: dict[str, object] = {
        "base_url": "http://zendesk.test",
        "email": fake.email,
        "api_token": fake.api_token,
        "rate_per_second": 1000,
        **settings,
    }
    return ZendeskTicketChannel(
        ZendeskSettings.model_validate(values),
        attempts=3,
        transport=httpx.ASGITransport(app=fake.app()),
    )


def _create(customer: str = "c-tk", comment: str | None = "Export broke twice") -> CreateTicket:
    return CreateTicket(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id=customer, email=f"{customer}@example.com", name="Ada"),
        priority=TicketPriority.HIGH,
        title="NPS detractor: Ada (2/10)",
        score=2,
        segment=Segment.DETRACTOR,
        comment=comment,
        requested_at=NOW,
    )


async def test_a_ticket_is_created_as_zendesk_documents_it_with_the_case_link() -> None:
    fake = FakeZendesk()
    action = _create()
    outcome = await _channel(fake).send(ticket_job(action, case_url=CASE_URL))
    assert outcome.state is DispatchState.SENT
    [ticket] = fake.tickets.values()
    assert outcome.provider_message_id == str(ticket["id"])
    assert ticket["subject"] == "NPS detractor: Ada (2/10)"
    assert ticket["priority"] == "high"
    assert ticket["requester"] == {"email": "c-tk@example.com", "name": "Ada"}
    assert ticket["external_id"] == f"npsloop-case-{action.case_id}"
    assert "Export broke twice" in ticket["description"]
    assert f"http://cs.example.com/cases/{action.case_id}" in ticket["description"]
    assert ticket["comment_public"] is False  # the customer's words stay internal


async def test_over_real_http_a_ticket_is_created_once_and_a_resend_is_recognised() -> None:
    """Through the transport notify runs on (aiohttp's connections under httpx), to the fake
    served over HTTP: basic auth, the JSON body and the `Idempotency-Key` as Zendesk reads
    them, and a kept-alive connection reused for the resend."""
    fake = FakeZendesk()
    action = _create()
    job = ticket_job(action, case_url=CASE_URL)
    with served(fake.app()) as url:
        settings = {
            "base_url": url,
            "email": fake.email,
            "api_token": fake.api_token,
            "rate_per_second": 1000,
        }
        channel = ZendeskTicketChannel(ZendeskSettings.model_validate(settings), attempts=1)
        try:
            first = await channel.send(job)
            again = await channel.send(job)
        finally:
            await channel.aclose()
    assert first.state is DispatchState.SENT, first
    [ticket] = fake.tickets.values()
    assert first.provider_message_id == again.provider_message_id == str(ticket["id"])
    assert ticket["external_id"] == f"npsloop-case-{action.case_id}"
    assert ticket["requester"] == {"email": "c-tk@example.com", "name": "Ada"}
    assert fake.requests == 2


async def test_a_resent_create_is_recognised_by_its_idempotency_key() -> None:
    fake = FakeZendesk()
    job = ticket_job(_create(), case_url=CASE_URL)
    channel = _channel(fake)
    first = await channel.send(job)
    again = await channel.send(job)  # as after an answer lost in a crash
    assert first.provider_message_id == again.provider_message_id
    assert len(fake.tickets) == 1


async def test_429_is_retried_after_the_retry_after_zendesk_asks_for() -> None:
    fake = FakeZendesk()
    fake.fail_next(429, retry_after=1)
    channel = _channel(fake)
    waits = recorded_waits(channel)
    outcome = await channel.send(ticket_job(_create(), case_url=CASE_URL))
    assert outcome.state is DispatchState.SENT
    assert waits[0] >= 1.0
    assert fake.requests == 2


async def test_an_outage_longer_than_the_attempts_defers_the_ticket() -> None:
    fake = FakeZendesk()
    for _ in range(3):
        fake.fail_next(503)
    channel = _channel(fake)

    async def instantly(_seconds: float) -> None:
        return None

    channel._client._sleep = instantly
    outcome = await channel.send(ticket_job(_create(), case_url=CASE_URL))
    assert outcome.state is DispatchState.DEFERRED
    assert fake.tickets == {}


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"api_token": "wrong"}, "Zendesk 401 (Couldn't authenticate you)"),
    ],
)
async def test_a_refusal_that_will_not_change_fails_at_once(
    settings: dict[str, object], reason: str
) -> None:
    fake = FakeZendesk()
    outcome = await _channel(fake, **settings).send(ticket_job(_create(), case_url=CASE_URL))
    assert outcome.state is DispatchState.FAILED
    assert outcome.reason is not None
    assert outcome.reason.startswith(reason)
    assert fake.requests == 1


async def test_an_invalid_record_fails_with_zendesks_details() -> None:
    fake = FakeZendesk()
    job = ticket_job(_create(), case_url=CASE_URL)
    bad = replace(job, requester_email="x@y")  # Zendesk finds no valid email there
    outcome = await _channel(fake).send(bad)
    assert outcome.state is DispatchState.FAILED
    assert outcome.reason is not None
    assert "RecordInvalid" in outcome.reason


async def test_an_escalation_raises_the_priority_of_the_ticket_the_case_opened(
    sessions: SessionFactory,
) -> None:
    fake = FakeZendesk()
    dispatcher = Dispatcher(
        ledger=ledger_in(sessions),
        channels={"ticket": _channel(fake)},
        clock=FrozenClock(NOW),
        concurrency=2,
        case_url=CASE_URL,
    )
    create = _create(customer=f"c-{uuid.uuid4().hex[:6]}")
    await dispatcher.dispatch([create])
    escalate = RaiseTicketPriority(
        action_id=uuid.uuid4(),
        case_id=create.case_id,
        customer_id=create.customer.id,
        ticket_action_id=create.action_id,
        priority=TicketPriority.URGENT,
        requested_at=NOW,
    )
    outcomes = await dispatcher.dispatch([escalate])
    assert outcomes[escalate.action_id].state is DispatchState.SENT
    [ticket] = fake.tickets.values()
    assert ticket["priority"] == "urgent"

    never_created = RaiseTicketPriority(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id="c-none",
        ticket_action_id=uuid.uuid4(),
        priority=TicketPriority.URGENT,
        requested_at=NOW,
    )
    outcome = (await dispatcher.dispatch([never_created]))[never_created.action_id]
    assert (outcome.state, outcome.reason) == (
        DispatchState.FAILED,
        "the case's ticket was never created",
    )


async def test_a_ticket_whose_answer_was_lost_in_a_crash_is_sent_again_and_made_once(
    sessions: SessionFactory,
) -> None:
    """The ledger says `sending` (notify died after Zendesk took the request): the ticket is
    sent again with the same Idempotency-Key, and Zendesk answers the ticket it made."""
    fake = FakeZendesk()
    channel = _channel(fake)
    action = _create(customer=f"c-{uuid.uuid4().hex[:6]}")
    job = ticket_job(action, case_url=CASE_URL)
    async with unit_of_work(sessions) as session:
        await NotifyRepository(session).begin_dispatches([job], now=NOW)
    await channel.send(job)  # Zendesk took it; the answer never reached the ledger
    dispatcher = Dispatcher(
        ledger=ledger_in(sessions),
        channels={"ticket": channel},
        clock=FrozenClock(NOW),
        concurrency=1,
        case_url=CASE_URL,
    )
    outcome = (await dispatcher.dispatch([action]))[action.action_id]
    assert outcome.state is DispatchState.SENT
    [ticket_id] = fake.tickets
    assert outcome.provider_message_id == str(ticket_id)
