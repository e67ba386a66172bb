"""`nps-<service> migrate` on a real PostgreSQL: up to the newest revision by default, `--to`
a given one, `--down-to` an older one (what rolling the code back past a schema the older code
cannot run on asks, docs/operations.md), `--status` to see where a database stands; and an
unknown revision is one line and exit code 2, with the schema untouched."""

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from nps_scoring.__main__ import main
from tests.support.infra import Infra, new_database


def _run(*args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("sys.argv", ["nps-scoring", "migrate", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0)


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


def test_migrate_up_to_a_revision_back_down_and_say_where_it_stands(
    infra: Infra, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = asyncio.run(new_database(infra.database_url, "migrate"))
    monkeypatch.setenv("DATABASE_URL", url)

    assert _run("--to", "0004", monkeypatch=monkeypatch) == 0
    assert asyncio.run(_revision(url)) == "0004"
    assert _run(monkeypatch=monkeypatch) == 0
    assert asyncio.run(_revision(url)) == "0005"
    assert _run("--down-to", "0003", monkeypatch=monkeypatch) == 0
    assert asyncio.run(_revision(url)) == "0003"

    capsys.readouterr()
    assert _run("--status", monkeypatch=monkeypatch) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == "schema at:"
    assert said[1].startswith("0003")
    assert "(head)" not in said[1]
    assert said[2] == "this release's newest:"
    assert said[3].startswith("0005 (head)")
    assert asyncio.run(_revision(url)) == "0003"  # --status changed nothing

    assert _run("--down-to", "base", monkeypatch=monkeypatch) == 0
    assert asyncio.run(_revision(url)) is None  # alembic drops its table at base


def test_an_unknown_revision_is_one_line_and_exit_code_2(
    infra: Infra, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = asyncio.run(new_database(infra.database_url, "migrate"))
    monkeypatch.setenv("DATABASE_URL", url)
    assert _run(monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    assert _run("--down-to", "0099", monkeypatch=monkeypatch) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert said[-1] == "nps-scoring migrate: Can't locate revision identified by '0099'"
    assert not any("Traceback" in line for line in said)
    assert asyncio.run(_revision(url)) == "0005"
