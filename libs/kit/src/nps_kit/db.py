"""One async engine per process and a unit of work per handler call."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from nps_kit.settings import DatabaseSettings

T = TypeVar("T")


def create_engine(settings: DatabaseSettings, *, application_name: str) -> AsyncEngine:
    engine = create_async_engine(
        settings.url.get_secret_value(),
        pool_size=settings.pool_size,
        echo=settings.echo,
        # Statements' parameters are customer data (emails, names, comments): never in an
        # error's text, hence never in a log line.
        hide_parameters=True,
        connect_args={"server_settings": {"application_name": application_name}},
    )
    # Instead of `pool_pre_ping` (BEGIN, `;`, ROLLBACK: three round trips and 200-260 µs of
    # CPU before every transaction, docs/performance.md): a connection the server closed
    # (a restart, a crash, a terminated backend) is one asyncpg has seen close, since the
    # event loop read the end of its socket while it sat in the pool. Checking that costs no
    # round trip; the pool then opens a fresh connection in its place.
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    return engine


def _refuse_closed(
    dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    if dbapi_connection.driver_connection.is_closed():
        # The pool discards this connection and checks out another (a new one if need be).
        raise DisconnectionError("the database closed this connection")


SessionFactory = async_sessionmaker[AsyncSession]


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A transaction: committed when the block ends normally, rolled back otherwise."""
    async with sessions() as session, session.begin():
        yield session


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under `session`'s transaction, that transaction begun: for the
    kit's hot statements (inbox, outbox, relay), which asyncpg prepares once per connection
    and runs in ~40 µs of CPU against 100-300 µs through the session (docs/performance.md).
    What runs on it commits or rolls back with the session.

    SQLAlchemy's asyncpg adapter begins its transaction lazily, at the first statement it
    runs; the kit's statement may be the first, so it is begun here (the adapter's own method,
    under its lock). `tests/integration/test_inbox.py` proves the rollback takes it back."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    # The adapter's private state and method: see the docstring.
    if adapted._transaction is None:
        async with adapted._execute_mutex:
            if adapted._transaction is None:
                await adapted._start_transaction()
    return raw.driver_connection


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
