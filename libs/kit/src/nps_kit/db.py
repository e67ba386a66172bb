"""One async engine per process and a unit of work per handler call."""

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import ClauseElement, event, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
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


#: Where `unit_of_work` keeps, in its session's `info`, the connection it checks out for
#: `driver_connection` when that comes before any ORM statement.
_DRIVER = "nps_kit.db.driver"


class _Driver:
    """The pooled connection of a unit of work whose first statement runs on the driver."""

    __slots__ = ("adapted", "asyncpg", "connection", "engine")

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.connection: AsyncConnection | None = None
        #: SQLAlchemy's adapter around the asyncpg connection, and that connection.
        self.adapted: Any = None
        self.asyncpg: Any = None


@asynccontextmanager
async def unit_of_work(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A transaction: committed when the block ends normally, rolled back otherwise.

    The session is begun when it is first used, as SQLAlchemy's are. A transaction whose
    statements all run on the driver connection (`driver_connection`: the kit's inbox and
    outbox, the services' hot statements) never goes through the session: its connection is
    checked out of the engine's pool and committed there, ~40% less CPU for a batch of one
    (docs/performance.md, the kit, issue #20 third session). If ORM work follows, the session
    is bound to that connection first, so it joins the same transaction."""
    session = sessions()
    bind = session.bind
    driver = _Driver(bind) if isinstance(bind, AsyncEngine) else None
    if driver is not None:
        session.info[_DRIVER] = driver
    used = False
    try:
        try:
            yield session
        except BaseException:
            used = session.in_transaction()
            if used:
                await session.rollback()
            # A transaction begun on the driver alone is rolled back as its connection goes
            # back to the pool, below (the pool's reset on return).
            raise
        used = session.in_transaction()
        if used:
            await session.commit()
        elif driver is not None and driver.adapted is not None:
            await _commit_driver(driver.adapted)
    finally:
        try:
            if used or driver is None:
                await session.close()
        finally:
            if driver is not None and driver.connection is not None:
                await driver.connection.close()


async def _commit_driver(adapted: Any) -> None:
    # The adapter's private state, as `_start_transaction` in `driver_connection`: its commit
    # without the session, the `Connection` and their greenlet.
    transaction = adapted._transaction
    if transaction is None:
        return
    adapted._transaction = None
    await transaction.commit()


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under `session`'s transaction, that transaction begun: for the
    kit's hot statements (inbox, outbox, relay), which asyncpg prepares once per connection
    and runs in ~40 µs of CPU against 100-300 µs through the session (docs/performance.md).
    What runs on it commits or rolls back with the session.

    In a `unit_of_work` whose session has not been used yet, the connection is checked out of
    the pool directly and the session bound to it (see `unit_of_work`). SQLAlchemy's asyncpg
    adapter begins its transaction lazily, at the first statement it runs; the kit's statement
    may be the first, so it is begun here (the adapter's own method, under its lock).
    `tests/integration/test_inbox.py` proves the rollback takes it back."""
    driver: _Driver | None = session.info.get(_DRIVER)
    if driver is not None and driver.adapted is None and not session.in_transaction():
        driver.connection = connection = await driver.engine.connect()
        raw = await connection.get_raw_connection()
        driver.adapted, driver.asyncpg = raw.dbapi_connection, raw.driver_connection
        # ORM work later in this unit of work joins this connection's transaction.
        session.bind = connection
        session.sync_session.bind = connection.sync_connection
    if driver is not None and driver.adapted is not None:
        adapted, asyncpg = driver.adapted, driver.asyncpg
    else:
        raw = await (await session.connection()).get_raw_connection()
        adapted, asyncpg = raw.dbapi_connection, raw.driver_connection
    # The adapter's private state and method: see the docstring.
    if adapted._transaction is None:
        async with adapted._execute_mutex:
            if adapted._transaction is None:
                await adapted._start_transaction()
    return asyncpg


_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped
#: Each statement in asyncpg's form, with its parameters' names in their positions; keyed by
#: the statement object (module constants, or cached per shape by the caller).
_POSITIONAL: dict[int, tuple[ClauseElement, str, tuple[str, ...]]] = {}


def positional(statement: ClauseElement) -> tuple[str, tuple[str, ...]]:
    """`statement`'s SQL with `$1, $2, …` for its named parameters, and their names in that
    order (a name used twice is one position), compiled once per process."""
    known = _POSITIONAL.get(id(statement))
    if known is None or known[0] is not statement:
        compiled: Any = statement.compile(dialect=_DIALECT)
        known = (statement, str(compiled), tuple(compiled.positiontup or ()))
        _POSITIONAL[id(statement)] = known
    return known[1], known[2]


async def driver_fetch(
    session: AsyncSession, statement: ClauseElement, params: Mapping[str, Any]
) -> list[Any]:
    """Run a service's hot `statement` (a `text()` with `:name` parameters, or a `select()`
    with `bindparam`s) with `params` in `session`'s transaction, on its asyncpg connection
    (`driver_connection`), which prepares it once per connection: ~40 µs of CPU where the
    session spent 100-300 µs building, caching and wrapping each (docs/performance.md,
    issue #20, third session). Its rows, as asyncpg records (by name: `row["case_id"]`; JSON
    columns decoded by the codec SQLAlchemy's adapter sets on each connection it opens).

    Values go to asyncpg as they are, which is what the session did with a `text()`
    statement's parameters (they have no SQL type there, so no bind processing): a
    statement's result is the same on either path."""
    sql, names = positional(statement)
    connection = await driver_connection(session)
    rows: list[Any] = await connection.fetch(sql, *(params[name] for name in names))
    return rows


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
