"""The command line every service shares: `nps-<service> serve` and `nps-<service> migrate`."""

import argparse
import asyncio
from collections.abc import Callable
from typing import Protocol

from pydantic import SecretStr
from starlette.types import ASGIApp

from nps_kit.logging import configure_logging, get_logger
from nps_kit.migrations import upgrade
from nps_kit.service import Runtime, serve
from nps_kit.settings import LogSettings


class Service(Protocol):
    """What a service's composition root builds."""

    @property
    def app(self) -> ASGIApp: ...

    @property
    def runtime(self) -> Runtime: ...


def main(
    *,
    service: str,
    log: LogSettings,
    host: str,
    port: int,
    build: Callable[[], Service],
    migrations: tuple[str, SecretStr] | None,
) -> None:
    """Parse the command line and run it. `migrations` is (package, database URL), or None for
    a service that keeps no state of its own."""
    parser = argparse.ArgumentParser(prog=f"nps-{service}", description=f"npsloop {service}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the HTTP API and run the consumers until SIGTERM")
    sub.add_parser("migrate", help="bring this service's database schema up to date")
    args = parser.parse_args()
    configure_logging(log, service=service)
    if args.command == "migrate":
        if migrations is None:
            get_logger(__name__).info("migrate.nothing_to_do", reason=f"{service} keeps no state")
        else:
            package, url = migrations
            upgrade(package, url.get_secret_value())
        raise SystemExit(0)

    async def run() -> int:
        built = build()
        return await serve(built.app, built.runtime, host=host, port=port)

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        code = runner.run(run())
    raise SystemExit(code)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (uvicorn[standard] brings it on Linux and macOS): the loop
    uvicorn picks when it owns the loop, as bench/bare.py's ceiling does. Without it, every
    service ran on the stock loop, whose Python transports showed in profiles of ingest."""
    try:
        import uvloop  # noqa: PLC0415 - optional: not on Windows
    except ImportError:
        return None
    return uvloop.new_event_loop
