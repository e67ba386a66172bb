"""Holdouts and impact figures on the real database, notify's dispatcher and the SMTP sink: a
held-out passive gets no email while a messaged one does, and when both answer again the
impact figures put each in its group (`held_out`, `automated_message_only`)."""

import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from nps_events import ActionResultReported, Customer, ResponseScored, Segment, SendEmail, decode
from nps_followup.adapters import tables
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.impact import ImpactReader
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.holdout import is_held_out
from nps_followup.domain.impact import Done
from nps_followup.handlers import PolicyInForce, apply_policy, record_action_results
from nps_followup.handlers.impact import impact_figures
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, unit_of_work
from nps_notify.adapters import tables as notify_tables
from nps_notify.adapters.email import SmtpEmailChannel, TemplateRenderer
from nps_notify.adapters.repository import ledger_in
from nps_notify.config import SmtpSettings
from nps_notify.handlers import Dispatcher
from tests.integration.kafka_helpers import NOW
from tests.support.infra import Infra

#: The default policy, its passive education sent at once, with a holdout of 10%.
_TEXT = default_policy_text().replace(
    "        template: passive_education\n        after: 1 day\n",
    "        template: passive_education\n    holdout: 10%\n",
)
_POLICY = parse_policy(_TEXT)
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))
TEN = Decimal(10)
LATER = NOW + timedelta(days=30)
RUN = uuid.uuid4().hex[:6]
CANDIDATES = [f"imp-{RUN}-{i}" for i in range(200)]
HELD = next(c for c in CANDIDATES if is_held_out("passive", c, TEN))
MESSAGED = next(c for c in CANDIDATES if not is_held_out("passive", c, TEN))


def _answer(customer: str, score: int, segment: Segment, *, at: datetime = NOW) -> ResponseScored:
    return ResponseScored(
        response_id=uuid.uuid4(),
        source="typeform",
        survey_id="relationship",
        customer=Customer(id=customer, email=f"{customer}@example.com", name="Kim"),
        score=score,
        segment=segment,
        comment=None,
        responded_at=at,
        scored_at=at,
        received_event_id=uuid.uuid4(),
    )


def _mails_to(infra: Infra, customer: str) -> int:
    return sum(1 for m in infra.mail.messages() if f"{customer}@example.com" in str(m["To"]))


async def _emails_queued(sessions: SessionFactory) -> list[SendEmail]:
    """The SendEmail commands followup queued in its outbox for notify."""
    async with sessions() as session:
        rows = (await session.execute(select(tables.outbox).order_by(tables.outbox.c.id))).all()
    events = [
        decode(tuple((n, v.encode()) for n, v in json.loads(r.headers)), r.value).data for r in rows
    ]
    return [e for e in events if isinstance(e, SendEmail)]


@pytest.fixture(scope="module")
async def answered(sessions: SessionFactory, infra: Infra) -> None:
    """Both passives answer at NOW; what followup queued goes through notify's dispatcher to
    the SMTP sink, and the outcome back to followup; thirty days later both answer 10."""
    async with unit_of_work(sessions) as session:
        await apply_policy(
            FollowupRepository(session),
            [_answer(HELD, 7, Segment.PASSIVE), _answer(MESSAGED, 8, Segment.PASSIVE)],
            now=NOW,
            policy=POLICY,
        )
    dispatcher = Dispatcher(
        ledger=ledger_in(sessions),
        channels={
            "email": SmtpEmailChannel(
                SmtpSettings(port=infra.smtp_port), renderer=TemplateRenderer(), attempts=1
            )
        },
        clock=FrozenClock(NOW + timedelta(minutes=1)),
        concurrency=2,
        case_url="http://cs.example.com/cases/{case_id}",
    )
    await dispatcher.dispatch(await _emails_queued(sessions))
    async with sessions() as session:
        rows = (await session.execute(select(notify_tables.outbox))).all()
    results = [ActionResultReported.model_validate_json(r.value) for r in rows]
    async with unit_of_work(sessions) as session:
        await record_action_results(
            FollowupRepository(session), results, now=NOW + timedelta(minutes=1)
        )
    async with unit_of_work(sessions) as session:
        await apply_policy(
            FollowupRepository(session),
            [_answer(c, 10, Segment.PROMOTER, at=LATER) for c in (HELD, MESSAGED)],
            now=LATER,
            policy=POLICY,
        )


async def test_a_held_out_passive_gets_no_email_and_a_messaged_one_does(
    answered: None, sessions: SessionFactory, infra: Infra
) -> None:
    assert (_mails_to(infra, HELD), _mails_to(infra, MESSAGED)) == (0, 1)
    async with sessions() as session:
        held = (
            await session.execute(
                select(tables.responses_not_acted_on).where(
                    tables.responses_not_acted_on.c.customer_id == HELD
                )
            )
        ).all()
        cases = (
            await session.execute(
                select(tables.cases.c.segment).where(tables.cases.c.customer_id == HELD)
            )
        ).all()
    assert [(r.reason, r.rule) for r in held] == [("holdout", "passive")]
    # No case of the passive answer; the later promoter answer's rule holds nobody out.
    assert [r.segment for r in cases] == ["promoter"]


async def test_the_impact_figures_put_each_passive_in_its_group(
    answered: None, sessions: SessionFactory
) -> None:
    async with sessions() as session:
        found = await impact_figures(ImpactReader(session), start=NOW, end=LATER)

    # Each went from passive (0) to promoter (+1): +100 points, one customer per group.
    assert [(g.segment, g.done, g.estimate.customers, g.estimate.change) for g in found.groups] == [
        (Segment.PASSIVE, Done.AUTOMATED_MESSAGE_ONLY, 1, 100),
        (Segment.PASSIVE, Done.HELD_OUT, 1, 100),
    ]
    assert all(not g.estimate.conclusive for g in found.groups)
    [comparison] = found.against_holdout
    assert (comparison.effect.change, comparison.effect.conclusive) == (0, False)
    # The later answers start no pair of their own; a period after them has none.
    async with sessions() as session:
        after = await impact_figures(ImpactReader(session), start=LATER, end=None)
    assert after.groups == []
