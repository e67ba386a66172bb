"""Followup's policy engine on the real database: durable timers fired once by any number of
sweepers and across a crash, the escalation ladder, contact rules, and the case lifecycle."""

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from nps_events import (
    ActionResultReported,
    ActionStatus,
    Actor,
    ActorKind,
    Channel,
    ContactOptOut,
    ContactOutcome,
    Customer,
    OptOutScope,
    ResponseScored,
    Segment,
)
from nps_followup.adapters import tables
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.domain.cases import Case, case_id_for
from nps_followup.domain.lifecycle import LifecycleError, UnknownRootCause
from nps_followup.entrypoints.sweeper import Sweeper
from nps_followup.handlers import (
    PolicyInForce,
    close_case,
    open_cases,
    record_action_results,
    record_contact,
    record_opt_outs,
    reopen_case,
    resolve_case,
    sweep_due_timers,
)
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, session_factory, unit_of_work
from nps_kit.faults import Fault, classify, sqlstate
from nps_kit.migrations import alembic_config, upgrade
from tests.integration.kafka_helpers import NOW, a_response
from tests.support.infra import Infra, new_database
from tests.support.statements import statements_sent

_POLICY = parse_policy(default_policy_text())
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))
#: The default policy with an SMS to every detractor, before the ticket.
SMS_POLICY = parse_policy(
    default_policy_text().replace(
        "      - kind: ticket\n",
        "      - kind: sms\n        template: detractor_acknowledgement\n      - kind: ticket\n",
    )
)
#: People who work cases (from their tokens, in the API).
KIM = Actor(kind=ActorKind.PERSON, id="kim-subject", name="kim@x.io")
ALEX = Actor(kind=ActorKind.PERSON, id="alex-subject", name="alex@example.com")
LATER = NOW + timedelta(days=14)  # every deadline of a case opened at NOW has passed


def scored(
    customer: str,
    score: int = 2,
    *,
    attributes: dict[str, str] | None = None,
    answered: datetime = NOW,
    backfill: bool = False,
) -> ResponseScored:
    response = a_response(customer_id=customer, score=score)
    segment = (
        Segment.DETRACTOR if score <= 6 else Segment.PASSIVE if score <= 8 else Segment.PROMOTER
    )
    return ResponseScored(
        response_id=response.response_id,
        source=response.source,
        survey_id=response.survey_id,
        customer=Customer(
            id=customer,
            email=f"{customer}@example.com",
            name="Ada",
            attributes=attributes or {},
        ),
        score=score,
        segment=segment,
        comment=response.comment,
        responded_at=answered,
        scored_at=NOW,
        received_event_id=response.event_id(),
        backfill=backfill,
    )


async def open_for(
    sessions: SessionFactory, *responses: ResponseScored, now: datetime = NOW
) -> list[Case]:
    async with unit_of_work(sessions) as session:
        return await open_cases(
            FollowupRepository(session), list(responses), now=now, policy=POLICY
        )


async def case(sessions: SessionFactory, case_id: uuid.UUID) -> Case:
    async with sessions() as session:
        found = await FollowupRepository(session).get_case(case_id)
    assert found is not None
    return found


async def published(sessions: SessionFactory, case_ids: set[uuid.UUID]) -> list[str]:
    """The ce_types queued in the outbox for these cases, in order."""
    async with sessions() as session:
        rows = (await session.execute(select(tables.outbox).order_by(tables.outbox.c.id))).all()
    found = []
    for row in rows:
        data = json.loads(row.value)
        if uuid.UUID(data.get("case_id", str(uuid.UUID(int=0)))) in case_ids:
            headers = dict(json.loads(row.headers))
            found.append(headers["ce_type"].removeprefix("io.npsloop.").removesuffix(".v1"))
    return found


@pytest.fixture
async def second_sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    """Another process's connection pool: a second replica."""
    engine = create_async_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


def sweeper(sessions: SessionFactory, *, at: datetime, batch: int) -> Sweeper:
    return Sweeper(
        sessions=sessions,
        relay=None,
        clock=FrozenClock(at),
        policy=POLICY,
        interval=0.01,
        batch_size=batch,
    )


async def drain(one: Sweeper) -> int:
    total = 0
    while fired := await one.sweep_once():
        total += fired
    return total


async def climbs_the_ladder(sessions: SessionFactory, climbing: Case) -> None:
    """Each rung fires at its time and not a second before: reminder, escalation, second
    level."""
    assert climbing.remind_at is not None
    assert climbing.due_at is not None
    assert climbing.second_level_at is not None
    steps = [
        (climbing.remind_at, "reminded"),
        (climbing.due_at, "escalated_1"),
        (climbing.second_level_at, "escalated_2"),
    ]
    for at, kind in steps:
        await drain(sweeper(sessions, at=at - timedelta(seconds=1), batch=50))
        assert (await case(sessions, climbing.case_id)).timeline[-1].kind != kind
        await drain(sweeper(sessions, at=at, batch=50))
        assert (await case(sessions, climbing.case_id)).timeline[-1].kind == kind


async def timer_states(sessions: SessionFactory, case_ids: set[uuid.UUID]) -> Counter[str]:
    async with sessions() as session:
        rows = await session.execute(
            select(tables.timers.c.state).where(tables.timers.c.case_id.in_(case_ids))
        )
    return Counter(row.state for row in rows)


async def test_two_sweepers_together_fire_each_timer_once(
    sessions: SessionFactory, second_sessions: SessionFactory
) -> None:
    cases = await open_for(sessions, *(scored(f"two-{i}") for i in range(60)))
    ids = {c.case_id for c in cases}
    # Opening requested the acknowledgement and the ticket at once, without writing their
    # timers; the ladder is pending.
    assert await timer_states(sessions, ids) == Counter(pending=180)

    fired = await asyncio.gather(
        drain(sweeper(sessions, at=LATER, batch=7)),
        drain(sweeper(second_sessions, at=LATER, batch=7)),
    )

    assert sum(fired) == 180
    assert all(fired), f"both replicas should have fired some: {fired}"
    assert await timer_states(sessions, ids) == Counter(fired=180)
    events = Counter(await published(sessions, ids))
    assert events["case.reminded"] == 60
    assert events["case.escalated"] == 120  # level 1 and level 2, once each
    # Each owner was told of their case when it opened (60), then the ladder's 180 notices.
    assert events["action.notify-staff"] == 60 + 180
    assert events["action.raise-ticket-priority"] == 120
    # What opening fired does not fire again: one acknowledgement and one ticket per case.
    assert events["action.send-email"] == 60
    assert events["action.create-ticket"] == 60


async def test_what_opening_fires_is_not_written_and_what_it_schedules_fires_once_at_its_time(
    sessions: SessionFactory,
) -> None:
    """Opening fires the timers due at once (the detractor's acknowledgement and ticket) and
    writes none of them; a message scheduled for later (the promoter's thank-you, a day on)
    is written pending, fires at its time and not a second before, once, and the sweeps
    never request again what opening requested."""
    [detractor, promoter] = await open_for(sessions, scored("at-once", 2), scored("later", 10))
    ids = {detractor.case_id, promoter.case_id}
    [thanks] = promoter.actions
    assert thanks.scheduled_for == NOW + timedelta(days=1)
    assert await timer_states(sessions, {detractor.case_id}) == Counter(pending=3)
    assert await timer_states(sessions, {promoter.case_id}) == Counter(pending=1)

    assert await drain(sweeper(sessions, at=NOW + timedelta(days=1, seconds=-1), batch=10)) == 0
    assert (await case(sessions, promoter.case_id)).actions[0].state.value == "scheduled"
    assert await drain(sweeper(sessions, at=NOW + timedelta(days=1), batch=10)) == 1
    assert (await case(sessions, promoter.case_id)).actions[0].state.value == "planned"
    assert await drain(sweeper(sessions, at=LATER, batch=10)) == 3
    assert await drain(sweeper(sessions, at=LATER, batch=10)) == 0

    assert await timer_states(sessions, ids) == Counter(fired=4)
    events = Counter(await published(sessions, ids))
    assert events["action.send-email"] == 2  # one acknowledgement, one thank-you
    assert events["action.create-ticket"] == 1
    assert events["case.escalated"] == 2


async def test_a_sweeper_crashing_mid_sweep_loses_no_timer(
    sessions: SessionFactory, second_sessions: SessionFactory
) -> None:
    cases = await open_for(sessions, *(scored(f"crash-{i}") for i in range(20)))
    ids = {c.case_id for c in cases}
    first = sweeper(sessions, at=LATER, batch=10)
    assert await first.sweep_once() == 10

    class CrashError(Exception):
        pass

    async def crash_mid_sweep() -> None:
        async with unit_of_work(sessions) as session:
            assert await sweep_due_timers(
                FollowupRepository(session), now=LATER, policy=POLICY, limit=10
            )
            raise CrashError

    # The process dies in the middle of a sweep: its transaction never commits.
    with pytest.raises(CrashError):
        await crash_mid_sweep()

    # A restarted replica (a new connection pool) takes over where the first left off.
    assert await drain(sweeper(second_sessions, at=LATER, batch=10)) == 50
    assert await timer_states(sessions, ids) == Counter(fired=60)
    events = Counter(await published(sessions, ids))
    assert events["case.reminded"] == 20
    assert events["case.escalated"] == 40


async def test_the_ladder_climbs_in_order_and_stops_at_first_contact(
    sessions: SessionFactory,
) -> None:
    [climbing, contacted] = await open_for(sessions, scored("ladder-1"), scored("ladder-2"))
    assert climbing.due_at is not None
    assert climbing.remind_at is not None
    assert climbing.second_level_at is not None
    async with unit_of_work(sessions) as session:
        await record_contact(
            FollowupRepository(session),
            contacted.case_id,
            channel="phone",
            outcome=ContactOutcome.REACHED,
            note=None,
            actor=ALEX,
            now=NOW + timedelta(hours=1),
        )
    await climbs_the_ladder(sessions, climbing)
    worked = await case(sessions, climbing.case_id)
    assert worked.escalation_level == 2
    staff = [a for a in worked.actions if a.channel == "staff"]
    assert [a.template for a in staff] == [
        "case_assigned",
        "case_reminder",
        "case_escalation",
        "case_escalation",
    ]
    assert await published(sessions, {contacted.case_id}) == [
        "case.opened",
        "case.assigned",
        "action.notify-staff",
        "action.send-email",
        "action.create-ticket",
        "case.contact-recorded",
    ]
    assert await timer_states(sessions, {contacted.case_id}) == Counter(cancelled=3)


async def test_a_case_reopened_before_anyone_reached_the_customer_gets_a_new_ladder(
    sessions: SessionFactory,
) -> None:
    [opened] = await open_for(sessions, scored("reopen-1"))
    assert opened.due_at is not None
    async with unit_of_work(sessions) as session:
        await resolve_case(
            FollowupRepository(session),
            opened.case_id,
            root_cause="support_experience",
            note="fixed by the ticket",
            actor=KIM,
            now=NOW + timedelta(hours=1),
            policy=POLICY,
        )
    # Weeks later the customer complains again: the old deadlines are long past.
    back = NOW + timedelta(days=30)
    async with unit_of_work(sessions) as session:
        reopened = await reopen_case(
            FollowupRepository(session),
            opened.case_id,
            reason="the bug is back",
            actor=KIM,
            now=back,
            policy=POLICY,
        )
    assert reopened.status.value == "open"
    assert reopened.escalation_level == 0
    assert reopened.due_at is not None
    assert reopened.remind_at is not None
    assert reopened.second_level_at is not None
    assert back < reopened.remind_at < reopened.due_at < reopened.second_level_at
    assert reopened.timeline[-1].details["due_at"] == reopened.due_at.isoformat()
    # The opening ladder was cancelled at resolution; the new one waits.
    assert await timer_states(sessions, {opened.case_id}) == Counter(cancelled=3, pending=3)
    await climbs_the_ladder(sessions, reopened)
    assert (await case(sessions, opened.case_id)).escalation_level == 2
    async with sessions() as session:
        rows = (await session.execute(select(tables.outbox))).all()
    [event] = [
        json.loads(row.value)
        for row in rows
        if dict(json.loads(row.headers))["ce_type"] == "io.npsloop.case.reopened.v1"
        and json.loads(row.value)["case_id"] == str(opened.case_id)
    ]
    assert datetime.fromisoformat(event["due_at"]) == reopened.due_at


async def test_a_detractor_is_walked_through_the_whole_lifecycle(
    sessions: SessionFactory,
) -> None:
    [opened] = await open_for(sessions, scored("life-1", attributes={"account_owner": "kim@x.io"}))
    assert opened.owner == "kim@x.io"
    at = NOW + timedelta(hours=3)

    async def step(action: str) -> Case:
        async with unit_of_work(sessions) as session:
            repo = FollowupRepository(session)
            if action == "no_answer":
                return await record_contact(
                    repo,
                    opened.case_id,
                    channel="phone",
                    outcome=ContactOutcome.NO_ANSWER,
                    note="voicemail full",
                    actor=KIM,
                    now=at,
                )
            if action == "reached":
                return await record_contact(
                    repo,
                    opened.case_id,
                    channel="phone",
                    outcome=ContactOutcome.REACHED,
                    note="agreed a fix",
                    actor=KIM,
                    now=at,
                )
            if action == "resolve":
                return await resolve_case(
                    repo,
                    opened.case_id,
                    root_cause="support_experience",
                    note=None,
                    actor=KIM,
                    now=at,
                    policy=POLICY,
                )
            if action == "close":
                return await close_case(repo, opened.case_id, actor=KIM, now=at, policy=POLICY)
            return await reopen_case(
                repo, opened.case_id, reason="came back", actor=KIM, now=at, policy=POLICY
            )

    assert (await step("no_answer")).status.value == "open"
    reached = await step("reached")
    assert (reached.status.value, reached.first_contact_at) == ("contacted", at)
    assert (await step("resolve")).root_cause == "support_experience"
    assert (await step("close")).status.value == "closed"
    with pytest.raises(LifecycleError, match="cannot close a case that is closed"):
        await step("close")
    reopened = await step("reopen")
    assert reopened.status.value == "contacted"  # contacted already: no new contact deadline
    assert reopened.due_at == opened.due_at
    assert (await timer_states(sessions, {opened.case_id}))["pending"] == 0
    with pytest.raises(UnknownRootCause, match="not in the policy's taxonomy"):
        async with unit_of_work(sessions) as session:
            await resolve_case(
                FollowupRepository(session),
                opened.case_id,
                root_cause="aliens",
                note=None,
                actor=KIM,
                now=at,
                policy=POLICY,
            )
    final = await case(sessions, opened.case_id)
    assert [e.kind for e in final.timeline] == [
        "opened",
        "assigned",
        "contact",
        "contact",
        "resolved",
        "closed",
        "reopened",
    ]
    assert final.timeline[3].details["within_sla"] is True
    # After the opening five (opened, assigned, the owner's notice, email, ticket):
    assert (await published(sessions, {opened.case_id}))[5:] == [
        "case.contact-recorded",
        "case.contact-recorded",
        "case.resolved",
        "case.closed",
        "case.reopened",
    ]


async def test_a_new_response_joins_the_open_case_and_a_later_one_records_recovery(
    sessions: SessionFactory,
) -> None:
    [first] = await open_for(sessions, scored("join-1", 3))
    again = await open_for(sessions, scored("join-1", 5), now=NOW + timedelta(hours=2))
    assert again == []
    joined = await case(sessions, first.case_id)
    assert (joined.latest_score, joined.recovered) == (5, False)
    async with unit_of_work(sessions) as session:
        repo = FollowupRepository(session)
        for do in ("reach", "resolve", "close"):
            if do == "reach":
                await record_contact(
                    repo,
                    first.case_id,
                    channel="phone",
                    outcome=ContactOutcome.REACHED,
                    note=None,
                    actor=KIM,
                    now=NOW,
                )
            elif do == "resolve":
                await resolve_case(
                    repo,
                    first.case_id,
                    root_cause="other",
                    note=None,
                    actor=KIM,
                    now=NOW,
                    policy=POLICY,
                )
            else:
                await close_case(repo, first.case_id, actor=KIM, now=NOW, policy=POLICY)
    # A quarter later the customer scores 9: the old case records a recovered customer, and
    # the promoter gets a thank-you of their own.
    quarter = NOW + timedelta(days=90)
    [thanks] = await open_for(sessions, scored("join-1", 9, answered=quarter), now=quarter)
    recovered = await case(sessions, first.case_id)
    assert (recovered.latest_score, recovered.recovered) == (9, True)
    assert [e.kind for e in recovered.timeline].count("response_attached") == 2
    assert thanks.status.value == "automated"


async def test_contact_rules_skip_messages_and_say_why(sessions: SessionFactory) -> None:
    # An opted-out promoter and a passive messaged two days ago.
    async with unit_of_work(sessions) as session:
        await record_opt_outs(
            FollowupRepository(session),
            [
                ContactOptOut(
                    source="test",
                    customer_id="rules-optout",
                    scope=OptOutScope.EMAIL,
                    provider_event_id="u-1",
                    occurred_at=NOW,
                )
            ],
            now=NOW,
        )
        await FollowupRepository(session).set_last_messages(["rules-capped"], NOW)
    opted_out, capped, free = await open_for(
        sessions,
        scored("rules-optout", 10),
        scored("rules-capped", 8),
        scored("rules-free", 8),
        now=NOW + timedelta(days=2),
    )
    await drain(sweeper(sessions, at=NOW + timedelta(days=5), batch=50))
    outcomes = {}
    for c in (opted_out, capped, free):
        [action] = (await case(sessions, c.case_id)).actions
        outcomes[c.customer_id] = (action.state.value, action.reason)
    assert outcomes["rules-free"] == ("planned", None)
    assert outcomes["rules-optout"][0] == "skipped"
    assert "do-not-contact list (email)" in str(outcomes["rules-optout"][1])
    assert outcomes["rules-capped"][0] == "skipped"
    assert "frequency cap" in str(outcomes["rules-capped"][1])
    # The timeline names the contact rule that held each back.
    held = {}
    for c in (opted_out, capped):
        [entry] = [
            e for e in (await case(sessions, c.case_id)).timeline if e.kind == "action_skipped"
        ]
        held[c.customer_id] = entry.details["contact_rule"]
    assert held == {"rules-optout": "do_not_contact", "rules-capped": "frequency_cap"}


async def test_history_is_set_aside_once_and_the_customer_s_next_live_answer_opens_a_case(
    sessions: SessionFactory,
) -> None:
    old = scored("hist-1", 2, answered=NOW - timedelta(days=400))
    imported = scored("hist-2", 9, backfill=True)
    assert await open_for(sessions, old, imported) == []
    # An update of the old answer (a comment added later) is still not acted on: one record,
    # of its latest version.
    update = old.model_copy(update={"score": 3, "received_event_id": uuid.uuid4()})
    assert await open_for(sessions, update, now=NOW + timedelta(minutes=5)) == []
    async with sessions() as session:
        rows = {
            row.response_id: (row.customer_id, row.score, row.reason, row.rule, row.window)
            for row in (
                await session.execute(
                    select(tables.responses_not_acted_on).where(
                        tables.responses_not_acted_on.c.customer_id.in_(["hist-1", "hist-2"])
                    )
                )
            ).all()
        }
    assert rows == {
        old.response_id: ("hist-1", 3, "older_than_window", "detractor", "7 days"),
        imported.response_id: ("hist-2", 9, "backfill", "promoter", "7 days"),
    }
    # History does not stand in the way of today's answer.
    [today] = await open_for(sessions, scored("hist-1", 1), now=NOW + timedelta(hours=1))
    assert today.status.value == "open"


async def test_a_customer_who_texted_stop_gets_no_more_sms_and_the_list_says_why(
    sessions: SessionFactory,
) -> None:
    """Notify's opt-out after Twilio's 21610 (scope sms, its reason): followup's list keeps
    the reason, and the customer's next case holds its SMS back as `skipped`; email goes on."""
    said = (
        "the sms provider refused action 6f1c…: Twilio 400 (error 21610): Attempt to send to "
        "unsubscribed recipient"
    )
    async with unit_of_work(sessions) as session:
        await record_opt_outs(
            FollowupRepository(session),
            [
                ContactOptOut(
                    source="notify",
                    customer_id="stop-sms",
                    scope=OptOutScope.SMS,
                    provider_event_id=f"unsubscribed:{uuid.uuid4()}",
                    occurred_at=NOW,
                    reason=said,
                )
            ],
            now=NOW,
        )
    response = scored("stop-sms", 2)
    texting = response.customer.model_copy(
        update={"phone": "+33612345678", "attributes": {"sms_consent": "yes"}}
    )
    with_sms = PolicyInForce(policy=SMS_POLICY, holidays_for=holidays_for(SMS_POLICY))
    async with unit_of_work(sessions) as session:
        [opened] = await open_cases(
            FollowupRepository(session),
            [response.model_copy(update={"customer": texting})],
            now=NOW + timedelta(hours=1),
            policy=with_sms,
        )
    await drain(
        Sweeper(
            sessions=sessions,
            relay=None,
            clock=FrozenClock(NOW + timedelta(hours=2)),
            policy=with_sms,
            interval=0.01,
            batch_size=50,
        )
    )
    actions = {a.channel: a for a in (await case(sessions, opened.case_id)).actions}
    assert actions["sms"].state.value == "skipped"
    assert actions["sms"].reason == "the customer is on the do-not-contact list (sms)"
    assert actions["email"].state.value != "skipped"
    async with sessions() as session:
        entries = await FollowupRepository(session).opt_outs_of("stop-sms")
    assert entries == [("sms", "notify", said, NOW)]


async def test_the_hand_written_migrations_build_exactly_the_tables_the_code_uses(
    second_sessions: SessionFactory,
) -> None:
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                # The trigram index on customers is made only where PostgreSQL has pg_trgm
                # (migration 0005), so the tables' metadata leaves it out.
                "include_name": lambda name, kind, _parent: (
                    name == "followup"
                    if kind == "schema"
                    else name not in {"alembic_version", "ix_cases_customer_search"}
                ),
            },
        )
        return list(compare_metadata(context, tables.metadata))

    async with second_sessions() as session:
        connection = await session.connection()
        assert await connection.run_sync(differences) == []


_INDEXES = (
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'followup' "
    "AND tablename IN ('cases', 'actions') ORDER BY indexname"
)
_FILLFACTORS = (
    "SELECT relname, reloptions FROM pg_class WHERE relnamespace = 'followup'::regnamespace "
    "AND relname IN ('cases', 'actions') ORDER BY relname"
)


async def test_migration_0009_upgrades_a_0008_database_with_cases_and_downgrades_to_it(
    infra: Infra,
) -> None:
    """0009 (cheaper case writes) on a database at 0008 that holds a case: the indexes end
    as a fresh database's, the case is still found through them; its downgrade gives back
    0008's indexes and table options exactly, and it upgrades again."""
    url = await new_database(infra.database_url, "mig")
    engine = create_async_engine(url)

    async def schema() -> tuple[list[Any], list[Any]]:
        async with engine.connect() as conn:
            indexes = [tuple(r) for r in (await conn.execute(text(_INDEXES))).all()]
            options = [tuple(r) for r in (await conn.execute(text(_FILLFACTORS))).all()]
        return indexes, options

    try:
        await asyncio.to_thread(upgrade, "nps_followup", url, "0008")
        at_0008 = await schema()
        [case] = await open_for(session_factory(engine), scored("mig-1", score=2))
        await asyncio.to_thread(upgrade, "nps_followup", url, "head")
        indexes, options = await schema()
        names = {name for name, _ in indexes}
        assert "ix_cases_active_first_contact_at" in names
        assert "ix_cases_active_customer" not in names
        assert "first_contact_at IS NOT NULL" in dict(indexes)["ix_cases_active_first_contact_at"]
        assert options == [("actions", ["fillfactor=90"]), ("cases", ["fillfactor=90"])]
        async with unit_of_work(session_factory(engine)) as session:
            active = await FollowupRepository(session).active_case_of("mig-1")
        assert active is not None
        assert active.case_id == case.case_id

        config = alembic_config("nps_followup", url)
        await asyncio.to_thread(command.downgrade, config, "0008")
        assert await schema() == at_0008
        await asyncio.to_thread(upgrade, "nps_followup", url, "head")
        assert await schema() == (indexes, options)
    finally:
        await engine.dispose()


async def test_cases_stored_before_inputs_were_checked_still_get_their_messages_and_notices(
    sessions: SessionFactory,
) -> None:
    """A case stored before the events refused control characters and address lists (issue
    #12) may hold what a command can no longer carry; its timers still fire, with the name
    made one line, an address that no longer passes dropped (the email is then skipped, with
    the reason on the case) and a reminder for an owner no notice can reach sent to the lead
    — rather than every sweep stopping at that case."""
    [named, listed] = await open_for(
        sessions, scored("legacy-1", score=7), scored("legacy-3", score=8)
    )
    [detractor] = await open_for(sessions, scored("legacy-2", score=2))
    async with unit_of_work(sessions) as session:
        for case_id, customer in (
            (named.case_id, {"id": "legacy-1", "name": "Eve\nBcc: x@example.com"}),
            (listed.case_id, {"id": "legacy-3", "email": "x@y.z,bob"}),
        ):
            await session.execute(
                tables.cases.update()
                .where(tables.cases.c.case_id == case_id)
                .values(
                    customer={**customer, "email": customer.get("email", "eve@example.com")},
                    comment="slow \x1b[1mvery\x1b[0m",
                )
            )
        await session.execute(
            tables.cases.update()
            .where(tables.cases.c.case_id == detractor.case_id)
            .values(owner="ok@team.example, outsider@example.org")
        )
    await drain(sweeper(sessions, at=LATER, batch=50))
    async with sessions() as session:
        rows = (await session.execute(select(tables.outbox).order_by(tables.outbox.c.id))).all()
    commands = [(dict(json.loads(row.headers))["ce_type"], json.loads(row.value)) for row in rows]
    [email] = [
        d
        for t, d in commands
        if t == "io.npsloop.action.send-email.v1" and d["case_id"] == str(named.case_id)
    ]
    assert (email["customer"]["name"], email["customer"]["email"]) == (
        "Eve Bcc: x@example.com",
        "eve@example.com",
    )
    assert email["comment"] == "slow [1mvery[0m"
    [skipped] = (await case(sessions, listed.case_id)).actions
    assert (skipped.state.value, skipped.reason) == ("skipped", "the customer has no email address")
    reminders = [
        d["recipient"]
        for t, d in commands
        if t == "io.npsloop.action.notify-staff.v1"
        and d["reason"] == "reminder"
        and d["case_id"] == str(detractor.case_id)
    ]
    assert reminders == ["cs-lead@example.com"]


async def test_notices_carry_who_the_customer_is_and_messages_carry_the_team(
    sessions: SessionFactory,
) -> None:
    """What notify needs for a staff notice a person can act on (the customer's name and
    comment, the team's time zone) and for the team's sender identity."""
    [opened] = await open_for(sessions, scored("carry-1", score=2))
    assert opened.comment
    assert opened.team
    await drain(sweeper(sessions, at=LATER, batch=50))
    async with sessions() as session:
        rows = (await session.execute(select(tables.outbox).order_by(tables.outbox.c.id))).all()
    commands = [
        (dict(json.loads(row.headers))["ce_type"], json.loads(row.value))
        for row in rows
        if json.loads(row.value).get("case_id") == str(opened.case_id)
    ]
    team = POLICY.policy.teams[opened.team or ""]
    notices = [d for t, d in commands if t == "io.npsloop.action.notify-staff.v1"]
    assert {n["reason"] for n in notices} == {"assigned", "reminder", "escalation"}
    for notice in notices:
        assert (notice["team"], notice["timezone"]) == (opened.team, team.timezone)
        assert (notice["customer_name"], notice["comment"]) == ("Ada", opened.comment)
    [email] = [d for t, d in commands if t == "io.npsloop.action.send-email.v1"]
    assert email["team"] == opened.team is not None
    assert email["owner"] == opened.owner is not None  # the default policy's owners are people


async def test_a_batch_of_cases_is_stored_as_given_one_array_per_column(
    sessions: SessionFactory,
) -> None:
    """The batch's inserts pass one array per column (`adapters.bulk`): lists (the themes)
    and JSON (the customer) come back whole and in order, and the timeline keeps the order
    its entries were recorded in."""
    customer = Customer(
        id="bulk-1", email="bulk-1@example.com", name="Zoë", attributes={"plan": "gold"}
    )
    response = scored("bulk-1", 2).model_copy(
        update={"customer": customer, "themes": ["support", "delivery", "price"]}
    )
    async with unit_of_work(sessions) as session:
        [opened] = await open_cases(FollowupRepository(session), [response], now=NOW, policy=POLICY)
    stored = await case(sessions, opened.case_id)
    assert stored.themes == ("support", "delivery", "price")
    assert stored.customer == customer
    assert stored.due_at == opened.due_at
    assert [e.kind for e in stored.timeline] == ["opened", "assigned"]
    assert {a.channel: a.state.value for a in stored.actions} == {
        "email": "planned",
        "staff": "planned",
        "ticket": "planned",
    }


async def test_a_value_too_long_for_its_column_is_refused_not_cut(
    sessions: SessionFactory,
) -> None:
    """The arrays are typed without a length: the column refuses a value that does not fit,
    as the row-by-row insert did, instead of a cast cutting it short; the refusal is a data
    fault (the record's DLQ), on the driver connection as through the session."""
    async with unit_of_work(sessions) as session:
        [opened] = await open_cases(
            FollowupRepository(session), [scored("bulk-2", 2)], now=NOW, policy=POLICY
        )
    too_long = replace(
        opened, case_id=uuid.uuid4(), response_id=uuid.uuid4(), rule="r" * 101, actions=()
    )
    with pytest.raises(Exception, match="too long") as refused:
        async with unit_of_work(sessions) as session:
            await FollowupRepository(session).add_cases([too_long], [], exempt=set(), priority={})
    assert sqlstate(refused.value) == "22001"  # string_data_right_truncation
    assert classify(refused.value) is Fault.DATA
    async with sessions() as session:
        assert await FollowupRepository(session).get_case(too_long.case_id) is None


async def test_a_case_another_transaction_opened_first_gets_nothing_of_the_batch(
    sessions: SessionFactory,
) -> None:
    """A batch's cases, actions (in their final state), notices and timers are one insert:
    a case that is already there (another transaction opened it under the same id) is left
    as it was, while the batch's other cases get everything."""
    first, second = scored("race-1", 2), scored("race-2", 2)
    [other] = await open_for(sessions, scored("race-0", 2))
    there = replace(
        other, case_id=case_id_for(second.response_id), response_id=uuid.uuid4(), actions=()
    )
    async with unit_of_work(sessions) as session:
        await FollowupRepository(session).add_cases([there], [], exempt=set(), priority={})

    [opened] = await open_for(sessions, first, second)

    assert opened.case_id == case_id_for(first.response_id)
    mine = await case(sessions, opened.case_id)
    assert sorted((a.channel, a.state.value) for a in mine.actions) == [
        ("email", "planned"),
        ("staff", "planned"),
        ("ticket", "planned"),
    ]
    assert [e.kind for e in mine.timeline] == ["opened", "assigned"]
    left = await case(sessions, there.case_id)
    assert (left.actions, left.timeline, left.response_id) == ((), (), there.response_id)
    assert await timer_states(sessions, {there.case_id}) == Counter()
    assert await published(sessions, {there.case_id}) == []
    assert await published(sessions, {opened.case_id}) == [
        "case.opened",
        "case.assigned",
        "action.notify-staff",
        "action.send-email",
        "action.create-ticket",
    ]


async def test_saving_many_cases_gives_each_its_own_fields_and_the_last_of_a_repeat(
    sessions: SessionFactory,
) -> None:
    async with unit_of_work(sessions) as session:
        first, second = await open_cases(
            FollowupRepository(session),
            [scored("bulk-3", 2), scored("bulk-4", 2)],
            now=NOW,
            policy=POLICY,
        )
    async with unit_of_work(sessions) as session:
        await FollowupRepository(session).save_cases(
            [
                replace(first, escalation_level=1),
                replace(second, escalation_level=2, owner="alex@example.com"),
                replace(first, escalation_level=3),
            ]
        )
    assert (await case(sessions, first.case_id)).escalation_level == 3
    saved = await case(sessions, second.case_id)
    assert (saved.escalation_level, saved.owner) == (2, "alex@example.com")


async def test_a_customers_last_message_time_only_moves_forward(sessions: SessionFactory) -> None:
    """The frequency cap reads when each customer was last messaged: one statement writes it
    for a whole batch, and an earlier time (a slower replica's batch) never moves it back."""
    later = NOW + timedelta(hours=1)
    async with unit_of_work(sessions) as session:
        await FollowupRepository(session).set_last_messages(["cap-1", "cap-2", "cap-1"], later)
    async with unit_of_work(sessions) as session:
        await FollowupRepository(session).set_last_messages(["cap-1", "cap-3"], NOW)
    async with sessions() as session:
        history = await FollowupRepository(session).contact_history(["cap-1", "cap-2", "cap-3"])
    assert history.last_messaged == {"cap-1": later, "cap-2": later, "cap-3": NOW}
    assert history.opted_out == {}


async def _statements_of(engine: AsyncEngine, work: Callable[[], Awaitable[object]]) -> int:
    """How many statements `work` sends, through the session or on the transaction's driver
    connection (BEGIN and COMMIT are not counted)."""
    async with statements_sent(engine) as sent:
        await work()
    return len(sent)


async def test_a_batch_takes_the_same_few_statements_whatever_its_size(
    engine: AsyncEngine, sessions: SessionFactory
) -> None:
    """What a steady stream pays per batch of one: a fixed number of statements (at most 8 to
    open cases: the kit's inbox claim and outbox, and six of followup's own; 2 to record
    results: the claim and one update), the same for 40 responses or results as for one."""
    opened: list[list[Case]] = []

    def opening(size: int) -> Callable[[], Awaitable[object]]:
        async def run() -> None:
            responses = [scored(f"fixed-{size}-{i}") for i in range(size)]
            opened.append(await open_for(sessions, *responses))

        return run

    def results(cases: list[Case]) -> Callable[[], Awaitable[object]]:
        async def run() -> None:
            reported = [
                ActionResultReported(
                    action_id=a.action_id,
                    case_id=c.case_id,
                    customer_id=c.customer_id,
                    channel=Channel.EMAIL,
                    status=ActionStatus.SENT,
                    occurred_at=NOW,
                )
                for c in cases
                for a in c.actions
            ]
            async with unit_of_work(sessions) as session:
                await record_action_results(FollowupRepository(session), reported, now=NOW)

        return run

    one = await _statements_of(engine, opening(1))
    many = await _statements_of(engine, opening(40))
    assert len(opened[1]) == 40
    assert one == many <= 8
    one = await _statements_of(engine, results(opened[0]))
    many = await _statements_of(engine, results(opened[1]))
    assert one == many == 2


async def test_a_batch_reads_its_responses_cases_and_locks_its_customers_active_cases_at_once(
    sessions: SessionFactory, second_sessions: SessionFactory
) -> None:
    """`cases_of_batch`, the batch's first read: the case of each response that has one, and
    each customer's active case, locked until the batch's transaction ends (another replica
    cannot take the row meanwhile)."""
    [opened] = await open_for(sessions, scored("one-read-1"))
    other = scored("one-read-2")
    async with unit_of_work(sessions) as session:
        existing, active = await FollowupRepository(session).cases_of_batch(
            [opened.response_id, other.response_id], ["one-read-1", "one-read-2"]
        )
        assert existing == {opened.response_id: opened.case_id}
        assert set(active) == {"one-read-1"}
        assert active["one-read-1"].case_id == opened.case_id
        assert active["one-read-1"].customer == opened.customer
        with pytest.raises(Exception, match="could not obtain lock") as refused:
            async with unit_of_work(second_sessions) as elsewhere:
                await elsewhere.execute(
                    text("SELECT 1 FROM followup.cases WHERE case_id = :id FOR UPDATE NOWAIT"),
                    {"id": opened.case_id},
                )
        assert sqlstate(refused.value) == "55P03"  # lock_not_available
