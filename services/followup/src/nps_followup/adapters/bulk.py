"""Bulk writes as one statement with one array parameter per column: `INSERT … SELECT FROM
unnest(…)` and `UPDATE … FROM unnest(…)`.

PostgreSQL runs such a statement once for the whole batch, and its SQL does not grow with
the batch, so it is compiled once per process. An executemany of the same rows (what
SQLAlchemy and asyncpg do with a list of parameter sets) runs the statement once per row:
measured in `bench/followup.py`, the batch's inserts and updates took 2.3 s of 5.7 s for
six batches of 500 new cases (docs/performance.md, "Followup at scale").

The arrays are typed without a length (`text[]`, not `varchar(100)[]`): a cast to
`varchar(n)` truncates silently, while the assignment to the column refuses a value that is
too long, as the row-by-row statement did. JSON values (and arrays, which `unnest` would
flatten) travel as JSON text and are converted in the statement.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_core import PydanticSerializationError, to_json
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    Integer,
    String,
    Table,
    TextClause,
    Uuid,
    any_,
    bindparam,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

#: The array element of each column type (the first that matches); JSON and arrays travel as
#: JSON text (see `_select`), strings without their length.
_ELEMENTS: tuple[tuple[type[Any], str], ...] = (
    (JSONB, "text"),
    (ARRAY, "text"),
    (Uuid, "uuid"),
    (BigInteger, "bigint"),
    (Integer, "integer"),
    (Boolean, "boolean"),
    (String, "text"),  # String and Text
)


def _element(column: Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, DateTime):
        return "timestamptz" if kind.timezone else "timestamp"
    for python, element in _ELEMENTS:
        if isinstance(kind, python):
            return element
    raise TypeError(f"no array form for {column.name}: {kind!r}")


def _select(column: Column[Any]) -> str:
    """The value of `column` from the unnested row `u`."""
    name = column.name
    if isinstance(column.type, JSONB):
        return f"CAST(u.{name} AS jsonb)"
    if isinstance(column.type, ARRAY):
        return (
            f"ARRAY(SELECT e.v FROM jsonb_array_elements_text(CAST(u.{name} AS jsonb)) "  # noqa: S608 - a column's name
            "WITH ORDINALITY AS e(v, n) ORDER BY e.n)"
        )
    return f"u.{name}"


# The statements are built from the names of a table's columns (`table.c[name]` refuses any
# other) at import time, never from input; every value is a bound parameter.
def _unnest(table: Table, names: Sequence[str], *, ordered: bool = False, prefix: str = "") -> str:
    arrays = ", ".join(f"CAST(:{prefix}{n} AS {_element(table.c[n])}[])" for n in names)
    if ordered:
        return f"unnest({arrays}) WITH ORDINALITY AS u({', '.join(names)}, ord)"
    return f"unnest({arrays}) AS u({', '.join(names)})"


def unnest_insert(
    table: Table,
    names: Sequence[str],
    *,
    ordered: bool = False,
    on_conflict: str | None = "DO NOTHING",
    returning: str = "",
    prefix: str = "",
    where: str = "",
) -> TextClause:
    """`INSERT INTO table (names) SELECT … FROM unnest(:name, …)`; `ordered`: the rows in the
    order of the arrays, so that an identity column numbers them in that order (a sort that
    tables without one do without). `on_conflict` None: no `ON CONFLICT` clause (a row that
    conflicts fails the statement; PostgreSQL then inserts each row once, where `ON CONFLICT`
    makes it a speculative insertion: the unique indexes probed first, the row then confirmed
    with a WAL record of its own). `prefix` names the parameters `:{prefix}{name}` (two
    inserts in one statement, see `with_inserted`); `where` keeps only the rows of `u` it
    accepts."""
    values = ", ".join(_select(table.c[n]) for n in names)
    sql = (
        f"INSERT INTO {table.fullname} ({', '.join(names)}) SELECT {values} "  # noqa: S608 - names of the table's columns
        f"FROM {_unnest(table, names, ordered=ordered, prefix=prefix)}"
        f"{f' WHERE {where}' if where else ''}"
        f"{' ORDER BY u.ord' if ordered else ''}"
        f"{'' if on_conflict is None else f' ON CONFLICT {on_conflict}'}"
    )
    if returning:
        sql += f" RETURNING {returning}"
    return text(sql)


def unnest_update(
    table: Table,
    key: str,
    names: Sequence[str],
    *,
    also: Mapping[str, str] | None = None,
    returning: str = "",
) -> TextClause:
    """`UPDATE table SET name = u.name, … FROM unnest(:key, :name, …) WHERE key = u.key`; `also`
    sets more columns to one SQL expression each (of scalar parameters). Each key at most
    once (see `columns`)."""
    sets = [f"{n} = {_select(table.c[n])}" for n in names]
    sets += [f"{n} = {expression}" for n, expression in (also or {}).items()]
    sql = (
        f"UPDATE {table.fullname} AS t SET {', '.join(sets)} "  # noqa: S608 - names of the table's columns
        f"FROM {_unnest(table, [key, *names])} WHERE t.{key} = u.{key}"
    )
    if returning:
        sql += f" RETURNING {returning}"
    return text(sql)


def with_inserted(first: TextClause, key: str, *then: TextClause) -> TextClause:
    """One statement of several inserts: `first` (which must return `key`), then each of `then`
    (whose `where` names `inserted`, the keys `first` inserted), returning `first`'s keys. The
    rows of `then` reference those of `first`: their foreign keys are checked at the end of
    the statement, when the rows of `first` are there."""
    parts = [f"inserted AS ({first.text})"]
    parts += [f"then{i} AS ({statement.text})" for i, statement in enumerate(then)]
    return text(f"WITH {', '.join(parts)} SELECT {key} FROM inserted")  # noqa: S608 - our statements


def together(*statements: TextClause) -> TextClause:
    """Statements that write different tables, as one statement (one round trip): each a
    data-modifying `WITH` part. Their parameters must not share names (see `prefix`)."""
    if len(statements) == 1:
        return statements[0]
    parts = ", ".join(f"w{i} AS ({statement.text})" for i, statement in enumerate(statements))
    return text(f"WITH {parts} SELECT 1")


def columns(
    table: Table,
    names: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str = "",
    prefix: str = "",
) -> dict[str, list[Any]]:
    """The rows as one list per column, the parameters of `unnest_insert`/`unnest_update` (named
    `{prefix}{column}`). With `key`, a key given twice keeps its last row (what a row-by-row
    update left)."""
    if key:
        rows = list({row[key]: row for row in rows}.values())
    params: dict[str, list[Any]] = {}
    for name in names:
        kind = table.c[name].type
        values = [row[name] for row in rows]
        if isinstance(kind, JSONB | ARRAY):
            values = [None if v is None else _json(v) for v in values]
        params[prefix + name] = values
    return params


def row_columns(
    table: Table, names: Sequence[str], rows: Sequence[Sequence[Any]], *, prefix: str = ""
) -> dict[str, list[Any]]:
    """`columns` of rows given as tuples in the order of `names`: the arrays are the rows
    transposed, with no mapping built per row (a batch of 500 new cases has ~5,000 rows)."""
    arrays: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    params: dict[str, list[Any]] = {}
    for name, values in zip(names, arrays, strict=True):
        if isinstance(table.c[name].type, JSONB | ARRAY):
            params[prefix + name] = [None if v is None else _json(v) for v in values]
        else:
            params[prefix + name] = list(values)
    return params


def _json(value: Any) -> str:
    """`value` as JSON text, for a `jsonb` cast: pydantic's encoder, 3-7 times as fast as
    `json.dumps` on a case's timeline details and customer (its text differs only in spaces
    and in not escaping non-ASCII, which the cast reads as the same value; a test compares
    them); `json.dumps` for what it refuses (a lone surrogate), so as to fail as before."""
    try:
        return to_json(value).decode()
    except PydanticSerializationError:
        return json.dumps(value)


def any_of(column: Column[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """`column = ANY(:values)`: one array parameter, where `column.in_(values)` renders one
    parameter per value, so that its SQL differs with the number of values (rendered for each
    execution, and prepared again by PostgreSQL for each new length). Strings go without their
    length, as in the inserts: a cast would cut a longer value short, and then match."""
    element = String() if isinstance(column.type, String) else column.type
    return column == any_(bindparam(None, list(values), type_=ARRAY(element)))
