"""A re-survey's webhook on the real database and the real broker: a closed detractor case under
a policy with `resurvey_webhook` comes due; followup's sweeper publishes the
`action.request-resurvey` command; notify's consumer handler takes it from `nps.actions.v1`
and, through its ledger, calls the survey tool's endpoint once, signed the Standard Webhooks way
(a receiver that verifies as the specification says), with the documented body; the result
comes back on `nps.action-results.v1` to followup and is on the case, whose timeline names the
action. A command naming an endpoint NOTIFY_WEBHOOKS lacks is dead-lettered with the reason."""

import base64
import uuid
from collections.abc import AsyncIterator
from typing import TypeVar

import httpx
import pytest
from aiokafka.structs import ConsumerRecord

from nps_events import ActionResultReported, Event, RequestResurvey, Topic, decode
from nps_followup.adapters import tables
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.cases import Case
from nps_followup.handlers import PolicyInForce, record_action_results, sweep_due_timers
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.messaging import BatchHandler, Inbound, Publisher, Rejection
from nps_kit.outbox import OutboxRelay
from nps_kit.settings import KafkaSettings
from nps_notify.adapters import tables as notify_tables
from nps_notify.adapters.repository import ledger_in
from nps_notify.adapters.webhooks import WebhookChannel
from nps_notify.config import WebhookEndpoint
from nps_notify.entrypoints.consumer import actions_handler
from nps_notify.handlers import Dispatcher
from tests.integration.kafka_helpers import read_all
from tests.integration.test_followup_policy_engine import case
from tests.integration.test_followup_resurvey import DUE, open_one, work_and_close
from tests.support.fake_webhook_receiver import FakeReceiver
from tests.support.infra import Infra

SECRET = "whsec_" + base64.b64encode(b"the-survey-tools-secret-32-bytes").decode()
CASE_URL = "https://cs.example.com/cases/{case_id}"
E = TypeVar("E", bound=Event)


def _policy(endpoint: str) -> PolicyInForce:
    policy = parse_policy(
        default_policy_text() + f"resurvey_after: 30 days\nresurvey_webhook: {endpoint}\n"
    )
    return PolicyInForce(policy=policy, holidays_for=holidays_for(policy))


@pytest.fixture(scope="module")
async def publisher(infra: Infra) -> AsyncIterator[Publisher]:
    one = Publisher(
        KafkaSettings(bootstrap_servers=infra.bootstrap_servers), client_id="resurvey-webhook"
    )
    await one.start()
    yield one
    await one.stop()


async def relay_all(relay: OutboxRelay) -> None:
    while await relay.publish_pending():
        pass


async def on_topic(
    infra: Infra, topic: Topic, wanted: type[E], case_ids: set[uuid.UUID]
) -> list[tuple[ConsumerRecord[bytes, bytes], E]]:
    """The records of `wanted` about these cases on `topic`, with their events."""
    records = await read_all(
        KafkaSettings(bootstrap_servers=infra.bootstrap_servers), topic.value, partitions=3
    )
    found = []
    for record in records:
        event = decode(tuple(record.headers), record.value).data
        if isinstance(event, wanted) and getattr(event, "case_id", None) in case_ids:
            found.append((record, event))
    return found


async def closed_and_swept(sessions: SessionFactory, customer: str, *, endpoint: str) -> Case:
    """A detractor case of `customer`, worked and closed, whose re-survey the sweeper fired
    under a policy naming `endpoint` as `resurvey_webhook`."""
    opened = await open_one(sessions, customer)
    await work_and_close(sessions, opened.case_id)
    async with unit_of_work(sessions) as session:
        fired = await sweep_due_timers(
            FollowupRepository(session), now=DUE, policy=_policy(endpoint), limit=10
        )
    assert fired == 1
    return opened


def notify(
    sessions: SessionFactory, receiver: FakeReceiver, relay: OutboxRelay
) -> tuple[WebhookChannel, BatchHandler]:
    """Notify's consumer handler with NOTIFY_WEBHOOKS' one endpoint, `survey_tool` (an
    internal tool: `receiver`)."""
    endpoint = {
        "url": "http://survey-tool.internal/hooks/npsloop",
        "secrets": [SECRET],
        "allow_private": True,
    }
    channel = WebhookChannel(
        {"survey_tool": WebhookEndpoint.model_validate(endpoint)},
        attempts=2,
        transport=httpx.ASGITransport(app=receiver.app()),
    )
    dispatcher = Dispatcher(
        ledger=ledger_in(sessions),
        channels={"webhook": channel},
        clock=FrozenClock(DUE),
        concurrency=4,
        case_url=CASE_URL,
        webhook_endpoints=frozenset({"survey_tool"}),
    )
    return channel, actions_handler(dispatcher=dispatcher, relay=relay)


async def test_the_survey_tool_is_called_once_signed_and_the_case_shows_the_result(
    sessions: SessionFactory, infra: Infra, publisher: Publisher
) -> None:
    # The time comes: followup asks again, and plans the call of the policy's endpoint; for
    # another case, under a policy naming an endpoint notify does not have.
    asked = await closed_and_swept(sessions, "webhook-ada", endpoint="survey_tool")
    mistyped = await closed_and_swept(sessions, "webhook-bob", endpoint="surveys")
    await relay_all(
        OutboxRelay(sessions=sessions, table=tables.outbox, send_many=publisher.send_many)
    )

    commands = await on_topic(
        infra, Topic.ACTIONS, RequestResurvey, {asked.case_id, mistyped.case_id}
    )
    assert sorted(e.endpoint for _, e in commands) == ["survey_tool", "surveys"]

    # Notify's consumer handler, twice over the same records (a redelivery): one call.
    receiver = FakeReceiver(secret=SECRET)
    notify_relay = OutboxRelay(
        sessions=sessions, table=notify_tables.outbox, send_many=publisher.send_many
    )
    channel, handle = notify(sessions, receiver, notify_relay)
    batch = [Inbound(record, decode(tuple(record.headers), record.value)) for record, _ in commands]
    rejected: list[Rejection] = []
    for _ in range(2):
        rejected = await handle(batch)
    await channel.aclose()

    [dead] = rejected
    assert dead.record.value == next(r.value for r, e in commands if e.case_id == mistyped.case_id)
    assert dead.reason == (
        "no webhook endpoint 'surveys' in NOTIFY_WEBHOOKS (configured: survey_tool); "
        "add it and re-drive"
    )

    [command] = [e for _, e in commands if e.case_id == asked.case_id]
    assert receiver.deliveries == 1  # verified by its signature, deduped on webhook-id
    [(msg_id, body)] = receiver.received.items()
    assert msg_id == f"msg_{command.action_id}"
    assert body["type"] == "resurvey.requested"
    assert body["timestamp"] == DUE.isoformat()
    data = body["data"]
    assert data["case_url"] == f"https://cs.example.com/cases/{asked.case_id}"
    assert data["customer"]["id"] == "webhook-ada"
    assert data["customer"]["email"] == "webhook-ada@example.com"
    assert (data["survey_id"], data["source"], data["response_id"]) == (
        asked.survey_id,
        asked.source,
        str(asked.response_id),
    )
    assert (data["score"], data["segment"], data["rule"]) == (3, "detractor", asked.rule)

    # The outcome goes back to followup as every action's does, and is on the case.
    await relay_all(notify_relay)
    reported = await on_topic(infra, Topic.ACTION_RESULTS, ActionResultReported, {asked.case_id})
    results = [e for _, e in reported]
    assert [(r.channel.value, r.status.value) for r in results] == [("webhook", "sent")]
    async with unit_of_work(sessions) as session:
        unknown = await record_action_results(FollowupRepository(session), results, now=DUE)
    assert unknown == []

    shown = await case(sessions, asked.case_id)
    [action] = [a for a in shown.actions if a.action_id == command.action_id]
    assert (action.channel, action.template, action.state.value) == (
        "webhook",
        "request_resurvey",
        "sent",
    )
    assert action.provider_message_id == msg_id
    [entry] = [e for e in shown.timeline if e.kind == "resurvey_requested"]
    assert (entry.details["webhook"], entry.details["action_id"]) == (
        "survey_tool",
        str(command.action_id),
    )
    # The re-survey with no call planned on its side stays on its case as planned, waiting
    # for the endpoint to be added and the dead letter re-driven.
    other = await case(sessions, mistyped.case_id)
    assert [(a.channel, a.state.value) for a in other.actions if a.channel == "webhook"] == [
        ("webhook", "planned")
    ]
