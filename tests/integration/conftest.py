"""Integration fixtures: a fresh database per test module, migrated with every service's schema."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from nps_kit.db import SessionFactory, session_factory
from nps_kit.migrations import upgrade
from tests.support.infra import MIGRATED, Infra


@pytest.fixture(scope="module")
async def database_url(infra: Infra) -> str:
    name = f"it_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(infra.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    url = make_url(infra.database_url).set(database=name).render_as_string(hide_password=False)
    for package in MIGRATED:
        await asyncio.to_thread(upgrade, package, url)  # Alembic runs its own event loop
    return url


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)
