"""Whatever fails inside notify while building or sending one action fails that action, with
its reason, and never the batch or the process (issue #12). Against the real database and the
real SMTP sink.

The event models refuse a name with a line break or a list of addresses, so the actions that
carry them here are built without validation: they stand for anything that reaches notify
some other way (an older producer's parked command, a bug upstream).
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from nps_events import (
    ActionResultReported,
    ActionStatus,
    Customer,
    NotifyStaff,
    Segment,
    SendEmail,
    SendSms,
    StaffReason,
)
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, unit_of_work
from nps_notify.adapters import tables as notify_tables
from nps_notify.adapters.email import SmtpEmailChannel, TemplateRenderer
from nps_notify.adapters.repository import ledger_in
from nps_notify.config import SmtpSettings
from nps_notify.domain.dispatch import DispatchState, Outcome, SmsJob
from nps_notify.handlers import Dispatcher
from tests.support.infra import Infra

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CASE_URL = "http://cs.example.com/cases/{case_id}"


def _email(who: str, *, name: str = "Lin", address: str | None = None) -> SendEmail:
    customer = Customer.model_construct(
        id=who,
        email=address or f"{who}@example.com",
        name=name,
        phone=None,
        locale=None,
        timezone=None,
        attributes={},
    )
    return SendEmail.model_construct(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=customer,
        template="detractor_acknowledgement",
        locale="en",
        score=2,
        comment="slow",
        requested_at=NOW,
    )


def _dispatcher(
    sessions: SessionFactory, infra: Infra, *, case_url: str = CASE_URL, **channels: Any
) -> Dispatcher:
    email = SmtpEmailChannel(
        SmtpSettings(port=infra.smtp_port), renderer=TemplateRenderer(), attempts=1
    )
    return Dispatcher(
        ledger=ledger_in(sessions),
        channels={"email": email, **channels},
        clock=FrozenClock(NOW),
        concurrency=8,
        case_url=case_url,
    )


async def _results(sessions: SessionFactory, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    async with sessions() as session:
        rows = (await session.execute(select(notify_tables.outbox))).all()
    results = [ActionResultReported.model_validate_json(row.value) for row in rows]
    return {r.action_id: r for r in results if r.action_id in ids}


async def _ledger(sessions: SessionFactory, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    async with sessions() as session:
        rows = await session.execute(
            select(notify_tables.dispatches.c.action_id, notify_tables.dispatches.c.state).where(
                notify_tables.dispatches.c.action_id.in_(ids)
            )
        )
    return {row.action_id: row.state for row in rows}


def _mails_to(infra: Infra, address: str) -> list[Any]:
    return [m for m in infra.mail.messages() if address in str(m["To"])]


async def test_a_name_that_would_add_a_header_adds_none_and_the_batch_is_sent(
    sessions: SessionFactory, infra: Infra
) -> None:
    tag = uuid.uuid4().hex[:6]
    first, second = _email(f"a-{tag}"), _email(f"b-{tag}")
    eve = _email(f"eve-{tag}", name="Eve\nBcc: intruder@example.com")
    outcomes = await _dispatcher(sessions, infra).dispatch([first, eve, second])
    assert {a: o.state for a, o in outcomes.items()} == {
        first.action_id: DispatchState.SENT,
        eve.action_id: DispatchState.SENT,
        second.action_id: DispatchState.SENT,
    }
    [mail] = _mails_to(infra, f"eve-{tag}@example.com")
    assert mail["Bcc"] is None
    assert len(mail["To"].addresses) == 1
    assert mail["To"].addresses[0].display_name == "Eve Bcc: intruder@example.com"
    assert len(_mails_to(infra, f"a-{tag}@example.com")) == 1
    assert len(_mails_to(infra, f"b-{tag}@example.com")) == 1


async def test_a_list_of_addresses_fails_that_action_with_its_reason_and_the_rest_go_out(
    sessions: SessionFactory, infra: Infra
) -> None:
    tag = uuid.uuid4().hex[:6]
    first, second = _email(f"a-{tag}"), _email(f"b-{tag}")
    listed = _email(f"x-{tag}", address=f"x-{tag}@y.example,bob")
    staff = NotifyStaff.model_construct(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id=f"s-{tag}",
        recipient=f"ok-{tag}@team.example, outsider@example.org",
        role="owner",
        reason=StaffReason.ASSIGNED,
        level=0,
        due_at=None,
        segment=Segment.DETRACTOR,
        score=2,
        requested_at=NOW,
    )
    actions = [first, listed, staff, second]
    ids = [a.action_id for a in actions]
    outcomes = await _dispatcher(sessions, infra).dispatch(actions)
    assert outcomes[first.action_id].state is DispatchState.SENT
    assert outcomes[second.action_id].state is DispatchState.SENT
    for refused in (listed, staff):
        outcome = outcomes[refused.action_id]
        assert outcome.state is DispatchState.FAILED
        assert outcome.reason is not None
        assert outcome.reason.startswith("the recipient address cannot be sent to")
    assert _mails_to(infra, "outsider@example.org") == []
    assert _mails_to(infra, f"x-{tag}@y.example") == []
    results = await _results(sessions, ids)
    assert {a: r.status for a, r in results.items()} == {
        first.action_id: ActionStatus.SENT,
        listed.action_id: ActionStatus.FAILED,
        staff.action_id: ActionStatus.FAILED,
        second.action_id: ActionStatus.SENT,
    }
    assert set((await _ledger(sessions, ids)).values()) == {"sent", "failed"}


class _SmsThatBreaksOnce:
    """An SMS channel (a fake of notify's own `Channel` port) with a bug for one number."""

    name = "sms"
    dedupes_repeats = False

    def __init__(self, broken: str) -> None:
        self.broken = broken
        self.sent: list[str] = []

    async def send(self, job: SmsJob) -> Outcome:
        if job.to == self.broken:
            raise RuntimeError("a bug in a channel")
        self.sent.append(job.to or "")
        return Outcome(DispatchState.SENT, provider_message_id=f"SM{len(self.sent)}")


def _sms(number: str) -> SendSms:
    return SendSms(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id=f"c{number[-4:]}", phone=number),
        template="detractor_acknowledgement",
        requested_at=NOW,
    )


async def test_a_channel_that_raises_makes_that_action_unknown_and_the_batch_goes_on(
    sessions: SessionFactory, infra: Infra
) -> None:
    sms = _SmsThatBreaksOnce(broken="+14155550002")
    actions = [_sms("+14155550001"), _sms("+14155550002"), _sms("+14155550003")]
    ids = [a.action_id for a in actions]
    outcomes = await _dispatcher(sessions, infra, sms=sms).dispatch(actions)
    assert [outcomes[i].state for i in ids] == [
        DispatchState.SENT,
        DispatchState.UNKNOWN,  # the error may have come after the provider took it
        DispatchState.SENT,
    ]
    assert "RuntimeError: a bug in a channel" in (outcomes[ids[1]].reason or "")
    assert sms.sent == ["+14155550001", "+14155550003"]
    assert {a: r.status for a, r in (await _results(sessions, ids)).items()} == {
        ids[0]: ActionStatus.SENT,
        ids[1]: ActionStatus.UNKNOWN,
        ids[2]: ActionStatus.SENT,
    }
    # Never twice: delivered again, the broken one is not tried again.
    again = await _dispatcher(sessions, infra, sms=sms).dispatch(actions)
    assert again == {}
    assert sms.sent == ["+14155550001", "+14155550003"]


async def test_an_action_whose_job_cannot_be_built_fails_alone(
    sessions: SessionFactory, infra: Infra
) -> None:
    tag = uuid.uuid4().hex[:6]
    email = _email(f"a-{tag}")
    notice = NotifyStaff(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id=f"s-{tag}",
        recipient=f"lead-{tag}@example.com",
        role="lead",
        reason=StaffReason.ESCALATION,
        level=1,
        segment=Segment.DETRACTOR,
        score=2,
        requested_at=NOW,
    )
    # A case link with a placeholder notify does not fill (settings refuse it at start-up).
    dispatcher = _dispatcher(sessions, infra, case_url="http://cs.example.com/{case_id}/{team}")
    outcomes = await dispatcher.dispatch([email, notice])
    assert outcomes[email.action_id].state is DispatchState.SENT
    assert outcomes[notice.action_id].state is DispatchState.FAILED
    assert "KeyError" in (outcomes[notice.action_id].reason or "")
    results = await _results(sessions, [notice.action_id])
    assert results[notice.action_id].status is ActionStatus.FAILED


async def test_a_parked_action_that_no_longer_decodes_fails_and_the_others_are_swept(
    sessions: SessionFactory, infra: Infra
) -> None:
    tag = uuid.uuid4().hex[:6]
    good, stale = _email(f"a-{tag}"), _email(f"eve-{tag}", name="Eve\nBcc: x@example.com")
    async with unit_of_work(sessions) as session:
        for action in (good, stale):
            await session.execute(
                notify_tables.dispatches.insert().values(
                    action_id=action.action_id,
                    case_id=action.case_id,
                    customer_id=action.customer.id,
                    channel="email",
                    template=action.template,
                    state="deferred",
                    attempts=1,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
            await session.execute(
                notify_tables.parked.insert().values(
                    action_id=action.action_id,
                    channel="email",
                    ce_type=action.ce_type,
                    # What a notify of before issue #12 parked: no validation then.
                    action=action.model_dump_json(),
                    not_before=NOW,
                    attempts=1,
                    reason="SMTP 421",
                )
            )
    dispatcher = _dispatcher(sessions, infra)
    taken = await dispatcher.sweep_parked(limit=100, lease=timedelta(minutes=5))
    assert taken >= 2
    ids = [good.action_id, stale.action_id]
    assert await _ledger(sessions, ids) == {good.action_id: "sent", stale.action_id: "failed"}
    results = await _results(sessions, ids)
    assert results[good.action_id].status is ActionStatus.SENT
    assert results[stale.action_id].status is ActionStatus.FAILED
    assert "customer.name" in (results[stale.action_id].reason or "")
    async with sessions() as session:
        left = (
            await session.execute(
                select(notify_tables.parked.c.action_id).where(
                    notify_tables.parked.c.action_id.in_(ids)
                )
            )
        ).all()
    assert left == []
    assert len(_mails_to(infra, f"a-{tag}@example.com")) == 1
    assert _mails_to(infra, f"eve-{tag}@example.com") == []


class _SmsThatAnswersOddly:
    """An SMS channel (a fake of notify's own port) passing on a provider's odd answers."""

    name = "sms"
    dedupes_repeats = False

    async def send(self, job: SmsJob) -> Outcome:
        if job.to == "+14155550011":
            return Outcome(DispatchState.FAILED, reason="Twilio 400: bad\x00body\x1b[0m")
        if job.to == "+14155550012":
            return Outcome(DispatchState.DEFERRED, reason="Twilio 503: \x00down")
        return Outcome(DispatchState.SENT, provider_message_id="SM\x001\nX")


async def test_a_providers_answer_no_table_can_hold_is_recorded_cleaned(
    sessions: SessionFactory, infra: Infra
) -> None:
    actions = [_sms("+14155550011"), _sms("+14155550012"), _sms("+14155550013")]
    ids = [a.action_id for a in actions]
    await _dispatcher(sessions, infra, sms=_SmsThatAnswersOddly()).dispatch(actions)
    assert await _ledger(sessions, ids) == {
        ids[0]: "failed",
        ids[1]: "deferred",
        ids[2]: "sent",
    }
    results = await _results(sessions, ids)
    assert results[ids[0]].reason == "Twilio 400: badbody[0m"
    assert results[ids[2]].provider_message_id == "SM1 X"
    async with sessions() as session:
        parked = (
            await session.execute(
                select(notify_tables.parked.c.reason).where(
                    notify_tables.parked.c.action_id == ids[1]
                )
            )
        ).scalar_one()
    assert parked == "Twilio 503: down"
