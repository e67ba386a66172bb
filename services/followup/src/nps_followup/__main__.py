"""`nps-followup serve|migrate|erase-customer`, `nps-followup policy check FILE` (offline: it
reads the files given, nothing else) and `nps-followup policy simulate` (reads followup's
database in a read-only transaction: writes and sends nothing)."""

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from nps_followup.adapters.policy_file import PolicyError, load_policy
from nps_followup.adapters.taxonomy import taxonomy_themes
from nps_followup.bootstrap import (
    build,
    erase_customer,
    policy_in_force,
    simulate,
)
from nps_followup.config import FollowupSettings
from nps_followup.entrypoints.simulation import to_json, to_table
from nps_kit import cli
from nps_kit.yaml_file import YamlFileError


def check_policy(files: list[str]) -> int:
    """`policy check FILE...`: 0 if every file is a valid policy, 1 (with the lines) if not."""
    status = 0
    try:
        themes = taxonomy_themes(FollowupSettings().themes_file)
    except YamlFileError as exc:
        sys.stderr.write("".join(f"{line}\n" for line in exc.lines()))
        return 1
    for name in files:
        try:
            policy = load_policy(Path(name), themes=themes)
        except PolicyError as exc:
            sys.stderr.write("".join(f"{line}\n" for line in exc.lines()))
            status = 1
            continue
        sys.stdout.write(
            f"{name}: ok ({len(policy.rules)} rules, {len(policy.teams)} teams, "
            f"{len(policy.root_causes)} root causes)\n"
        )
    return status


def simulate_policy(args: argparse.Namespace) -> int:
    """`policy simulate --policy FILE --from DAY --to DAY [--as-answered] [--json]`: the report
    on stdout; 1 with the reason on stderr if the policy or the database cannot be read."""
    start: date = args.start
    end: date = args.end
    if end < start:
        sys.stderr.write(f"--to {end} is before --from {start}\n")
        return 2
    try:
        result = asyncio.run(
            simulate(
                FollowupSettings(),
                Path(args.policy),
                start=start,
                end=end,
                as_answered=args.as_answered,
            )
        )
    except YamlFileError as exc:
        sys.stderr.write("".join(f"{line}\n" for line in exc.lines()))
        return 1
    except (OSError, SQLAlchemyError) as exc:
        sys.stderr.write(
            f"cannot read followup's database ({type(exc).__name__}): is DATABASE_URL right, the "
            "server up, and the schema migrated (nps-followup migrate)?\n"
        )
        return 1
    sys.stdout.write(to_json(result) if args.json else to_table(result))
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day: write YYYY-MM-DD") from None


def _run_policy(args: argparse.Namespace) -> int:
    if args.policy_command == "simulate":
        return simulate_policy(args)
    return check_policy(args.files)


def _configure_policy(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="policy_command", required=True)
    check = actions.add_parser(
        "check",
        help="validate follow-up policy files offline",
        description="Validate follow-up policy files offline: each valid one is summarised; an "
        "invalid one is reported with its lines at fault (exit 1).",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="a policy file (YAML)")
    replay = actions.add_parser(
        "simulate",
        help="replay stored responses through a policy: what it would have done, beside the "
        "policy in force (writes and sends nothing)",
        description="Replay the scored responses followup has stored, answered in a period, "
        "through a policy file and through the policy in force (FOLLOWUP_POLICY_FILE), and "
        "report what each would have done and the difference: cases per team and per day, "
        "messages per channel and template, messages held back or moved by each contact rule, "
        "contact deadlines per person. Reads followup's database in a read-only transaction; "
        "writes and sends nothing. See docs/simulation.md.",
    )
    replay.add_argument("--policy", required=True, metavar="FILE", help="the policy to try")
    replay.add_argument(
        "--from",
        dest="start",
        required=True,
        type=_day,
        metavar="DAY",
        help="first day (YYYY-MM-DD, UTC) the responses were answered",
    )
    replay.add_argument(
        "--to",
        dest="end",
        required=True,
        type=_day,
        metavar="DAY",
        help="last day (YYYY-MM-DD, UTC, included)",
    )
    replay.add_argument(
        "--as-answered",
        action="store_true",
        help="replay each response as if it arrived when the customer answered (imported "
        "history included), not when followup received it",
    )
    replay.add_argument("--json", action="store_true", help="the report as JSON")


POLICY = cli.Command(
    name="policy",
    help="work with follow-up policy files (policy check FILE…, policy simulate --policy FILE "
    "--from DAY --to DAY)",
    configure=_configure_policy,
    run=_run_policy,
)


def main() -> None:
    settings = FollowupSettings()
    if sys.argv[1:2] == ["serve"]:
        # Refuse an invalid policy before connecting to anything, with the lines at fault.
        try:
            policy_in_force(settings)
        except YamlFileError as exc:
            sys.stderr.write("".join(f"{line}\n" for line in exc.lines()))
            raise SystemExit(2) from None
    cli.main(
        service="followup",
        log=settings.log,
        http=settings.http,
        host=settings.host,
        port=settings.port,
        build=lambda: build(settings),
        migrations=("nps_followup", settings.database.url),
        erase=lambda customer_id: erase_customer(settings, customer_id),
        commands=[POLICY],
    )


if __name__ == "__main__":
    main()
