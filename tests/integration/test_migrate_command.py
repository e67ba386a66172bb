"""`nps-<service> migrate` on a real PostgreSQL, run as an operator runs it (a process of its
own: the command configures the process's logging): up to the newest revision by default,
`--to` a given one, `--down-to` an older one (what rolling the code back past a schema the
older code cannot run on asks, docs/operations.md), `--status` to see where a database stands;
and an unknown revision is one line and exit code 2, with the schema untouched."""

import asyncio
import os
import subprocess
import sys

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.infra import Infra, new_database


def _migrate(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nps_scoring", "migrate", *args],
        env={**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _revision(url: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(text("SELECT to_regclass('scoring.alembic_version')"))
            if exists is None:
                return None
            return await connection.scalar(text("SELECT version_num FROM scoring.alembic_version"))
    finally:
        await engine.dispose()


def test_migrate_up_to_a_revision_back_down_and_say_where_it_stands(infra: Infra) -> None:
    url = asyncio.run(new_database(infra.database_url, "migrate"))

    assert _migrate(url, "--to", "0004").returncode == 0
    assert asyncio.run(_revision(url)) == "0004"
    assert _migrate(url).returncode == 0
    assert asyncio.run(_revision(url)) == "0005"
    assert _migrate(url, "--down-to", "0003").returncode == 0
    assert asyncio.run(_revision(url)) == "0003"

    status = _migrate(url, "--status")
    assert status.returncode == 0, status.stderr
    said = status.stdout.splitlines()
    assert said[0] == "schema at:"
    assert said[1].startswith("0003")
    assert "(head)" not in said[1]
    assert said[2] == "this release's newest:"
    assert said[3].startswith("0005 (head)")
    assert asyncio.run(_revision(url)) == "0003"  # --status changed nothing

    unknown = _migrate(url, "--down-to", "0099")
    assert unknown.returncode == 2
    lines = unknown.stderr.strip().splitlines()
    assert lines[-1] == "nps-scoring migrate: Can't locate revision identified by '0099'"
    assert not any("Traceback" in line for line in lines)
    assert asyncio.run(_revision(url)) == "0003"

    assert _migrate(url, "--down-to", "base").returncode == 0
    assert asyncio.run(_revision(url)) is None  # alembic drops its table at base
