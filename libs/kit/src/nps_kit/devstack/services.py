"""The npsloop services as child processes (`python -m nps_<name> serve`): the four of the
pipeline and the console."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from nps_events.topics import ALL_TOPICS
from nps_kit.devstack.process import free_port, stop_process
from nps_kit.publishing import ensure_topics
from nps_kit.settings import KafkaSettings

SERVICES = ("ingest", "scoring", "followup", "notify", "console")


@dataclass
class ServiceProcess:
    """One service as a child process: its API on `port`, its Prometheus metrics on
    `metrics_port` (`HTTP_METRICS_PORT`; a free one unless given, so that two services, or
    two test sessions, on one machine never ask for the same)."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        """Where Prometheus would scrape this service."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", f"nps_{self.name}", "serve"],
            env={**os.environ, **self.env, "HTTP_METRICS_PORT": str(self.metrics_port)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited (see {self.log_path})")
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=1.0)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise TimeoutError(
            f"{self.name} not ready within {timeout:.0f}s: {last} (see {self.log_path})"
        )

    def restart(self) -> None:
        """Start again after the process exited (the dev stack's supervisor)."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL: the crash a test wants to survive."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self, *, timeout: float = 30) -> int | None:
        code = stop_process(self.process, sig=signal.SIGTERM, timeout=timeout)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code


def migrate(name: str, env: dict[str, str]) -> None:
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", f"nps_{name}", "migrate"], env={**os.environ, **env}, check=True
    )


def create_topics(bootstrap_servers: str, *, partitions: int) -> None:
    """Every topic and its DLQ (those that exist are left as they are)."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap_servers)
    asyncio.run(ensure_topics(kafka, ALL_TOPICS, partitions=partitions))


def prepare(env: Mapping[str, str], *, partitions: int) -> None:
    """Create every topic (with its DLQ) and bring every service's schema up to date, through
    each service's own `migrate` command, all at once: each is mostly its interpreter
    starting, and one after another they were a third of `make up`'s time."""
    create_topics(env["KAFKA_BOOTSTRAP_SERVERS"], partitions=partitions)
    running = {
        name: subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", f"nps_{name}", "migrate"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name in SERVICES
    }
    failed = []
    for name, process in running.items():
        output, _ = process.communicate()
        if process.returncode != 0:
            failed.append(f"{name} (exit {process.returncode}):\n{output.decode(errors='replace')}")
    if failed:
        raise RuntimeError("migrations failed: " + "\n".join(failed))


def links(ports: Mapping[str, int]) -> dict[str, str]:
    """What the services must know of each other's addresses on this machine: the console
    calls followup and scoring, and the staff emails notify sends link to the console's case
    page. A variable already set in the environment wins."""
    console = f"http://127.0.0.1:{ports['console']}"
    found = {
        "CONSOLE_PUBLIC_URL": console,
        "CONSOLE_FOLLOWUP_URL": f"http://127.0.0.1:{ports['followup']}",
        "CONSOLE_SCORING_URL": f"http://127.0.0.1:{ports['scoring']}",
        "NOTIFY_CASE_URL": f"{console}/cases/{{case_id}}",
    }
    return {name: value for name, value in found.items() if name not in os.environ}


def start_all(
    env: Mapping[str, str],
    *,
    ports: Mapping[str, int],
    log_dir: Path,
    ready_timeout: float,
    metrics_ports: Mapping[str, int] | None = None,
) -> dict[str, ServiceProcess]:
    """Start the services, each on its port (and its metrics port: free ones unless
    given), and return once every one is ready. If one does not become ready, all are
    stopped again and the error is raised."""
    services = {
        name: ServiceProcess(
            name=name,
            port=ports[name],
            env={**links(ports), **env, f"{name.upper()}_PORT": str(ports[name])},
            log_path=log_dir / f"{name}.log",
            metrics_port=metrics_ports[name] if metrics_ports else free_port(),
        )
        for name in SERVICES
    }
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready(timeout=ready_timeout)
    except BaseException:
        for service in services.values():
            service.stop()
        raise
    return services
