"""The services' hot statements in asyncpg's form (`nps_kit.db.positional`, behind
`driver_fetch`): each named parameter one position, numbered in order of first use, in the
order the values are passed; casts as written."""

import re

from sqlalchemy import text

from nps_followup.adapters.action_store import _RECORD_OUTCOMES
from nps_kit.db import positional
from nps_scoring.adapters.repository import (
    _DELETE_EMPTY_FIGURES_SQL,
    _KNOWN_SQL,
    _STORE_SQL,
)


def test_a_name_used_twice_is_one_position_and_casts_stay_as_written() -> None:
    sql, names = positional(
        text("SELECT CAST(:ids AS uuid[]), x::text FROM t WHERE a = :at OR b = :ids")
    )

    assert sql == "SELECT CAST($1 AS uuid[]), x::text FROM t WHERE a = $2 OR b = $1"
    assert names == ("ids", "at")


def test_a_parameter_used_twice_gets_one_number_and_casts_are_left_alone() -> None:
    sql, names = positional(
        text(
            "SELECT r.id::text FROM t AS r WHERE r.a = ANY(CAST(:ids AS uuid[])) "
            "AND r.b = :b AND r.c = ANY(CAST(:ids AS uuid[]))"
        )
    )

    assert sql == (
        "SELECT r.id::text FROM t AS r WHERE r.a = ANY(CAST($1 AS uuid[])) "
        "AND r.b = $2 AND r.c = ANY(CAST($1 AS uuid[]))"
    )
    assert names == ("ids", "b")
    params = {"b": 2, "ids": [1], "unused": 3}
    assert [params[name] for name in names] == [[1], 2]  # as driver_fetch passes them


def test_each_statement_is_compiled_once_and_a_new_one_with_the_same_id_is_not_mixed_up() -> None:
    first = positional(_RECORD_OUTCOMES)
    assert positional(_RECORD_OUTCOMES)[0] is first[0]  # the same string: not compiled again
    assert set(first[1]) == {"action_id", "state", "provider_message_id", "reason", "at"}
    # A statement built later (a cache keyed by id must not hand back another's SQL).
    for n in range(50):
        sql, names = positional(text(f"SELECT :p{n}"))
        assert (sql, names) == ("SELECT $1", (f"p{n}",))


def test_every_parameter_of_scorings_hot_statements_is_numbered() -> None:
    for raw in (_KNOWN_SQL, _STORE_SQL, _DELETE_EMPTY_FIGURES_SQL):
        sql, names = positional(text(raw))
        numbers = {int(n) for n in re.findall(r"\$(\d+)", sql)}

        assert not re.search(r"(?<![:\w]):\w", sql)
        assert numbers == set(range(1, len(names) + 1))
        assert set(names) == set(re.findall(r"(?<![:\w]):(\w+)", raw))
