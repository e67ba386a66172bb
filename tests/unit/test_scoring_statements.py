"""Scoring's hot statements as asyncpg runs them: the SQL of the session's text, its `:name`
parameters numbered in order of first use."""

import re

from nps_scoring.adapters.repository import (
    _DELETE_EMPTY_FIGURES_SQL,
    _KNOWN_SQL,
    _STORE_SQL,
    _OnDriver,
)


def test_a_parameter_used_twice_gets_one_number_and_casts_are_left_alone() -> None:
    statement = _OnDriver(
        "SELECT r.id::text FROM t AS r WHERE r.a = ANY(CAST(:ids AS uuid[])) "
        "AND r.b = :b AND r.c = ANY(CAST(:ids AS uuid[]))"
    )

    assert statement.sql == (
        "SELECT r.id::text FROM t AS r WHERE r.a = ANY(CAST($1 AS uuid[])) "
        "AND r.b = $2 AND r.c = ANY(CAST($1 AS uuid[]))"
    )
    assert statement.names == ("ids", "b")
    assert statement.arguments({"b": 2, "ids": [1], "unused": 3}) == [[1], 2]


def test_every_parameter_of_the_hot_statements_is_numbered() -> None:
    for sql in (_KNOWN_SQL, _STORE_SQL, _DELETE_EMPTY_FIGURES_SQL):
        statement = _OnDriver(sql)
        numbers = {int(n) for n in re.findall(r"\$(\d+)", statement.sql)}

        assert not re.search(r"(?<![:\w]):\w", statement.sql)
        assert numbers == set(range(1, len(statement.names) + 1))
        assert set(statement.names) == set(re.findall(r"(?<![:\w]):(\w+)", sql))
