"""Notify's dispatching use cases against in-memory fakes of its ledger and channels: at most
once, parking and the give-up after `max_attempts`, quiet hours, channels notify lacks, a
channel's bug, providers' unsubscribes, unreadable parked actions and helpdesk ticket changes.
The SQL of the ledger is covered by the PostgreSQL tests (tests/integration)."""

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from nps_events import (
    ActionResultReported,
    ActionStatus,
    Channel,
    ContactOptOut,
    CreateTicket,
    Customer,
    OptOutScope,
    QuietHours,
    RaiseTicketPriority,
    Segment,
    SendEmail,
    SendSms,
    TicketPriority,
    TicketStatusChanged,
)
from nps_kit.clock import FrozenClock
from nps_notify.adapters.repository import Job, UnreadableParked
from nps_notify.domain.dispatch import DispatchState, Outcome, TicketJob
from nps_notify.domain.tickets import TicketChange
from nps_notify.handlers import INTERRUPTED, Dispatcher, record_ticket_change
from tests.support.notify_fakes import InMemoryLedger, LedgerEntry, Parked, ScriptedChannel

#: Noon in Paris on a Tuesday: outside any night-time quiet hours.
NOW = datetime(2026, 3, 3, 11, tzinfo=UTC)
LEASE = timedelta(minutes=5)
DEFERRED = Outcome(DispatchState.DEFERRED, reason="429 Too Many Requests", retry_after=5.0)


def email(customer: str = "c-1") -> SendEmail:
    return SendEmail(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id=customer, email=f"{customer}@example.com", name="Ada"),
        template="detractor_apology",
        score=2,
        requested_at=NOW,
    )


def sms(quiet: QuietHours | None = None) -> SendSms:
    return SendSms(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id="c-sms", phone="+33612345678", name="Ada"),
        template="detractor_apology_sms",
        requested_at=NOW,
        quiet_hours=quiet,
    )


def ticket() -> CreateTicket:
    return CreateTicket(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id="c-1", email="ada@example.com"),
        priority=TicketPriority.HIGH,
        title="Detractor: Ada",
        score=1,
        segment=Segment.DETRACTOR,
        requested_at=NOW,
    )


def dispatcher(
    ledger: InMemoryLedger, clock: FrozenClock, *channels: ScriptedChannel, max_attempts: int = 3
) -> Dispatcher:
    return Dispatcher(
        ledger=ledger.transaction,
        channels={c.name: c for c in channels},
        clock=clock,
        concurrency=4,
        case_url="https://cs.example.com/cases/{case_id}",
        retry_delay=30.0,
        max_attempts=max_attempts,
    )


def results(ledger: InMemoryLedger) -> dict[uuid.UUID, ActionResultReported]:
    return {e.action_id: e for e in ledger.published if isinstance(e, ActionResultReported)}


async def test_an_action_delivered_twice_reaches_the_customer_once() -> None:
    ledger, channel = InMemoryLedger(), ScriptedChannel("email")
    action = email()
    first = await dispatcher(ledger, FrozenClock(NOW), channel).dispatch([action, action])
    again = await dispatcher(ledger, FrozenClock(NOW), channel).dispatch([action])
    assert first[action.action_id].state is DispatchState.SENT
    assert again == {}
    assert len(channel.jobs) == 1
    assert ledger.entries[action.action_id].provider_message_id == "p-1"
    result = results(ledger)[action.action_id]
    assert (result.status, result.channel) == (ActionStatus.SENT, Channel.EMAIL)


async def test_an_interrupted_send_is_reported_unknown_not_sent_again() -> None:
    ledger, channel = InMemoryLedger(), ScriptedChannel("email")
    action = email()
    ledger.entries[action.action_id] = LedgerEntry(
        action.case_id, "c-1", "email", "detractor_apology", DispatchState.SENDING
    )
    outcome = await dispatcher(ledger, FrozenClock(NOW), channel).dispatch([action])
    assert outcome[action.action_id] == Outcome(DispatchState.UNKNOWN, reason=INTERRUPTED)
    assert channel.jobs == []
    assert results(ledger)[action.action_id].status is ActionStatus.UNKNOWN


async def test_an_interrupted_send_goes_again_to_a_provider_that_dedupes_repeats() -> None:
    ledger = InMemoryLedger()
    tickets = ScriptedChannel("ticket", dedupes_repeats=True)
    action = ticket()
    ledger.entries[action.action_id] = LedgerEntry(
        action.case_id, "c-1", "ticket", "create", DispatchState.SENDING
    )
    outcome = await dispatcher(ledger, FrozenClock(NOW), tickets).dispatch([action])
    assert outcome[action.action_id].state is DispatchState.SENT
    assert len(tickets.jobs) == 1


async def test_a_deferred_action_is_parked_for_the_longer_of_the_providers_wait_and_ours() -> None:
    ledger, channel = InMemoryLedger(), ScriptedChannel("email", outcomes=[DEFERRED])
    action = email()
    await dispatcher(ledger, FrozenClock(NOW), channel).dispatch([action])
    parked = ledger.parked[action.action_id]
    assert parked.not_before == NOW + timedelta(seconds=30)  # retry_delay 30 s > Retry-After 5 s
    assert ledger.entries[action.action_id].state is DispatchState.DEFERRED
    assert results(ledger) == {}  # nothing final to report yet


async def test_a_parked_action_is_sent_by_the_sweeper_and_reported_once() -> None:
    clock = FrozenClock(NOW)
    ledger = InMemoryLedger()
    channel = ScriptedChannel("email", outcomes=[DEFERRED, Outcome(DispatchState.SENT)])
    action = email()
    notify = dispatcher(ledger, clock, channel)
    await notify.dispatch([action])
    assert await notify.sweep_parked(limit=10, lease=LEASE) == 0  # not due yet
    clock.advance(timedelta(seconds=30))
    assert await notify.sweep_parked(limit=10, lease=LEASE) == 1
    assert ledger.parked == {}
    assert results(ledger)[action.action_id].status is ActionStatus.SENT
    assert len(channel.jobs) == 2


async def test_a_parked_action_fails_for_good_after_max_attempts_with_the_last_reason() -> None:
    clock = FrozenClock(NOW)
    ledger, channel = InMemoryLedger(), ScriptedChannel("email", outcomes=[DEFERRED])
    action = email()
    notify = dispatcher(ledger, clock, channel, max_attempts=3)
    await notify.dispatch([action])
    for _ in range(2):
        clock.advance(timedelta(seconds=30))
        await notify.sweep_parked(limit=10, lease=LEASE)
    assert len(channel.jobs) == 3
    assert ledger.parked == {}
    result = results(ledger)[action.action_id]
    assert result.status is ActionStatus.FAILED
    assert result.reason == "gave up after 3 tries; the last: 429 Too Many Requests"
    assert ledger.entries[action.action_id].state is DispatchState.FAILED
    clock.advance(timedelta(hours=1))
    assert await notify.sweep_parked(limit=10, lease=LEASE) == 0  # never tried again


async def test_an_sms_due_inside_the_customers_quiet_hours_waits_for_their_end() -> None:
    ledger, channel = InMemoryLedger(), ScriptedChannel("sms")
    # 11:00 UTC is 20:00 in Tokyo: inside 19:00-09:00 there, which ends at 00:00 UTC.
    action = sms(QuietHours(timezone="Asia/Tokyo", start="19:00", end="09:00"))
    outcome = await dispatcher(ledger, FrozenClock(NOW), channel).dispatch([action])
    assert outcome[action.action_id].state is DispatchState.DEFERRED
    assert outcome[action.action_id].reason == "the customer's quiet hours"
    assert channel.jobs == []
    assert ledger.parked[action.action_id].not_before == datetime(2026, 3, 4, tzinfo=UTC)


async def test_an_sms_outside_quiet_hours_is_sent() -> None:
    ledger, channel = InMemoryLedger(), ScriptedChannel("sms")
    action = sms(QuietHours(timezone="Europe/Paris", start="21:00", end="08:00"))
    outcome = await dispatcher(ledger, FrozenClock(NOW), channel).dispatch([action])
    assert outcome[action.action_id].state is DispatchState.SENT


async def test_an_action_of_a_channel_notify_lacks_is_reported_failed_with_the_reason() -> None:
    ledger = InMemoryLedger()
    action = sms()
    outcome = await dispatcher(ledger, FrozenClock(NOW), ScriptedChannel("email")).dispatch(
        [action]
    )
    assert outcome == {}
    result = results(ledger)[action.event_id()]
    assert (result.status, result.reason) == (ActionStatus.FAILED, "no sms channel is configured")
    assert ledger.entries == {}


async def test_a_channel_that_raises_reports_that_action_unknown_and_the_others_go_on() -> None:
    ledger = InMemoryLedger()
    broken = ScriptedChannel("sms", raises=RuntimeError("bug"))
    mail = ScriptedChannel("email")
    texted, emailed = sms(), email()
    outcome = await dispatcher(ledger, FrozenClock(NOW), broken, mail).dispatch([texted, emailed])
    assert outcome[texted.action_id].state is DispatchState.UNKNOWN
    assert "RuntimeError: bug" in (outcome[texted.action_id].reason or "")
    assert outcome[emailed.action_id].state is DispatchState.SENT


async def test_a_customer_who_texted_stop_is_published_as_opted_out_of_sms() -> None:
    ledger = InMemoryLedger()
    refused = Outcome(DispatchState.FAILED, reason="21610 unsubscribed", unsubscribed=True)
    action = sms()
    await dispatcher(ledger, FrozenClock(NOW), ScriptedChannel("sms", [refused])).dispatch([action])
    opt_outs = [e for e in ledger.published if isinstance(e, ContactOptOut)]
    assert [(o.customer_id, o.scope) for o in opt_outs] == [("c-sms", OptOutScope.SMS)]
    assert opt_outs[0].provider_event_id == f"unsubscribed:{action.action_id}"


async def test_a_priority_raise_names_the_ticket_its_create_action_opened() -> None:
    ledger, tickets = InMemoryLedger(), ScriptedChannel("ticket")
    created = uuid.uuid4()
    ledger.entries[created] = LedgerEntry(
        uuid.uuid4(), "c-1", "ticket", "create", DispatchState.SENT, provider_message_id="ZD-7"
    )
    action = RaiseTicketPriority(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id="c-1",
        ticket_action_id=created,
        priority=TicketPriority.URGENT,
        requested_at=NOW,
    )
    await dispatcher(ledger, FrozenClock(NOW), tickets).dispatch([action])
    [job] = tickets.jobs
    assert isinstance(job, TicketJob)
    assert (job.ticket_id, job.priority) == ("ZD-7", "urgent")


async def test_a_parked_action_that_no_longer_decodes_fails_with_the_problem() -> None:
    ledger = InMemoryLedger()
    action_id, case_id = uuid.uuid4(), uuid.uuid4()
    ledger.entries[action_id] = LedgerEntry(
        case_id, "c-1", "email", "detractor_apology", DispatchState.DEFERRED
    )
    problem = UnreadableParked(action_id, SendEmail.ce_type, "customer.email: not an address")
    ledger.parked[action_id] = Parked(None, NOW, unreadable=problem)
    taken = await dispatcher(ledger, FrozenClock(NOW), ScriptedChannel("email")).sweep_parked(
        limit=10, lease=LEASE
    )
    assert taken == 1
    assert ledger.parked == {}
    result = results(ledger)[action_id]
    assert (result.case_id, result.status) == (case_id, ActionStatus.FAILED)
    assert result.reason == "it can no longer be read: customer.email: not an address"


async def test_a_ticket_change_is_relayed_only_for_a_ticket_npsloop_opened() -> None:
    ledger = InMemoryLedger()
    action_id, case_id = uuid.uuid4(), uuid.uuid4()
    ledger.entries[action_id] = LedgerEntry(
        case_id, "c-1", "ticket", "create", DispatchState.SENT, provider_message_id="ZD-7"
    )
    change = TicketChange(
        event_id="e-1", ticket_id="ZD-7", status="solved", previous_status="open", at=NOW
    )
    stranger = TicketChange(
        event_id="e-2", ticket_id="ZD-8", status="solved", previous_status=None, at=NOW
    )
    clock = FrozenClock(NOW)
    assert (
        await record_ticket_change(
            change, helpdesk="zendesk", ledger=ledger.transaction, clock=clock
        )
        is None
    )
    ignored = await record_ticket_change(
        stranger, helpdesk="zendesk", ledger=ledger.transaction, clock=clock
    )
    assert ignored == "ticket ZD-8 was not opened by npsloop"
    [event] = ledger.published
    assert isinstance(event, TicketStatusChanged)
    assert (event.action_id, event.case_id, event.status) == (action_id, case_id, "solved")


class _Watching(ScriptedChannel):
    """Notes, at each send, how many actions the ledger holds `sending`: those a crash at that
    moment would leave `unknown`."""

    def __init__(self, ledger: InMemoryLedger) -> None:
        super().__init__("email")
        self.ledger = ledger
        self.sending_at_each_send: list[int] = []

    async def send(self, job: object) -> Outcome:
        self.sending_at_each_send.append(
            sum(e.state is DispatchState.SENDING for e in self.ledger.entries.values())
        )
        return await super().send(job)


async def test_a_slices_outcomes_are_written_with_the_next_slices_sending_mark() -> None:
    """One unit of work per slice (plus one for the last slice's outcomes), not two; and a
    crash at any send still finds only the slice in flight `sending`."""
    ledger = InMemoryLedger()
    channel = _Watching(ledger)
    actions = [email(f"c-{i}") for i in range(10)]  # slices of 4: 4, 4 and 2
    outcomes = await dispatcher(ledger, FrozenClock(NOW), channel).dispatch(actions)
    assert {o.state for o in outcomes.values()} == {DispatchState.SENT}
    assert ledger.transactions == 3 + 1
    assert channel.sending_at_each_send == [4] * 8 + [2] * 2
    assert {e.state for e in ledger.entries.values()} == {DispatchState.SENT}
    assert set(results(ledger)) == {a.action_id for a in actions}


class _FailingBegin(InMemoryLedger):
    """A ledger whose `fail_at`-th `begin_dispatches` raises (a bug, not an outage)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at, self.calls = fail_at, 0

    async def begin_dispatches(
        self,
        jobs: Sequence[Job],
        *,
        now: datetime,
        finishing: Mapping[uuid.UUID, Outcome] | None = None,
    ) -> dict[uuid.UUID, DispatchState | None]:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ValueError(f"a bug in slice {self.fail_at}")
        return await super().begin_dispatches(jobs, now=now, finishing=finishing)


@pytest.mark.parametrize(("failing", "written"), [(2, 4), (3, 8)])
async def test_a_slice_that_cannot_begin_still_writes_the_outcomes_before_it(
    failing: int, written: int
) -> None:
    """The outcomes of the slice already sent exist only in memory: when the next slice's
    transaction fails (not an outage), they are written on their own before the error goes
    up, so those messages are `sent`, not `unknown`; at a later slice, the slices before were
    already written with the marks after them. The slice that could not begin is not marked,
    and nothing of it is sent."""
    ledger, channel = _FailingBegin(failing), ScriptedChannel("email")
    actions = [email(f"c-{i}") for i in range(12)]
    with pytest.raises(ValueError, match=f"slice {failing}"):
        await dispatcher(ledger, FrozenClock(NOW), channel).dispatch(actions)
    first = {a.action_id for a in actions[:written]}
    assert {i for i, e in ledger.entries.items() if e.state is DispatchState.SENT} == first
    assert set(ledger.entries) == first
    assert set(results(ledger)) == first
    assert len(channel.jobs) == written


class _Crash(BaseException):
    """What `_send_one` does not catch (it answers every `Exception` with `unknown`)."""


class _CrashingAt(ScriptedChannel):
    def __init__(self, at: int) -> None:
        super().__init__("email")
        self.at = at

    async def send(self, job: object) -> Outcome:
        if len(self.jobs) + 1 == self.at:
            self.jobs.append(job)
            raise _Crash
        return await super().send(job)


async def test_a_slice_that_breaks_off_leaves_only_itself_sending() -> None:
    """The crash window is one slice: slice 2 breaks off mid-way, so its actions stay
    `sending` (a redelivery reports the emails `unknown`); slice 1's outcomes were written
    when slice 2 was marked, and slice 3 was never marked nor sent."""
    ledger, channel = InMemoryLedger(), _CrashingAt(6)
    actions = [email(f"c-{i}") for i in range(12)]
    with pytest.raises(_Crash):
        await dispatcher(ledger, FrozenClock(NOW), channel).dispatch(actions)
    states = {a: e.state for a, e in ledger.entries.items()}
    assert [states[a.action_id] for a in actions[:4]] == [DispatchState.SENT] * 4
    assert [states[a.action_id] for a in actions[4:8]] == [DispatchState.SENDING] * 4
    assert not {a.action_id for a in actions[8:]} & set(states)
    assert len(channel.jobs) <= 8


async def test_a_priority_raise_names_the_ticket_opened_by_the_slice_before() -> None:
    """The create action is in slice 1, the raise in slice 2 of the same batch: slice 1's
    outcome is written in the transaction that marks slice 2 `sending`, so the raise finds
    the ticket's id in the ledger."""
    ledger = InMemoryLedger()
    tickets = ScriptedChannel("ticket", [Outcome(DispatchState.SENT, provider_message_id="ZD-9")])
    create = ticket()
    raised = RaiseTicketPriority(
        action_id=uuid.uuid4(),
        case_id=create.case_id,
        customer_id="c-1",
        ticket_action_id=create.action_id,
        priority=TicketPriority.URGENT,
        requested_at=NOW,
    )
    others = [email(f"c-{i}") for i in range(3)]
    await dispatcher(ledger, FrozenClock(NOW), tickets, ScriptedChannel("email")).dispatch(
        [create, *others, raised]
    )
    job = tickets.jobs[-1]
    assert isinstance(job, TicketJob)
    assert (job.raise_of, job.ticket_id) == (create.action_id, "ZD-9")
    assert results(ledger)[raised.action_id].status is ActionStatus.SENT
