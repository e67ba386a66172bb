"""The migrations of the kit's tables (issue #20, sixth session): each service's outbox without
`created_at`, beside the inbox as it was. A database at the
revision before them, holding claims and queued rows written by the previous release's
statements, upgrades with them intact: an event claimed before the upgrade is still recognised
when it is delivered again after it. The downgrade gives back the previous schema exactly, the
same rows in it, and it upgrades again. The claim of this release also works on the previous
schema (its code may roll out before the migration runs)."""

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, Uuid, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from nps_followup.adapters import tables as followup_tables
from nps_kit.db import session_factory, unit_of_work
from nps_kit.inbox import claim, inbox_table
from nps_kit.migrations import downgrade, upgrade
from nps_kit.outbox import outbox_table
from nps_notify.adapters import tables as notify_tables
from nps_scoring.adapters import tables as scoring_tables
from tests.support.infra import Infra, new_database

#: The previous release's statements on these tables, as its kit ran them.
_OLD_CLAIM = (
    "INSERT INTO {schema}.inbox (event_id, consumer) "
    "SELECT unnest($1::varchar[]), $2::varchar ON CONFLICT DO NOTHING RETURNING event_id"
)
_OLD_ADD = (
    "INSERT INTO {schema}.outbox (topic, key, value, headers) "
    "SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::text[])"
)
_COLUMNS = (
    "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, "
    "column_default FROM information_schema.columns WHERE table_schema = $1 "
    "AND table_name IN ('inbox', 'outbox') ORDER BY table_name, ordinal_position"
)
_INDEXES = (
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 "
    "AND tablename IN ('inbox', 'outbox') ORDER BY indexname"
)

CASES = [
    # package, revision before this session's, the service's inbox (if any) and outbox
    ("nps_scoring", "0004", scoring_tables.inbox, scoring_tables.outbox),
    ("nps_followup", "0009", followup_tables.inbox, followup_tables.outbox),
    ("nps_notify", "0002", None, notify_tables.outbox),
]


State = tuple[list[Any], list[Any], list[Any], list[Any]]


async def _state(engine: AsyncEngine, schema: str, *, inbox: bool) -> State:
    """The kit's tables in `schema`: their columns, their indexes, the inbox's claims (as
    text) and the outbox's rows."""
    async with engine.connect() as connection:
        raw: Any = (await connection.get_raw_connection()).driver_connection
        columns = [tuple(r) for r in await raw.fetch(_COLUMNS, schema)]
        indexes = [tuple(r) for r in await raw.fetch(_INDEXES, schema)]
        claims = []
        if inbox:
            sql = f"SELECT event_id::text, consumer FROM {schema}.inbox"  # noqa: S608
            claims = sorted(tuple(r) for r in await raw.fetch(sql))
        sql = f"SELECT id, topic, key, value, headers FROM {schema}.outbox"  # noqa: S608
        rows = [tuple(r) for r in await raw.fetch(sql)]
    return columns, indexes, claims, rows


async def _old_claim(engine: AsyncEngine, schema: str, ids: list[str]) -> list[Any]:
    """`ids` claimed by the previous release's statement: those it found new."""
    async with engine.connect() as connection:
        raw: Any = (await connection.get_raw_connection()).driver_connection
        rows: list[Any] = await raw.fetch(_OLD_CLAIM.format(schema=schema), ids, schema)
        await connection.commit()
    return rows


async def _old_add(engine: AsyncEngine, schema: str) -> None:
    async with engine.connect() as connection:
        raw: Any = (await connection.get_raw_connection()).driver_connection
        await raw.execute(
            _OLD_ADD.format(schema=schema),
            ["nps.x.v1"],
            [b"customer-1"],
            [b'{"a": 1}'],
            ['[["ce_id", "e-1"]]'],
        )
        await connection.commit()


@pytest.mark.parametrize(("package", "before", "inbox", "outbox"), CASES)
async def test_the_kit_tables_upgrade_with_their_rows_and_downgrade_to_the_previous_schema(
    infra: Infra, package: str, before: str, inbox: Table | None, outbox: Table
) -> None:
    del outbox
    schema = package.removeprefix("nps_")
    has_inbox = inbox is not None
    url = await new_database(infra.database_url, "kitmig")
    engine = create_async_engine(url)
    sessions = session_factory(engine)
    claimed_before = [str(uuid.uuid4()) for _ in range(3)]
    fresh, later = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        await asyncio.to_thread(upgrade, package, url, before)
        if has_inbox:
            assert len(await _old_claim(engine, schema, claimed_before)) == 3
        await _old_add(engine, schema)
        at_before = await _state(engine, schema, inbox=has_inbox)
        assert len(at_before[3]) == 1

        await asyncio.to_thread(upgrade, package, url, "head")
        at_head = await _state(engine, schema, inbox=has_inbox)
        columns, _, claims, rows = at_head
        assert ("outbox", "created_at") not in {c[:2] for c in columns}
        assert rows == at_before[3]
        if inbox is not None:
            kind = "uuid" if isinstance(inbox.c.event_id.type, Uuid) else "character varying"
            assert ("inbox", "event_id", kind) in {c[:3] for c in columns}
            assert claims == at_before[2]
            async with unit_of_work(sessions) as session:
                # Delivered again after the upgrade: recognised; only the new one is claimed.
                assert await claim(session, inbox, schema, [*claimed_before, fresh]) == {fresh}
            async with unit_of_work(sessions) as session:
                assert await claim(session, inbox, schema, [fresh]) == set()

        await asyncio.to_thread(downgrade, package, url, before)
        columns, indexes, claims, rows = await _state(engine, schema, inbox=has_inbox)
        assert (columns, indexes) == at_before[:2]
        assert rows == at_before[3]
        if inbox is not None:
            # The claims made after the upgrade are kept too, as the text they were given.
            assert {c[0] for c in claims} == {*claimed_before, fresh}
            async with unit_of_work(sessions) as session:
                # This release's claim on the previous schema (its code rolled out before the
                # migration runs): it recognises what was claimed, and claims what was not.
                assert await claim(session, inbox, schema, [fresh, later]) == {later}
            # The previous release's claim still recognises every row.
            assert await _old_claim(engine, schema, [*claimed_before, fresh, later]) == []

        await asyncio.to_thread(upgrade, package, url, "head")
        assert (await _state(engine, schema, inbox=has_inbox))[:2] == at_head[:2]
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("package", "before", "inbox", "outbox"), CASES)
async def test_a_fresh_database_has_the_kit_tables_the_code_describes(
    infra: Infra, package: str, before: str, inbox: Table | None, outbox: Table
) -> None:
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    del before
    schema = package.removeprefix("nps_")
    url = await new_database(infra.database_url, "kitnew")
    await asyncio.to_thread(upgrade, package, url)
    # The tables as the kit describes them, alone in a metadata of their own.
    described = MetaData(schema=schema)
    outbox_table(described)
    if inbox is not None:
        inbox_table(described)
    engine = create_async_engine(url)

    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": lambda name, kind, _parent: (
                    name == schema if kind == "schema" else True
                ),
                "include_object": lambda obj, name, kind, _reflected, _other: (
                    kind != "table"
                    or name in described.tables
                    or f"{schema}.{name}" in described.tables
                ),
            },
        )
        return list(compare_metadata(context, described))

    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            sql = f"SELECT count(*) FROM {schema}.outbox"  # noqa: S608
            assert await connection.scalar(text(sql)) == 0
    finally:
        await engine.dispose()
