"""GDPR erasure against the real database: `erase-customer` deletes every row a service keeps
about one customer, leaves everyone else's, and is idempotent (a second run erases nothing)."""

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Table, func, select

from nps_events import Customer, ResponseScored, Segment, SendEmail, SendSms
from nps_followup import bootstrap as followup_bootstrap
from nps_followup.adapters import tables as followup_tables
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.config import FollowupSettings
from nps_followup.domain.referrals import referral_code
from nps_followup.handlers import open_cases
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.settings import DatabaseSettings
from nps_notify import bootstrap as notify_bootstrap
from nps_notify.adapters import tables as notify_tables
from nps_notify.adapters.email import SmtpEmailChannel, TemplateRenderer
from nps_notify.adapters.repository import NotifyRepository, ledger_in
from nps_notify.config import NotifySettings, SmtpSettings
from nps_notify.handlers import Dispatcher, sms_job
from nps_scoring import bootstrap as scoring_bootstrap
from nps_scoring.adapters import tables as scoring_tables
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.adapters.taxonomy import load_taxonomy
from nps_scoring.config import ScoringSettings
from nps_scoring.domain.themes import KeywordThemeClassifier
from nps_scoring.handlers import score_responses
from tests.integration.kafka_helpers import NOW, a_response
from tests.integration.test_service_handlers import POLICY
from tests.support.infra import Infra


def _customers() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:6]
    return f"erase-{tag}", f"keep-{tag}"


async def _rows(sessions: SessionFactory, table: Table, customer: str) -> int:
    """Rows of `table` about `customer`: by customer_id, by case, or by message key."""
    columns = table.c
    if "customer_id" in columns:
        where = columns.customer_id == customer
    elif "case_id" in columns:
        cases = select(followup_tables.cases.c.case_id).where(
            followup_tables.cases.c.customer_id == customer
        )
        where = columns.case_id.in_(cases)
    else:
        where = columns.key == customer.encode()
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(where)) or 0)


def _database(url: str) -> DatabaseSettings:
    return DatabaseSettings(url=SecretStr(url))


def _scored(customer: str, *, backfill: bool = False) -> ResponseScored:
    response = a_response(customer_id=customer, score=2)
    return ResponseScored(
        response_id=response.response_id,
        source=response.source,
        survey_id=response.survey_id,
        customer=response.customer,
        score=2,
        segment=Segment.DETRACTOR,
        comment=response.comment,
        responded_at=NOW,
        scored_at=NOW,
        received_event_id=response.event_id(),
        backfill=backfill,
    )


async def test_scoring_erases_a_customers_responses_and_keeps_the_figures(
    sessions: SessionFactory, database_url: str
) -> None:
    gone, kept = _customers()
    classifier = KeywordThemeClassifier(load_taxonomy())
    async with unit_of_work(sessions) as session:
        responses = [a_response(gone, 2), a_response(gone, 9), a_response(kept, 5)]
        await score_responses(ScoringRepository(session), responses, now=NOW, classifier=classifier)
    async with sessions() as session:
        figures_before = (await session.execute(select(scoring_tables.figures))).all()

    settings = ScoringSettings(database=_database(database_url))
    erased = await scoring_bootstrap.erase_customer(settings, gone)

    # Both responses, and their ResponseScored events still queued (no relay runs here).
    assert erased == {"responses": 2, "outbox": 2}
    assert await _rows(sessions, scoring_tables.responses, gone) == 0
    assert await _rows(sessions, scoring_tables.outbox, gone) == 0
    assert await _rows(sessions, scoring_tables.responses, kept) == 1
    assert await _rows(sessions, scoring_tables.outbox, kept) == 1
    async with sessions() as session:
        figures_after = (await session.execute(select(scoring_tables.figures))).all()
    assert figures_after == figures_before  # anonymous counts, kept
    assert await scoring_bootstrap.erase_customer(settings, gone) == {"responses": 0, "outbox": 0}


async def test_followup_erases_a_customers_cases_and_everything_hanging_off_them(
    sessions: SessionFactory, database_url: str
) -> None:
    gone, kept = _customers()
    async with unit_of_work(sessions) as session:
        await open_cases(
            FollowupRepository(session),
            # An imported answer of history too: set aside, with the customer's id.
            [_scored(gone), _scored(kept), _scored(gone, backfill=True)],
            now=NOW,
            policy=POLICY,
        )
    async with unit_of_work(sessions) as session:
        await session.execute(
            followup_tables.do_not_contact.insert().values(
                customer_id=gone, scope="sms", source="test", at=NOW
            )
        )
        # Each was asked again after their case closed (docs/resurvey.md).
        for customer in (gone, kept):
            case_id = await session.scalar(
                select(followup_tables.cases.c.case_id).where(
                    followup_tables.cases.c.customer_id == customer
                )
            )
            await session.execute(
                followup_tables.resurveys.insert().values(
                    case_id=case_id,
                    customer_id=customer,
                    timer_id=uuid.uuid4(),
                    closed_at=NOW,
                    requested_at=NOW,
                )
            )
        # Their referral code, and a referral it brought (as for a promoter: any case will do).
        for customer in (gone, kept):
            code, case_id = referral_code(customer, b"erasure test secret"), uuid.uuid4()
            await session.execute(
                followup_tables.referral_codes.insert().values(
                    code=code, customer_id=customer, case_id=case_id, issued_at=NOW
                )
            )
            await session.execute(
                followup_tables.referrals.insert().values(
                    referral_id=f"ref-{customer}",
                    code=code,
                    customer_id=customer,
                    case_id=case_id,
                    referred_at=NOW,
                    recorded_at=NOW,
                )
            )
    tables = [
        followup_tables.cases,
        followup_tables.actions,
        followup_tables.timers,
        followup_tables.timeline,
        followup_tables.do_not_contact,
        followup_tables.last_messages,
        followup_tables.responses_not_acted_on,
        followup_tables.scored_responses,
        followup_tables.resurveys,
        followup_tables.referral_codes,
        followup_tables.referrals,
        followup_tables.outbox,
    ]
    before = {t.name: await _rows(sessions, t, kept) for t in tables}

    settings = FollowupSettings(database=_database(database_url))
    erased = await followup_bootstrap.erase_customer(settings, gone)

    assert erased["cases"] == 1
    assert erased["actions"] >= 1
    assert erased["timeline"] >= 1
    assert erased["outbox"] >= 1
    assert (erased["do_not_contact"], erased["last_messages"]) == (1, 1)
    assert erased["responses_not_acted_on"] == 1
    assert erased["scored_responses"] == 2  # the record kept for `policy simulate`
    assert (erased["resurveys"], erased["referral_codes"], erased["referrals"]) == (1, 1, 1)
    for table in tables:
        assert await _rows(sessions, table, gone) == 0, table.name
    assert {t.name: await _rows(sessions, t, kept) for t in tables} == before
    assert before["cases"] == 1
    again = await followup_bootstrap.erase_customer(settings, gone)
    assert set(again.values()) == {0}


async def test_notify_erases_a_customers_dispatches(
    sessions: SessionFactory, database_url: str, infra: Infra
) -> None:
    gone, kept = _customers()
    channel = SmtpEmailChannel(
        SmtpSettings(port=infra.smtp_port), renderer=TemplateRenderer(), attempts=1
    )
    actions = [
        SendEmail(
            action_id=uuid.uuid4(),
            case_id=uuid.uuid4(),
            customer=Customer(id=customer, email=f"{customer}@example.com", name="Lin"),
            template="detractor_apology",
            score=1,
            comment="never again",
            requested_at=NOW,
        )
        for customer in (gone, kept)
    ]
    await Dispatcher(
        ledger=ledger_in(sessions),
        channels={"email": channel},
        clock=FrozenClock(NOW),
        concurrency=2,
        case_url="http://cs.example.com/cases/{case_id}",
    ).dispatch(actions)
    # And an SMS of theirs waiting for Twilio: the parked command holds their phone number.
    text = SendSms(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id=gone, phone="+33612345678"),
        template="detractor_apology",
        requested_at=NOW,
    )
    async with unit_of_work(sessions) as session:
        repo = NotifyRepository(session)
        await repo.begin_dispatches([sms_job(text)], now=NOW)
        await repo.defer(text, channel="sms", reason="Twilio 503", not_before=NOW, now=NOW)
    assert await _rows(sessions, notify_tables.dispatches, gone) == 2

    settings = NotifySettings(database=_database(database_url))
    erased = await notify_bootstrap.erase_customer(settings, gone)

    assert (erased["dispatches"], erased["parked"]) == (2, 1)
    assert await _rows(sessions, notify_tables.dispatches, gone) == 0
    assert await _rows(sessions, notify_tables.outbox, gone) == 0
    assert await _rows(sessions, notify_tables.dispatches, kept) == 1
    assert await notify_bootstrap.erase_customer(settings, gone) == {
        "dispatches": 0,
        "parked": 0,
        "outbox": 0,
    }


@pytest.mark.parametrize("service", ["scoring", "followup", "notify"])
def test_erase_customer_is_a_command_of_each_stateful_service(
    service: str, database_url: str
) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_FORMAT": "json"}
    command = [sys.executable, "-m", f"nps_{service}", "erase-customer", "nobody-known"]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    printed: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    assert printed["customer_id"] == "nobody-known"
    assert set(printed["erased"].values()) == {0}
    assert "nobody-known" not in out.stderr  # the id is not logged


def test_erase_customer_refuses_an_empty_id(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    command = [sys.executable, "-m", "nps_scoring", "erase-customer", " "]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2
    assert "empty" in out.stderr
