"""One async engine per process and a unit of work per handler call."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from nps_kit.settings import DatabaseSettings

T = TypeVar("T")


def create_engine(settings: DatabaseSettings, *, application_name: str) -> AsyncEngine:
    return create_async_engine(
        settings.url.get_secret_value(),
        pool_size=settings.pool_size,
        pool_pre_ping=True,
        echo=settings.echo,
        # Statements' parameters are customer data (emails, names, comments): never in an
        # error's text, hence never in a log line.
        hide_parameters=True,
        connect_args={"server_settings": {"application_name": application_name}},
    )


SessionFactory = async_sessionmaker[AsyncSession]


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A transaction: committed when the block ends normally, rolled back otherwise."""
    async with sessions() as session, session.begin():
        yield session


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def in_one_transaction(
    settings: DatabaseSettings,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    application_name: str,
) -> T:
    """`work` in one transaction on a connection of its own (a one-off command: an erasure,
    a rebuild), the engine disposed of afterwards."""
    engine = create_engine(settings, application_name=application_name)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()
