"""Tickets as Jira Cloud issues, against a local fake that checks every request against
Jira's documented format (tests/support/fake_jira.py)."""

import json
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from nps_events import CreateTicket, Customer, RaiseTicketPriority, Segment, TicketPriority
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory
from nps_notify.adapters import tables as notify_tables
from nps_notify.adapters.helpdesk_webhooks import sign_jira
from nps_notify.adapters.jira import JiraTicketChannel
from nps_notify.adapters.repository import ledger_in
from nps_notify.config import JiraSettings
from nps_notify.domain.dispatch import DispatchState
from nps_notify.handlers import Dispatcher, ticket_job
from tests.support.fake_jira import FakeJira
from tests.support.helpdesk import helpdesk_app
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
        ledger=ledger_in(sessions),
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


WEBHOOK_SECRET = "jira-webhook-secret"


def _helpdesk(sessions: SessionFactory) -> httpx.AsyncClient:
    """Notify's helpdesk routes, served in process over ASGI (as in the running service)."""

    app = helpdesk_app(
        sessions, now=NOW, zendesk_secrets=[], jira_secrets=["an-old-secret", WEBHOOK_SECRET]
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notify")


async def _status_changes(sessions: SessionFactory) -> list[dict[str, object]]:
    async with sessions() as session:
        rows = (await session.execute(select(notify_tables.outbox))).all()
    return [
        json.loads(row.value)
        for row in rows
        if dict(json.loads(row.headers))["ce_type"] == "io.npsloop.ticket.status-changed.v1"
    ]


async def test_an_issue_moved_to_done_in_jira_reaches_its_case(sessions: SessionFactory) -> None:
    fake = FakeJira(project="HD")  # keys of its own: the module's tests share one database
    dispatcher = Dispatcher(
        ledger=ledger_in(sessions),
        channels={"ticket": _channel(fake, project_key="HD")},
        clock=FrozenClock(NOW),
        concurrency=2,
        case_url=CASE_URL,
    )
    create = _create()
    [outcome] = (await dispatcher.dispatch([create])).values()
    key = outcome.provider_message_id
    assert key is not None
    before = len(await _status_changes(sessions))
    async with _helpdesk(sessions) as client:
        body, headers = fake.transition(key, "Done", secret=WEBHOOK_SECRET)
        forged = await client.post(
            "/v1/helpdesk/jira",
            content=body,
            headers={**headers, **sign_jira(body, secret="not-the-secret")},
        )
        assert forged.status_code == 401
        assert forged.headers["content-type"] == "application/problem+json"
        assert forged.json()["detail"] == "the signature does not match"
        tampered = await client.post(
            "/v1/helpdesk/jira", content=body.replace(b'"Done"', b'"Closed"'), headers=headers
        )
        assert tampered.status_code == 401
        unsigned = {k: v for k, v in headers.items() if k != "X-Hub-Signature"}
        assert (
            await client.post("/v1/helpdesk/jira", content=body, headers=unsigned)
        ).status_code == 401

        answer = await client.post("/v1/helpdesk/jira", content=body, headers=headers)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"recorded": True}
        # Jira retries a delivery it thinks failed: the same event, recorded once downstream.
        again = await client.post("/v1/helpdesk/jira", content=body, headers=headers)
        assert again.json() == {"recorded": True}

        other = fake.transition(key, "In Progress", secret=WEBHOOK_SECRET)[0]
        not_status = other.replace(b'"field": "status"', b'"field": "labels"').replace(
            b'"fieldId": "status"', b'"fieldId": "labels"'
        )
        ignored = await client.post(
            "/v1/helpdesk/jira",
            content=not_status,
            headers=sign_jira(not_status, secret=WEBHOOK_SECRET),
        )
        assert ignored.json() == {"recorded": False, "ignored": "not a status change"}

    changes = (await _status_changes(sessions))[before:]
    assert len(changes) == 2
    first, replay = changes
    assert first["helpdesk"] == "jira"
    assert first["ticket_id"] == key
    assert (first["status"], first["previous_status"]) == ("done", "to do")
    assert first["case_id"] == str(create.case_id)
    assert first["action_id"] == str(create.action_id)
    assert replay["helpdesk_event_id"] == first["helpdesk_event_id"]  # one event id: deduped


async def test_a_jira_issue_npsloop_did_not_open_is_acknowledged_and_ignored(
    sessions: SessionFactory,
) -> None:
    fake = FakeJira()
    fake.issues["OPS-7"] = {"summary": "someone else's"}
    body, headers = fake.transition("OPS-7", "Done", secret=WEBHOOK_SECRET)
    async with _helpdesk(sessions) as client:
        answer = await client.post("/v1/helpdesk/jira", content=body, headers=headers)
    assert answer.status_code == 202
    assert answer.json() == {
        "recorded": False,
        "ignored": "ticket OPS-7 was not opened by npsloop",
    }
