"""Notify's side of a re-survey's webhook (`action.request-resurvey`): the body the survey tool
receives, the dead letter of a command naming an endpoint NOTIFY_WEBHOOKS lacks, and the
dispatch through the ledger (at most once, parked while the tool refuses for now, reported
with the `webhook` channel and never as a message to the customer), against the in-memory
fakes of notify's ports. The signing and the real ledger: tests/integration."""

import uuid
from datetime import UTC, datetime, timedelta

from nps_events import (
    ActionResultReported,
    ActionStatus,
    Channel,
    Customer,
    RequestResurvey,
    Segment,
)
from nps_kit.clock import FrozenClock
from nps_notify.domain.dispatch import DispatchState, Outcome, WebhookJob
from nps_notify.handlers import Dispatcher, resurvey_job, undeliverable
from tests.support.notify_fakes import InMemoryLedger, ScriptedChannel

NOW = datetime(2026, 4, 5, 16, tzinfo=UTC)
CASE_URL = "https://cs.example.com/cases/{case_id}"
ADA = Customer(
    id="cus_0042",
    email="ada@example.com",
    name="Ada Lovelace",
    locale="en",
    timezone="Europe/London",
    attributes={"plan": "pro"},
)


def request(endpoint: str = "survey_tool", customer: Customer = ADA) -> RequestResurvey:
    return RequestResurvey(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        endpoint=endpoint,
        customer=customer,
        response_id=uuid.uuid4(),
        source="typeform",
        survey_id="relationship-2026-q1",
        score=3,
        segment=Segment.DETRACTOR,
        closed_at=NOW - timedelta(days=30),
        requested_at=NOW,
        rule="detractor",
    )


def test_the_survey_tool_is_told_whom_to_ask_which_survey_and_the_cases_link() -> None:
    action = request()
    job = resurvey_job(action, case_url=CASE_URL)
    assert (job.endpoint, job.event_type, job.at) == ("survey_tool", "resurvey.requested", NOW)
    assert (job.channel, job.template, job.customer_id) == ("webhook", "request_resurvey", ADA.id)
    assert dict(job.data) == {
        "case_id": str(action.case_id),
        "case_url": f"https://cs.example.com/cases/{action.case_id}",
        "customer": {
            "id": "cus_0042",
            "email": "ada@example.com",
            "phone": None,
            "name": "Ada Lovelace",
            "locale": "en",
            "timezone": "Europe/London",
        },
        "survey_id": "relationship-2026-q1",
        "source": "typeform",
        "response_id": str(action.response_id),
        "score": 3,
        "segment": "detractor",
        "closed_at": "2026-03-06T16:00:00+00:00",
        "rule": "detractor",
    }


def test_a_customer_known_by_id_alone_is_sent_by_id() -> None:
    job = resurvey_job(request(customer=Customer(id="in-app-7")), case_url=CASE_URL)
    customer = job.data["customer"]
    assert customer == {
        "id": "in-app-7",
        "email": None,
        "phone": None,
        "name": None,
        "locale": None,
        "timezone": None,
    }


def test_an_endpoint_notify_lacks_is_undeliverable_and_says_what_to_do() -> None:
    configured = frozenset({"survey_tool", "ops"})
    assert undeliverable(request("survey_tool"), endpoints=configured) is None
    reason = undeliverable(request("surveys"), endpoints=configured)
    assert reason == (
        "no webhook endpoint 'surveys' in NOTIFY_WEBHOOKS (configured: ops, survey_tool); "
        "add it and re-drive"
    )
    assert "none" in str(undeliverable(request(), endpoints=frozenset()))


def dispatcher(ledger: InMemoryLedger, clock: FrozenClock, channel: ScriptedChannel) -> Dispatcher:
    return Dispatcher(
        ledger=ledger.transaction,
        channels={channel.name: channel},
        clock=clock,
        concurrency=4,
        case_url=CASE_URL,
        retry_delay=30.0,
        webhook_endpoints=frozenset({"survey_tool"}),
    )


async def test_a_re_survey_goes_through_the_webhook_channel_once_and_is_reported_as_webhook() -> (
    None
):
    ledger, channel = InMemoryLedger(), ScriptedChannel("webhook")
    action = request()
    notify = dispatcher(ledger, FrozenClock(NOW), channel)
    assert notify.undeliverable(action) is None
    await notify.dispatch([action, action])
    await notify.dispatch([action])
    [job] = channel.jobs
    assert isinstance(job, WebhookJob)
    assert job.action_id == action.action_id
    [result] = [e for e in ledger.published if isinstance(e, ActionResultReported)]
    assert (result.action_id, result.case_id, result.customer_id) == (
        action.action_id,
        action.case_id,
        "cus_0042",
    )
    # Not a message to the customer: followup's impact figures count email and sms only.
    assert (result.status, result.channel) == (ActionStatus.SENT, Channel.WEBHOOK)
    assert ledger.entries[action.action_id].channel == "webhook"


async def test_a_survey_tool_refusing_for_now_gets_the_request_again_later() -> None:
    clock, ledger = FrozenClock(NOW), InMemoryLedger()
    busy = Outcome(DispatchState.DEFERRED, reason="the endpoint answered 503")
    channel = ScriptedChannel("webhook", outcomes=[busy, Outcome(DispatchState.SENT)])
    action = request()
    notify = dispatcher(ledger, clock, channel)
    await notify.dispatch([action])
    assert action.action_id in ledger.parked
    assert [e for e in ledger.published if isinstance(e, ActionResultReported)] == []
    clock.advance(timedelta(seconds=30))
    assert await notify.sweep_parked(limit=10, lease=timedelta(minutes=5)) == 1
    [result] = [e for e in ledger.published if isinstance(e, ActionResultReported)]
    assert result.status is ActionStatus.SENT
    assert len(channel.jobs) == 2


async def test_one_webhook_endpoint_down_opens_its_own_circuit_and_not_the_others() -> None:
    class DownFor:
        """The webhook channel where one endpoint keeps answering 503."""

        name, dedupes_repeats = "webhook", False

        def __init__(self, down: str) -> None:
            self.down, self.called = down, list[str]()

        async def send(self, job: WebhookJob) -> Outcome:
            self.called.append(job.endpoint)
            if job.endpoint == self.down:
                return Outcome(DispatchState.DEFERRED, reason="the endpoint answered 503")
            return Outcome(DispatchState.SENT)

    ledger, channel = InMemoryLedger(), DownFor("ops_tool")
    notify = Dispatcher(
        ledger=ledger.transaction,
        channels={"webhook": channel},
        clock=FrozenClock(NOW),
        concurrency=4,
        case_url=CASE_URL,
        webhook_endpoints=frozenset({"survey_tool", "ops_tool"}),
    )
    for _ in range(5):  # five deferrals in a row open a circuit (test_dispatch_rules.py)
        await notify.dispatch([request("ops_tool")])
    assert channel.called == ["ops_tool"] * 5
    held, asked = request("ops_tool"), request("survey_tool")
    outcomes = await notify.dispatch([held, asked])
    assert channel.called[5:] == ["survey_tool"]  # the survey tool is still called
    assert outcomes[held.action_id].state is DispatchState.DEFERRED
    assert outcomes[held.action_id].reason == "the circuit of webhook endpoint ops_tool is open"
    assert outcomes[asked.action_id].state is DispatchState.SENT
