"""A local SMTP sink that writes every message it receives as an `.eml` file."""

import itertools
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the `dev` extra: not in the container image (see broker.py)
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, Envelope, Session


class _WriteEml:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._counter = itertools.count()
        self._lock = threading.Lock()

    async def handle_DATA(self, server: "SMTP", session: "Session", envelope: "Envelope") -> str:  # noqa: N802
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        if content is None:
            return "554 Transaction failed: no message data"
        with self._lock:
            name = f"{time.time_ns()}-{next(self._counter):06d}.eml"
        path = self.directory / name
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(content)
        tmp.rename(path)
        return "250 OK: message stored"


class MailSink:
    def __init__(self, *, directory: Path, port: int, host: str = "127.0.0.1") -> None:
        self.directory = directory
        self.port = port
        self.host = host
        self._controller: Controller | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        from aiosmtpd.controller import Controller  # noqa: PLC0415

        self._controller = Controller(_WriteEml(self.directory), hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[EmailMessage]:
        """Every stored message, oldest first."""
        out: list[EmailMessage] = []
        for path in sorted(self.directory.glob("*.eml")):
            message: Any = message_from_bytes(path.read_bytes(), policy=policy.default)
            out.append(message)
        return out
