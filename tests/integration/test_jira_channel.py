"""Tickets as Jira Cloud issues, against a local fake that checks every request against
Jira's documented format (tests/support/fake_jira.py)."""

import uuid
from datetime import UTC, datetime

import httpx

from nps_events import CreateTicket, Customer, RaiseTicketPriority, Segment, TicketPriority
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory
from nps_notify.adapters.jira import JiraTicketChannel
from nps_notify.config import JiraSettings
from nps_notify.domain.dispatch import DispatchState
from nps_notify.handlers import Dispatcher, ticket_job
from tests.support.fake_jira import FakeJira
from tests.support.waits import recorded_waits

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CASE_URL = "https://cs.example.com/cases/{case_id}"


def _channel(fake: FakeJira, **settings: object) -> JiraTicketChannel:
    values: dict[str, object] = {
        "base_url": "https://acme.atlassian.net",
        "email": fake.email,
        "api_token": fake.api_token,
        "project_key": fake.project,
        "rate_per_second": 1000,
        **settings,
    }
    return JiraTicketChannel(
        JiraSettings.model_validate(values),
        attempts=3,
        transport=httpx.ASGITransport(app=fake.app()),
    )


def _create() -> CreateTicket:
    return CreateTicket(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id="c-jira", email="ada@example.com", name="Ada"),
        priority=TicketPriority.HIGH,
        title="NPS detractor: Ada (2/10)",
        score=2,
        segment=Segment.DETRACTOR,
        comment="Exports time out",
        requested_at=NOW,
    )


async def test_an_issue_is_created_as_jira_documents_it() -> None:
    fake = FakeJira()
    action = _create()
    outcome = await _channel(fake).send(ticket_job(action, case_url=CASE_URL))
    assert (outcome.state, outcome.provider_message_id) == (DispatchState.SENT, "CS-1")
    fields = fake.issues["CS-1"]
    assert fields["priority"] == {"name": "High"}
    assert fields["summary"] == "NPS detractor: Ada (2/10)"
    text = str(fields["description"])
    assert "Exports time out" in text
    assert f"https://cs.example.com/cases/{action.case_id}" in text
    assert "ada@example.com" in text
    assert f"npsloop-case-{action.case_id}" in fields["labels"]


async def test_a_field_jira_refuses_fails_with_its_errors() -> None:
    fake = FakeJira(project="OPS")  # the configured project CS does not exist there
    channel = _channel(fake, project_key="CS")
    outcome = await channel.send(ticket_job(_create(), case_url=CASE_URL))
    assert outcome.state is DispatchState.FAILED
    assert outcome.reason == "Jira 400: project: Specify a valid project ID or key"


async def test_429_is_retried_after_the_retry_after_jira_asks_for() -> None:
    fake = FakeJira()
    fake.fail_next(429, retry_after=1)
    channel = _channel(fake)
    waits = recorded_waits(channel)
    outcome = await channel.send(ticket_job(_create(), case_url=CASE_URL))
    assert outcome.state is DispatchState.SENT
    assert waits[0] >= 1.0


async def test_wrong_credentials_fail_at_once() -> None:
    fake = FakeJira()
    outcome = await _channel(fake, api_token="wrong").send(ticket_job(_create(), case_url=CASE_URL))
    assert outcome.state is DispatchState.FAILED
    assert outcome.reason == "Jira 401: You are not authenticated."


async def test_an_escalation_raises_the_issues_priority(sessions: SessionFactory) -> None:
    fake = FakeJira()
    dispatcher = Dispatcher(
        sessions=sessions,
        channels={"ticket": _channel(fake)},
        clock=FrozenClock(NOW),
        concurrency=2,
        case_url=CASE_URL,
    )
    create = _create()
    await dispatcher.dispatch([create])
    escalate = RaiseTicketPriority(
        action_id=uuid.uuid4(),
        case_id=create.case_id,
        customer_id=create.customer.id,
        ticket_action_id=create.action_id,
        priority=TicketPriority.URGENT,
        requested_at=NOW,
    )
    outcome = (await dispatcher.dispatch([escalate]))[escalate.action_id]
    assert (outcome.state, outcome.provider_message_id) == (DispatchState.SENT, "CS-1")
    assert fake.issues["CS-1"]["priority"] == {"name": "Highest"}
