"""Small helpers for child processes and ports."""

import random
import signal
import socket
import subprocess
import time
from pathlib import Path

#: Ports handed out by this process, never handed out twice.
_GIVEN: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections (Linux's default when unreadable)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port nothing listens on, for a server started next, chosen below the kernel's
    ephemeral range. A port from that range (what binding to port 0 gives) can be taken by
    any outgoing connection before the server binds it, or while a server that was stopped
    (a broker SIGKILLed by a failover test) is down: seen once as "Address already in use"
    when a three-node Apache Kafka cluster started."""
    low, _ = _ephemeral_range()
    candidates = list(range(max(1024, low - 12_000), low))
    random.shuffle(candidates)
    for port in candidates:
        if port in _GIVEN:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # all taken: any port
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(
    port: int,
    *,
    timeout: float,
    what: str,
    host: str = "127.0.0.1",
    process: "subprocess.Popen[bytes] | None" = None,
) -> None:
    """Return once `port` accepts connections; raise at `timeout`, or at once if `process`
    (the server that should open it) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, host):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before listening")
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not open {host}:{port} within {timeout:.0f}s")


def stop_process(
    process: "subprocess.Popen[bytes] | None", *, sig: int, timeout: float
) -> int | None:
    """Send `sig`, wait up to `timeout` seconds, then kill. Returns the exit code."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


class ServerProcess:
    """A server the dev stack runs as a child process (the broker, PostgreSQL): what
    supervising it and the chaos suite need besides `start` and `stop`."""

    _process: "subprocess.Popen[bytes] | None" = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (benchmarks account its CPU time)."""
        return self._process.pid if self._process is not None else None

    def alive(self) -> bool:
        """Whether the server process still runs; a dead one is reaped (no zombie)."""
        return self._process is not None and self._process.poll() is None

    def restart(self) -> None:
        """Start again after the server died or was stopped."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open and nothing answers, as a server in a
        long pause or behind a network partition looks to its clients."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)
