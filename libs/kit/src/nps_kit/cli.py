"""The command line every service shares: `serve` and `migrate`."""

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


def main(
    *,
    service: str,
    serve: Callable[[], Coroutine[Any, Any, int]],
    migrate: Callable[[], None],
) -> None:
    parser = argparse.ArgumentParser(prog=f"nps-{service}", description=f"npsloop {service}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the HTTP API and run the consumers until SIGTERM")
    sub.add_parser("migrate", help="bring this service's database schema up to date")
    args = parser.parse_args()
    if args.command == "migrate":
        migrate()
        raise SystemExit(0)
    raise SystemExit(asyncio.run(serve()))
