"""Integration fixtures: a fresh database per test module, migrated with every service's schema."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from nps_kit.db import SessionFactory, session_factory
from nps_kit.migrations import upgrade
from tests.support.infra import MIGRATED, Infra, new_database


@pytest.fixture(scope="module")
async def database_url(infra: Infra) -> str:
    url = await new_database(infra.database_url, "it")
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
