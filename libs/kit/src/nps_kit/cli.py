"""The command line every service shares: `nps-<service> serve` and `nps-<service> migrate`,
and `nps-<service> erase-customer ID` for the services that keep customer data."""

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from alembic.util import CommandError
from pydantic import SecretStr
from starlette.types import ASGIApp

from nps_kit.logging import configure_logging, get_logger
from nps_kit.migrations import downgrade, status, upgrade
from nps_kit.service import BackgroundLoops, serve
from nps_kit.settings import HttpServerSettings, LogSettings
from nps_kit.tracing import configure_tracing, shutdown_tracing


def migrate(
    service: str, migrations: tuple[str, SecretStr] | None, args: argparse.Namespace
) -> int:
    """`migrate`: up to the newest revision, `--to` one, `--down-to` an older one, or
    `--status`. An unknown revision, or one on the wrong side, is exit code 2 and one line."""
    if migrations is None:
        get_logger(__name__).info("migrate.nothing_to_do", reason=f"{service} keeps no state")
        return 0
    package, url = migrations
    try:
        if args.status:
            status(package, url.get_secret_value())
        elif args.down_to is not None:
            downgrade(package, url.get_secret_value(), args.down_to)
        else:
            upgrade(package, url.get_secret_value(), args.to or "head")
    except CommandError as exc:
        print(f"nps-{service} migrate: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


@dataclass(frozen=True, slots=True)
class Command:
    """A service's own subcommand (`nps-scoring rebuild-figures`, `nps-followup policy check`),
    listed by `--help` with the shared ones: `configure` adds its arguments to its parser,
    `run` does it and returns the exit code."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class Service(Protocol):
    """What a service's composition root builds."""

    @property
    def app(self) -> ASGIApp: ...

    @property
    def runtime(self) -> BackgroundLoops: ...


def main(
    *,
    service: str,
    log: LogSettings,
    http: HttpServerSettings,
    host: str,
    port: int,
    build: Callable[[], Service],
    migrations: tuple[str, SecretStr] | None,
    erase: "Erase | None" = None,
    commands: Sequence[Command] = (),
    argv: Sequence[str] | None = None,
) -> None:
    """Parse the command line and run it. `migrations` is (package, database URL), or None for
    a service that keeps no state of its own; `erase`, for a service that keeps customer data,
    gives it `erase-customer`."""
    parser = argparse.ArgumentParser(prog=f"nps-{service}", description=f"npsloop {service}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the HTTP API and run the consumers until SIGTERM")
    migrating = sub.add_parser(
        "migrate",
        help="bring this service's database schema up to date",
        description="Bring this service's database schema up to date (its newest revision), "
        "or to a given one, or back to an older one (docs/operations.md).",
    )
    target = migrating.add_mutually_exclusive_group()
    target.add_argument(
        "--to", metavar="REVISION", help="upgrade to this revision instead of the newest"
    )
    target.add_argument(
        "--down-to",
        metavar="REVISION",
        help="take the schema back to this revision (rolling the code back past a release "
        "whose schema the older code cannot run on); `base` drops every table",
    )
    target.add_argument(
        "--status",
        action="store_true",
        help="print the schema's revision and this release's newest, and change nothing",
    )
    if erase is not None:
        erasing = sub.add_parser(
            "erase-customer",
            help="erase one customer's data from this service's tables (GDPR; idempotent)",
        )
        erasing.add_argument("customer_id", help="the customer's id, as upstream sends it")
    own = {command.name: command for command in commands}
    for command in commands:
        command.configure(sub.add_parser(command.name, help=command.help, description=command.help))
    args = parser.parse_args(argv)
    if args.command in own:
        raise SystemExit(own[args.command].run(args))
    configure_logging(log, service=service)
    if args.command == "erase-customer" and erase is not None:
        if not args.customer_id.strip():
            parser.error("the customer id is empty")
        raise SystemExit(erase_customer(service=service, customer_id=args.customer_id, erase=erase))
    if args.command == "migrate":
        raise SystemExit(migrate(service, migrations, args))

    async def run() -> int:
        built = build()
        return await serve(built.app, built.runtime, host=host, port=port, http=http)

    configure_tracing(service)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            code = runner.run(run())
    finally:
        shutdown_tracing()
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


#: Erases one customer's rows from a service's tables; returns how many rows per table.
Erase = Callable[[str], Coroutine[Any, Any, dict[str, int]]]


def erase_customer(*, service: str, customer_id: str, erase: Erase) -> int:
    """`nps-<service> erase-customer CUSTOMER_ID`: delete what this service keeps about one
    customer (GDPR art. 17), in one transaction; idempotent, so a second run erases nothing and
    succeeds. Prints what was erased as one JSON object. See docs/operations.md."""
    erased = asyncio.run(erase(customer_id))
    # The customer id is not logged (it is the key of their personal data); the counts are.
    get_logger(__name__).info("customer.erased", service=service, rows=erased)
    sys.stdout.write(json.dumps({"customer_id": customer_id, "erased": erased}) + "\n")
    return 0
