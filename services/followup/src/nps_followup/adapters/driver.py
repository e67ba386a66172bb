"""Followup's hot statements on the transaction's own asyncpg connection.

The statements a consumer batch or a sweep runs every time (opening a batch of cases, its
reads, the records of the batch, notify's results) go to the asyncpg connection under the
session's transaction (`nps_kit.db.driver_connection`, as the kit's inbox and outbox do):
the same transaction, so they commit or roll back with the rest of the unit of work. asyncpg
prepares each statement once per connection and runs it in ~40 µs of CPU, where the session
spent 100-300 µs building, caching and wrapping each (docs/performance.md, "Followup at
scale", issue #20, third session).

The statements stay SQLAlchemy statements with named parameters (`text()` with `:name`, or
the sweeper's due-now `select()` with `bindparam`s): each is compiled once per process into
asyncpg's positional form (`$1`), with the order of its names. Values go to asyncpg as they
are, which is what the session did with a `text()` statement's parameters too (they have no
SQL type there, so no bind processing; the due-now query's two parameters are a time and a
number, which asyncpg's own codecs take): a statement's result is the same on either path.
Rows come back as asyncpg records (by name: `row["case_id"]`); JSON columns decoded, by the
codec SQLAlchemy's adapter sets on each connection it opens.
"""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ClauseElement
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from nps_kit.db import driver_connection

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped
#: Each statement in asyncpg's form, with its parameters' names in their positions; keyed by
#: the statement object (module constants, or cached per shape).
_POSITIONAL: dict[int, tuple[ClauseElement, str, tuple[str, ...]]] = {}


def positional(statement: ClauseElement) -> tuple[str, tuple[str, ...]]:
    """`statement`'s SQL with `$1, $2, …` for its named parameters, and their names in that
    order (a name used twice is one position)."""
    known = _POSITIONAL.get(id(statement))
    if known is None or known[0] is not statement:
        compiled: Any = statement.compile(dialect=_DIALECT)
        known = (statement, str(compiled), tuple(compiled.positiontup or ()))
        _POSITIONAL[id(statement)] = known
    return known[1], known[2]


async def fetch(
    session: AsyncSession, statement: ClauseElement, params: Mapping[str, Any]
) -> list[Any]:
    """Run `statement` with `params` in `session`'s transaction, on its asyncpg connection;
    its rows (asyncpg records)."""
    sql, names = positional(statement)
    connection = await driver_connection(session)
    rows: list[Any] = await connection.fetch(sql, *(params[name] for name in names))
    return rows
