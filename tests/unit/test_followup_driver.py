"""Followup's statements in asyncpg's form (`adapters.driver.positional`): each named
parameter one position, in the order the values are passed."""

from sqlalchemy import text

from nps_followup.adapters.action_store import _RECORD_OUTCOMES
from nps_followup.adapters.driver import positional


def test_a_name_used_twice_is_one_position_and_casts_stay_as_written() -> None:
    sql, names = positional(
        text("SELECT CAST(:ids AS uuid[]), x::text FROM t WHERE a = :at OR b = :ids")
    )

    assert sql == "SELECT CAST($1 AS uuid[]), x::text FROM t WHERE a = $2 OR b = $1"
    assert names == ("ids", "at")


def test_each_statement_is_compiled_once_and_a_new_one_with_the_same_id_is_not_mixed_up() -> None:
    first = positional(_RECORD_OUTCOMES)
    assert positional(_RECORD_OUTCOMES)[0] is first[0]  # the same string: not compiled again
    assert set(first[1]) == {"action_id", "state", "provider_message_id", "reason", "at"}
    # A statement built later (a cache keyed by id must not hand back another's SQL).
    for n in range(50):
        sql, names = positional(text(f"SELECT :p{n}"))
        assert (sql, names) == ("SELECT $1", (f"p{n}",))
