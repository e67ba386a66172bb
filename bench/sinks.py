"""The benches' local SMTP sink in a process of its own.

A sink in a thread of the bench's process shares the bench's GIL with its client and watcher:
each SMTP answer then waits for the bench, the sender under test looks slower than it is, and
the sink's CPU counts as the bench's. In its own process the sink answers as a real relay
would, and its CPU is accounted on its own line.
"""

import socket
import subprocess
import sys
import time
from pathlib import Path

#: `MailSink` (nps_kit.devstack) until terminated.
_SINK = """
import sys, threading
from pathlib import Path
from nps_kit.devstack import MailSink
MailSink(directory=Path(sys.argv[1]), port=int(sys.argv[2])).start()
threading.Event().wait()
"""


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Return once something listens on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


def start_mail_sink(directory: Path, port: int) -> subprocess.Popen[bytes]:
    """Start the SMTP sink writing `.eml` files to `directory`; returns once it listens."""
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-c", _SINK, str(directory), str(port)])
    try:
        wait_for_port(port)
    except RuntimeError:
        process.kill()
        raise
    return process


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
