"""Postfix's smtp-sink as a real SMTP relay for tests: it advertises PIPELINING, as real relays
do, keeps each message it takes as a file, and refuses or drops chosen commands on request
(`man smtp-sink`: `-Q MAIL` answers MAIL with 421 and hangs up, `-q RCPT` hangs up without an
answer, `-W DATA:2` waits 2 s before answering DATA, `-p` does not advertise PIPELINING).
`make smtp-sink` (tools/smtp-sink.sh) installs it."""

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nps_kit.devstack import free_port, wait_for_port


def installed() -> str | None:
    """smtp-sink's path, if installed (it lives in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("smtp-sink") or shutil.which("smtp-sink", path="/usr/sbin:/usr/local/sbin")


def binary() -> str:
    found = installed()
    if found is None:
        pytest.fail("Postfix's smtp-sink is needed: `make smtp-sink` installs it")
    return found


def command(binary: str, directory: Path, *options: str) -> list[str]:
    """smtp-sink storing each message in `directory` (created), with `options`; as root it
    runs as nobody (it refuses root), and nobody is let into the folder. The address and the
    backlog follow."""
    directory.mkdir(parents=True, exist_ok=True)
    out = [binary, "-d", f"{directory}/%H%M%S.", *options]
    if os.geteuid() == 0:
        directory.chmod(0o777)
        for folder in directory.resolve().parents:  # nobody must reach the folder
            mode = folder.stat().st_mode
            if not mode & 0o001:
                folder.chmod(mode | 0o001)
        out += ["-u", "nobody"]
    return out


@dataclass(frozen=True)
class SmtpSink:
    port: int
    directory: Path

    def messages(self) -> list[bytes]:
        """Each message taken, as stored: smtp-sink's `X-…` envelope lines and its `Received:`
        header above the message, LF line ends, dots unstuffed, an empty line after it; in no
        particular order."""
        return [f.read_bytes() for f in self.directory.iterdir()]


@contextlib.contextmanager
def smtp_sink(directory: Path, *options: str) -> Iterator[SmtpSink]:
    """smtp-sink on a free port of 127.0.0.1 with `options`, storing messages in `directory`;
    returns once it listens."""
    port = free_port()
    started = command(binary(), directory, *options)
    process = subprocess.Popen([*started, f"127.0.0.1:{port}", "16"])
    try:
        wait_for_port(port, timeout=10, what=f"smtp-sink {started}", process=process)
        yield SmtpSink(port=port, directory=directory)
    finally:
        process.terminate()
        process.wait(timeout=10)
