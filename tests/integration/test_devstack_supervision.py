"""The dev stack's supervisor: PostgreSQL or the broker killed with SIGKILL is reaped (no
zombie), reported, and started again until it accepts connections — PostgreSQL despite the
`postmaster.pid` the dead one left, the broker with its topics created again.

Real processes, on infrastructure of the test's own (the shared one is not killed)."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from nps_events.topics import ALL_TOPICS
from nps_kit.devstack import EmbeddedPostgres, free_port
from nps_kit.devstack.postgres import clear_stale_lock
from nps_kit.devstack.services import create_topics
from nps_kit.devstack.supervise import Supervisor
from nps_kit.messaging import client_options
from nps_kit.settings import KafkaSettings
from tests.support.infra import new_broker
from tests.support.polling import eventually

DEADLINE = 60.0


@contextmanager
def supervising(supervisor: Supervisor) -> Iterator[None]:
    """The dev stack's loop: a check every 0.2 s, in a thread, while the block runs."""
    stopping = threading.Event()

    def loop() -> None:
        while not stopping.wait(0.2):
            supervisor.check()

    thread = threading.Thread(target=loop, name="supervisor", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join(timeout=60)


def _reaped(pid: int) -> bool:
    """No process `pid` any more, not even a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(")") + 2] != "Z"  # alive and not a zombie: the PID was reused


async def _accepts_connections(postgres: EmbeddedPostgres) -> bool:
    try:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=postgres.port, user="postgres", database=postgres.database
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    try:
        return await conn.fetchval("SELECT count(*) FROM survived") == 1
    finally:
        await conn.close()


async def test_a_killed_postgres_is_reaped_restarted_and_accepts_connections(
    tmp_path: Path,
) -> None:
    postgres = EmbeddedPostgres(data_dir=tmp_path / "postgres", port=free_port())
    postgres.start()
    said: list[str] = []
    supervisor = Supervisor(say=said.append, initial_backoff=0.2)
    supervisor.watch("postgres", postgres)
    try:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=postgres.port, user="postgres", database=postgres.database
        )
        await conn.execute("CREATE TABLE survived (id int); INSERT INTO survived VALUES (1)")
        await conn.close()
        with supervising(supervisor):
            for _ in range(2):  # a second crash is handled like the first
                dead = postgres.pid
                assert dead is not None
                os.kill(dead, signal.SIGKILL)
                await eventually(
                    lambda dead=dead: asyncio.sleep(0, postgres.pid != dead),
                    until=bool,
                    timeout=DEADLINE,
                    what="a new postmaster",
                )
                await eventually(
                    lambda: _accepts_connections(postgres),
                    until=bool,
                    timeout=DEADLINE,
                    what="the restarted PostgreSQL accepting connections, its data there",
                )
                assert _reaped(dead), f"postmaster {dead} left a zombie"
    finally:
        postgres.stop()
    # A start may fail while the dead server's backends still hold its shared memory: then
    # "did not start … next try in …", and the next try works.
    assert said[0] == "postgres exited; restarting it", said
    assert said[-1] == "postgres is back", said


async def _topics(bootstrap_servers: str) -> set[str]:
    admin = AIOKafkaAdminClient(
        **client_options(KafkaSettings(bootstrap_servers=bootstrap_servers))
    )
    try:
        await admin.start()
        return set(await admin.list_topics())
    except Exception:  # not back yet
        return set()
    finally:
        await admin.close()


async def test_a_killed_broker_is_reaped_restarted_and_has_its_topics_again(
    tmp_path: Path,
) -> None:
    broker = new_broker(tmp_path)
    broker.start()
    said: list[str] = []
    supervisor = Supervisor(say=said.append, initial_backoff=0.2)
    supervisor.watch(
        "broker",
        broker,
        after_restart=lambda: create_topics(broker.bootstrap_servers, partitions=1),
    )
    try:
        await asyncio.to_thread(create_topics, broker.bootstrap_servers, partitions=1)
        dead = broker.pid
        assert dead is not None
        with supervising(supervisor):
            os.kill(dead, signal.SIGKILL)
            await eventually(
                lambda: asyncio.sleep(0, broker.pid != dead),
                until=bool,
                timeout=DEADLINE,
                what="a new broker process",
            )
            await eventually(
                lambda: _topics(broker.bootstrap_servers),
                until=lambda topics: set(ALL_TOPICS) <= topics,
                timeout=DEADLINE,
                what="the restarted broker with every topic created again",
            )
        assert _reaped(dead), f"broker {dead} left a zombie"
    finally:
        broker.stop()
    assert "broker exited; restarting it" in said, said


def test_a_stale_postmaster_pid_is_removed_only_when_no_live_postgres_owns_it(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "postmaster.pid"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    for stale in (gone.stdout.strip(), str(os.getpid()), "garbage"):
        lock.write_text(f"{stale}\n{tmp_path}\n")
        assert clear_stale_lock(tmp_path), stale
        assert not lock.exists()
    assert not clear_stale_lock(tmp_path)  # no lock: nothing to do


def test_a_live_postgres_keeps_its_postmaster_pid(tmp_path: Path) -> None:
    postgres = EmbeddedPostgres(data_dir=tmp_path / "postgres", port=free_port(), durable=False)
    postgres.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            clear_stale_lock(postgres.data_dir)
        assert (postgres.data_dir / "postmaster.pid").exists()
    finally:
        postgres.stop()
