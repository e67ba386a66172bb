""" "Breached" is one rule: `domain.cases.is_breached`. The figures and the breached-cases gauge
count it in SQL (`adapters.repository.breached`); here both are checked against the rule on a
table of cases covering every status, deadline and first contact around `now`."""

import itertools
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from nps_events import Segment
from nps_followup.adapters import tables
from nps_followup.adapters.repository import FollowupRepository, breached
from nps_followup.domain.cases import Case, CaseStatus, is_breached
from nps_kit.db import SessionFactory

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def table_of_cases() -> list[Case]:
    """Every status with a deadline past, at `now`, ahead or none, and a first contact none,
    before, at or after the deadline; escalation levels spread so the gauge's groups differ."""
    base = Case(
        case_id=uuid.uuid4(),
        response_id=uuid.uuid4(),
        source="breached-table",
        survey_id="s",
        customer_id="c",
        customer_email=None,
        customer_name=None,
        segment=Segment.DETRACTOR,
        score=3,
        comment=None,
        status=CaseStatus.OPEN,
        opened_at=NOW - timedelta(days=3),
        due_at=None,
    )
    cases = []
    dues = (None, NOW - timedelta(hours=1), NOW, NOW + timedelta(hours=1))
    contacts = (None, -MINUTE, timedelta(0), MINUTE)
    for index, (status, due_at, contact) in enumerate(
        itertools.product(CaseStatus, dues, contacts)
    ):
        first_contact = None if contact is None else (due_at or NOW) + contact
        # A person's first contact is what makes a case `contacted`, and an open case has none.
        if (status is CaseStatus.OPEN) != (first_contact is None) and status in (
            CaseStatus.OPEN,
            CaseStatus.CONTACTED,
        ):
            continue
        cases.append(
            replace(
                base,
                case_id=uuid.uuid4(),
                response_id=uuid.uuid4(),
                customer_id=f"breached-{index}",
                status=status,
                due_at=due_at,
                first_contact_at=first_contact,
                escalation_level=index % 3,
            )
        )
    return cases


async def test_the_sql_of_breached_agrees_with_the_rule(sessions: SessionFactory) -> None:
    cases = table_of_cases()
    assert any(is_breached(c, NOW) for c in cases)
    assert not all(is_breached(c, NOW) for c in cases)
    async with sessions() as session:  # never committed: rolled back when it closes
        gauge_before = (await FollowupRepository(session).case_gauges(NOW))[1]
        await session.execute(
            insert(tables.cases),
            [
                {
                    "case_id": c.case_id,
                    "response_id": c.response_id,
                    "source": c.source,
                    "survey_id": c.survey_id,
                    "customer_id": c.customer_id,
                    "segment": c.segment.value,
                    "score": c.score,
                    "status": c.status.value,
                    "opened_at": c.opened_at,
                    "due_at": c.due_at,
                    "first_contact_at": c.first_contact_at,
                    "escalation_level": c.escalation_level,
                    "rule": "breached-table",
                }
                for c in cases
            ],
        )
        found = set(
            await session.scalars(
                select(tables.cases.c.case_id).where(
                    tables.cases.c.source == "breached-table", breached(NOW)
                )
            )
        )
        gauge_after = (await FollowupRepository(session).case_gauges(NOW))[1]

    assert found == {c.case_id for c in cases if is_breached(c, NOW)}
    # The gauge: breached cases still open (nobody reached the customer), per escalation level.
    want = Counter(
        c.escalation_level for c in cases if c.status is CaseStatus.OPEN and is_breached(c, NOW)
    )
    assert want
    got = Counter(gauge_after)
    got.subtract(Counter(gauge_before))
    assert +got == want
