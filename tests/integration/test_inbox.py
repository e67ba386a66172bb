"""The kit's inbox (`nps_kit.inbox.claim`) on PostgreSQL: what a consumer claims is what it has
not processed before, per consumer, whatever the batch holds."""

import uuid

import pytest
from sqlalchemy import func, select

from nps_kit.db import SessionFactory, driver_connection, unit_of_work
from nps_kit.inbox import claim
from nps_scoring.adapters import tables as scoring_tables

INBOX = scoring_tables.inbox


async def test_a_batch_claims_only_the_ids_its_consumer_has_not_seen(
    sessions: SessionFactory,
) -> None:
    seen, new = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(3)]
    async with unit_of_work(sessions) as session:
        assert await claim(session, INBOX, "scorer", [seen]) == {seen}
    async with unit_of_work(sessions) as session:
        # A repeat inside the batch and one claimed before: each new id once, the old one not.
        claimed = await claim(session, INBOX, "scorer", [seen, new[0], *new, new[2]])
    assert claimed == set(new)
    async with unit_of_work(sessions) as session:
        # Another consumer of the same events has its own record of them.
        assert await claim(session, INBOX, "another", [seen, *new]) == {seen, *new}
        assert await claim(session, INBOX, "another", []) == set()


async def test_a_claim_rolled_back_with_its_work_leaves_the_ids_to_claim_again(
    sessions: SessionFactory,
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(500)]

    async def claim_then_fail() -> None:
        async with unit_of_work(sessions) as session:
            assert await claim(session, INBOX, "scorer", ids) == set(ids)
            raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError, match="the work failed"):
        await claim_then_fail()
    async with unit_of_work(sessions) as session:
        assert await claim(session, INBOX, "scorer", ids) == set(ids)


async def test_statements_through_the_session_after_a_claim_share_its_transaction(
    sessions: SessionFactory,
) -> None:
    """A claim on the driver connection first, then a statement through the session: one
    connection, one transaction, committed together or taken back together."""
    committed, rolled_back = str(uuid.uuid4()), str(uuid.uuid4())

    async def claim_then_insert(event_id: str, *, fail: bool) -> None:
        async with unit_of_work(sessions) as session:
            driver = await driver_connection(session)
            assert await claim(session, INBOX, "scorer", [event_id]) == {event_id}
            await session.execute(INBOX.insert().values(event_id=event_id, consumer="other"))
            assert await session.scalar(select(func.pg_backend_pid())) == await driver.fetchval(
                "SELECT pg_backend_pid()"
            )
            if fail:
                raise RuntimeError("the work failed")

    await claim_then_insert(committed, fail=False)
    with pytest.raises(RuntimeError, match="the work failed"):
        await claim_then_insert(rolled_back, fail=True)
    async with unit_of_work(sessions) as session:
        rows = await session.execute(
            select(INBOX.c.event_id, INBOX.c.consumer).where(
                INBOX.c.event_id.in_([committed, rolled_back])
            )
        )
        assert sorted(tuple(row) for row in rows) == [(committed, "other"), (committed, "scorer")]
