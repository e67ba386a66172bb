"""Re-surveys on the real database and the real broker: a closed detractor case under a rule
with `resurvey_after` is asked about again exactly once when its time comes (across a sweeper
killed mid-sweep and two replicas sweeping together), a reopened case is not, a customer on
the do-not-contact list is not (the case says why), and the customer's next answer is linked
to the case and moves the recovery figures."""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from nps_events import (
    ContactOptOut,
    ContactOutcome,
    OptOutScope,
    ResurveyRequested,
    Topic,
    decode,
)
from nps_followup.adapters import tables
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.cases import Case
from nps_followup.entrypoints.sweeper import Sweeper
from nps_followup.handlers import (
    PolicyInForce,
    close_case,
    figures,
    open_cases,
    record_contact,
    record_opt_outs,
    reopen_case,
    resolve_case,
    sweep_due_timers,
)
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, session_factory, unit_of_work
from nps_kit.messaging import Publisher
from nps_kit.outbox import OutboxRelay
from nps_kit.settings import KafkaSettings
from tests.integration.kafka_helpers import NOW, read_all
from tests.integration.test_followup_policy_engine import KIM, case, scored
from tests.support.infra import Infra

_POLICY = parse_policy(default_policy_text() + "resurvey_after: 30 days\n")
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))
CLOSED = NOW + timedelta(days=3)
DUE = CLOSED + timedelta(days=30)


async def open_one(sessions: SessionFactory, customer: str) -> Case:
    async with unit_of_work(sessions) as session:
        [opened] = await open_cases(
            FollowupRepository(session), [scored(customer, 3)], now=NOW, policy=POLICY
        )
    return opened


async def work_and_close(sessions: SessionFactory, case_id: uuid.UUID) -> None:
    async with unit_of_work(sessions) as session:
        repo = FollowupRepository(session)
        await record_contact(
            repo,
            case_id,
            channel="phone",
            outcome=ContactOutcome.REACHED,
            note=None,
            actor=KIM,
            now=NOW + timedelta(hours=2),
        )
        await resolve_case(
            repo, case_id, root_cause="other", note=None, actor=KIM, now=CLOSED, policy=POLICY
        )
        await close_case(repo, case_id, actor=KIM, now=CLOSED, policy=POLICY)


def sweeper(sessions: SessionFactory, *, at: datetime, relay: OutboxRelay | None = None) -> Sweeper:
    return Sweeper(
        sessions=sessions,
        relay=relay,
        clock=FrozenClock(at),
        policy=POLICY,
        interval=0.01,
        batch_size=1,
    )


async def drain(one: Sweeper) -> int:
    total = 0
    while fired := await one.sweep_once():
        total += fired
    return total


async def recovery(sessions: SessionFactory) -> tuple[int, int, float | None]:
    async with sessions() as session:
        [group] = await figures(
            FollowupRepository(session), group_by="all", start=None, end=None, now=DUE
        )
    return group.counts.with_later_answer, group.counts.recovered, group.rates.recovery_rate


@pytest.fixture
async def second_sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    """Another replica's connection pool."""
    engine = create_async_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
async def publisher(infra: Infra) -> AsyncIterator[Publisher]:
    one = Publisher(KafkaSettings(bootstrap_servers=infra.bootstrap_servers), client_id="resurvey")
    await one.start()
    yield one
    await one.stop()


async def test_a_closed_detractor_is_asked_again_once_and_the_next_answer_is_linked(
    sessions: SessionFactory, second_sessions: SessionFactory, infra: Infra, publisher: Publisher
) -> None:
    asked = await open_one(sessions, "resurvey-ada")
    reopened = await open_one(sessions, "resurvey-reopened")
    stopped = await open_one(sessions, "resurvey-stopped")
    for one in (asked, reopened, stopped):
        await work_and_close(sessions, one.case_id)
    async with unit_of_work(sessions) as session:
        repo = FollowupRepository(session)
        await reopen_case(
            repo,
            reopened.case_id,
            reason="the fix did not hold",
            actor=KIM,
            now=CLOSED + timedelta(days=1),
            policy=POLICY,
        )
        await record_opt_outs(
            repo,
            [
                ContactOptOut(
                    source="test",
                    customer_id="resurvey-stopped",
                    scope=OptOutScope.ALL,
                    provider_event_id=f"unsubscribed:{uuid.uuid4()}",
                    occurred_at=CLOSED,
                )
            ],
            now=CLOSED,
        )
    assert await recovery(sessions) == (0, 0, None)

    # A second before the time nothing is due.
    assert await drain(sweeper(sessions, at=DUE - timedelta(seconds=1))) == 0

    # A sweeper killed mid-sweep: its transaction never commits, its timer stays pending.
    class KilledError(Exception):
        pass

    async def killed_mid_sweep() -> None:
        async with unit_of_work(sessions) as session:
            assert await sweep_due_timers(
                FollowupRepository(session), now=DUE, policy=POLICY, limit=10
            )
            raise KilledError

    with pytest.raises(KilledError):
        await killed_mid_sweep()

    # Two replicas take over together, each with its relay to the broker.
    relays = [
        OutboxRelay(sessions=s, table=tables.outbox, send_many=publisher.send_many)
        for s in (sessions, second_sessions)
    ]
    fired = await asyncio.gather(
        drain(sweeper(sessions, at=DUE, relay=relays[0])),
        drain(sweeper(second_sessions, at=DUE, relay=relays[1])),
    )
    assert sum(fired) == 2  # asked's and stopped's; reopened's was cancelled
    for relay in relays:
        while await relay.publish_pending():
            pass

    records = await read_all(
        KafkaSettings(bootstrap_servers=infra.bootstrap_servers), Topic.CASES.value, partitions=3
    )
    ours = {asked.case_id, reopened.case_id, stopped.case_id}
    requested = [
        event.data
        for event in (decode(tuple(r.headers), r.value) for r in records)
        if isinstance(event.data, ResurveyRequested) and event.data.case_id in ours
    ]
    assert [e.case_id for e in requested] == [asked.case_id]
    [event] = requested
    assert (event.customer.id, event.customer.email) == ("resurvey-ada", "resurvey-ada@example.com")
    assert (event.score, event.segment.value, event.closed_at) == (3, "detractor", CLOSED)
    assert (event.response_id, event.source, event.survey_id) == (
        asked.response_id,
        asked.source,
        asked.survey_id,
    )

    skipped = (await case(sessions, stopped.case_id)).timeline[-1]
    assert (skipped.kind, skipped.details["contact_rule"]) == ("resurvey_skipped", "do_not_contact")
    back = await case(sessions, reopened.case_id)
    assert "resurvey_cancelled" in next(e for e in back.timeline if e.kind == "reopened").details
    async with sessions() as session:
        states = Counter(
            (
                await session.scalars(
                    select(tables.timers.c.state).where(
                        tables.timers.c.case_id == reopened.case_id,
                        tables.timers.c.kind == "resurvey",
                    )
                )
            ).all()
        )
    assert states == Counter(cancelled=1)

    # The customer answers the re-survey a day later: a promoter now.
    answered = DUE + timedelta(days=1)
    async with unit_of_work(sessions) as session:
        await open_cases(
            FollowupRepository(session),
            [scored("resurvey-ada", 9, answered=answered)],
            now=answered,
            policy=POLICY,
        )

    linked = await case(sessions, asked.case_id)
    assert (linked.latest_score, linked.recovered) == (9, True)
    entry = linked.timeline[-1]
    assert entry.kind == "response_attached"
    assert (entry.details["score"], entry.details["segment"]) == (9, "promoter")
    assert entry.details["resurvey_requested_at"] == DUE.isoformat()
    async with sessions() as session:
        row = (
            await session.execute(
                select(tables.resurveys).where(tables.resurveys.c.case_id == asked.case_id)
            )
        ).one()
    assert (row.requested_at, row.answered_at, row.answer_score) == (DUE, answered, 9)
    # Of the three detractors only Ada answered again, and she is recovered.
    assert await recovery(sessions) == (1, 1, 1.0)
