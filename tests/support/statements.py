"""Counting the statements an engine's connections send, whichever path they take: through
the session (SQLAlchemy's `before_cursor_execute`) or on the transaction's asyncpg connection
(`nps_kit.db.driver_connection`: the kit's inbox and outbox, followup's hot statements),
seen by asyncpg's query logger on each connection while it is checked out of the pool.
Transaction control (BEGIN, COMMIT, ROLLBACK) is not counted, nor asyncpg's look-ups of a
type it meets for the first time on a connection (once per connection, not per batch)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@asynccontextmanager
async def statements_sent(engine: AsyncEngine) -> AsyncIterator[list[str]]:
    """The statements sent inside the block, in order (complete once the block has ended)."""
    sent: list[str] = []

    def through_session(*args: object) -> None:
        sent.append(str(args[2]))

    def on_driver(record: Any) -> None:
        query = record.query
        introspection = "pg_catalog" in query or "set_config('jit'" in query
        if not introspection and not query.lstrip().upper().startswith(_CONTROL):
            sent.append(query)

    def checkout(dbapi_connection: Any, *_: object) -> None:
        dbapi_connection.driver_connection.add_query_logger(on_driver)

    def checkin(dbapi_connection: Any, *_: object) -> None:
        if dbapi_connection is not None:
            dbapi_connection.driver_connection.remove_query_logger(on_driver)

    pool = engine.sync_engine.pool
    event.listen(engine.sync_engine, "before_cursor_execute", through_session)
    event.listen(pool, "checkout", checkout)
    event.listen(pool, "checkin", checkin)
    try:
        yield sent
        # asyncpg hands each record to its loggers with `call_soon`: one turn of the loop
        # delivers those of the block's last statements.
        await asyncio.sleep(0)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", through_session)
        event.remove(pool, "checkout", checkout)
        event.remove(pool, "checkin", checkin)
