"""The kit's engine after PostgreSQL restarts under it (`nps_kit.db.create_engine`): the
first transaction afterwards succeeds, on a fresh connection, with no ping before each
transaction. The pool's connections were closed by the server; the engine notices that
without a round trip (asyncpg saw each socket close) and opens new ones."""

import asyncio
import uuid

import pytest
from sqlalchemy import text

from nps_kit.db import create_engine, session_factory, unit_of_work
from nps_kit.inbox import claim
from nps_kit.settings import DatabaseSettings
from nps_scoring.adapters import tables as scoring_tables
from tests.support.infra import Infra

INBOX = scoring_tables.inbox


async def test_the_first_transaction_after_a_database_restart_succeeds(
    infra: Infra, database_url: str
) -> None:
    if infra.postgres is None:
        pytest.skip("the database runs in a container the tests do not restart")
    engine = create_engine(
        DatabaseSettings(url=database_url, pool_size=2), application_name="test-restart"
    )
    sessions = session_factory(engine)
    try:
        # Two connections in the pool, both idle when the server goes.
        async with unit_of_work(sessions) as one, unit_of_work(sessions) as two:
            before = {
                await one.scalar(text("SELECT pg_backend_pid()")),
                await two.scalar(text("SELECT pg_backend_pid()")),
            }
        assert engine.pool.checkedin() == 2  # type: ignore[attr-defined]

        # A crash, as the chaos suite makes one: SIGKILL to every process, then crash recovery.
        await asyncio.to_thread(infra.postgres.kill)
        await asyncio.to_thread(infra.postgres.start)

        ids = [str(uuid.uuid4())]
        async with unit_of_work(sessions) as session:
            assert await claim(session, INBOX, "restart", ids) == set(ids)
            after = await session.scalar(text("SELECT pg_backend_pid()"))
        assert after not in before
        async with unit_of_work(sessions) as session:
            assert await claim(session, INBOX, "restart", ids) == set()  # it was committed
    finally:
        await engine.dispose()
