"""followup's bulk statements (`adapters/bulk.py`): one array per column, typed without a
length, JSON and lists as JSON text, and a repeated key updated once with its last row."""

import json
import uuid

from nps_followup.adapters import tables
from nps_followup.adapters.bulk import columns, row_columns, unnest_insert, unnest_update


def test_arrays_are_typed_without_a_length_so_the_column_refuses_a_long_value() -> None:
    sql = unnest_insert(tables.cases, ("case_id", "source", "opened_at", "score")).text
    assert "CAST(:case_id AS uuid[])" in sql
    assert "CAST(:source AS text[])" in sql  # not varchar(100)[], which would cut it short
    assert "CAST(:opened_at AS timestamptz[])" in sql
    assert "CAST(:score AS integer[])" in sql


def test_only_an_ordered_insert_sorts_by_the_arrays_position() -> None:
    assert "ORDER BY u.ord" in unnest_insert(tables.timeline, ("entry_id",), ordered=True).text
    assert "ORDER BY" not in unnest_insert(tables.timers, ("timer_id",)).text


def test_an_insert_skips_conflicting_rows_unless_told_to_fail_on_them() -> None:
    assert unnest_insert(tables.timers, ("timer_id",)).text.endswith("ON CONFLICT DO NOTHING")
    assert "ON CONFLICT" not in unnest_insert(tables.timers, ("timer_id",), on_conflict=None).text


def test_json_and_lists_travel_as_json_text_and_none_stays_null() -> None:
    rows = [
        {"customer": {"id": "c1", "name": "Zoë"}, "themes": ["support", "price"]},
        {"customer": None, "themes": []},
    ]
    params = columns(tables.cases, ("customer", "themes"), rows)
    assert [None if v is None else json.loads(v) for v in params["customer"]] == [
        {"id": "c1", "name": "Zoë"},
        None,
    ]
    assert [json.loads(v) for v in params["themes"]] == [["support", "price"], []]
    sql = unnest_insert(tables.cases, ("customer", "themes")).text
    assert "CAST(u.customer AS jsonb)" in sql
    assert "jsonb_array_elements_text(CAST(u.themes AS jsonb)) WITH ORDINALITY" in sql


def test_a_key_given_twice_is_updated_once_with_its_last_row() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    rows = [
        {"case_id": first, "escalation_level": 1},
        {"case_id": second, "escalation_level": 2},
        {"case_id": first, "escalation_level": 3},
    ]
    params = columns(tables.cases, ("case_id", "escalation_level"), rows, key="case_id")
    assert dict(zip(params["case_id"], params["escalation_level"], strict=True)) == {
        first: 3,
        second: 2,
    }
    sql = unnest_update(tables.cases, "case_id", ("escalation_level",)).text
    assert "SET escalation_level = u.escalation_level" in sql
    assert sql.endswith("WHERE t.case_id = u.case_id")


def test_json_text_reads_as_json_dumps_would_have_written_it() -> None:
    # pydantic's encoder writes the JSON columns (faster); `jsonb` must read the same value
    # from its text as from `json.dumps`'s: no spaces, non-ASCII as is, numbers as they are.
    values = [
        {"rule": "detractor", "considered": [], "deadline": {"team": "cs", "days": ["mon"]}},
        {"name": "Zoë 東京 \u2028", "n": 10**30, "x": 0.1, "ok": True, "none": None},
        ["support", "price"],
        [],
        "a string",
    ]
    params = columns(tables.timeline, ("details",), [{"details": v} for v in values])
    assert [json.loads(v) for v in params["details"]] == values
    assert params["details"][0] != json.dumps(values[0])  # the fast encoder wrote it


def test_what_the_fast_encoder_refuses_is_written_by_json_dumps() -> None:
    # A lone surrogate: PostgreSQL refuses the text, as it did before (a data fault).
    [text] = columns(tables.timeline, ("details",), [{"details": {"name": "\ud800"}}])["details"]
    assert text == json.dumps({"name": "\ud800"})


def test_rows_given_as_tuples_make_the_same_arrays_as_mappings() -> None:
    names = ("case_id", "customer", "themes", "score", "comment")
    rows = [
        (uuid.UUID(int=1), {"id": "c1", "name": "Zoë"}, ["support"], 3, None),
        (uuid.UUID(int=2), None, [], 0, "slow"),
    ]
    assert row_columns(tables.cases, names, rows, prefix="x_") == columns(
        tables.cases, names, [dict(zip(names, row, strict=True)) for row in rows], prefix="x_"
    )
    assert row_columns(tables.cases, names, []) == columns(tables.cases, names, [])
