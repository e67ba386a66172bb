"""The benches' local SMTP sink and fake providers, each in a process of its own.

Two sinks, both real SMTP servers that keep every message as a file in one folder:

- `smtp-sink`: Postfix's own test server (C; Debian's `postfix` package installs it as
  /usr/sbin/smtp-sink: `apt-get install --no-install-recommends postfix`, the mail system
  itself need not run; `make smtp-sink` installs it). Measured at 0.09–0.70 ms of CPU per
  stored message on this machine, depending on the disk's load (0.03–0.06 ms when it stores
  nothing), so the sink takes less of the CPU the pipeline under test needs. It offers
  PIPELINING, as real relays do. Used when installed.
- `aiosmtpd`: the dev stack's `MailSink` (nps_kit.devstack), ~0.6–0.8 ms of CPU per message
  (measured in bench/notify.py, 2026-12-05): a bench on two cores then spends as much CPU in
  the sink as in notify's sender. The fallback.

A sink in a thread of the bench's own process (`MailSink.start()`, the benches'
`--sink in-process`) shares the bench's GIL with its client and watcher: each SMTP answer
waits for the bench, and the sink's CPU counts as the bench's.

The fake providers (`tests.support`: Twilio, Zendesk) check each request against the vendor's
documented format, as in the tests; `start_fake_provider` serves one with uvicorn in a process
of its own, so that its CPU is measured apart from the bench's and from notify's.
"""

import subprocess
import sys
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support's smtp-sink

from nps_kit.devstack import free_port
from nps_kit.devstack.process import wait_for_port
from tests.support import smtp_sink

Sink = Literal["smtp-sink", "aiosmtpd", "in-process"]

#: `MailSink` (nps_kit.devstack) until terminated.
_AIOSMTPD = """
import sys, threading
from pathlib import Path
from nps_kit.devstack import MailSink
MailSink(directory=Path(sys.argv[1]), port=int(sys.argv[2])).start()
threading.Event().wait()
"""

#: A fake provider from tests.support (uvicorn), until terminated.
_FAKE = """
import importlib, sys, uvicorn
sys.path.insert(0, sys.argv[2])
fake = getattr(importlib.import_module("tests.support." + sys.argv[3]), sys.argv[4])()
uvicorn.run(
    fake.app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off",
)
"""


def default_sink() -> Sink:
    return "smtp-sink" if smtp_sink.installed() is not None else "aiosmtpd"


def start_mail_sink(
    directory: Path, port: int, kind: Literal["smtp-sink", "aiosmtpd"]
) -> subprocess.Popen[bytes]:
    """Start a sink storing each message as a file in `directory`; returns once it listens.
    Message files: `*.eml` (aiosmtpd) or `<time>.<hex>` (smtp-sink, with its `X-…` envelope
    lines above the message); either way, a file's mtime is when its message arrived."""
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "smtp-sink":
        binary = smtp_sink.installed()
        if binary is None:
            raise RuntimeError("smtp-sink is not installed: make smtp-sink")
        command = smtp_sink.command(binary, directory, "-m", "1024")
        process = subprocess.Popen([*command, f"127.0.0.1:{port}", "256"])
    else:
        process = subprocess.Popen([sys.executable, "-c", _AIOSMTPD, str(directory), str(port)])
    try:
        wait_for_port(port, timeout=30, what=f"the SMTP sink ({kind})", process=process)
    except (RuntimeError, TimeoutError):
        process.kill()
        raise
    return process


def start_fake_provider(module: str, name: str) -> tuple[subprocess.Popen[bytes], str]:
    """A provider's fake from `tests.support.<module>` (`name`, built with its defaults) in a
    process of its own; returns once it listens: the process and its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _FAKE,
            str(port),
            str(Path(__file__).resolve().parents[1]),
            module,
            name,
        ]
    )
    try:
        wait_for_port(port, timeout=30, what=f"the {name}", process=process)
    except (RuntimeError, TimeoutError):
        process.kill()
        raise
    return process, f"http://127.0.0.1:{port}"
