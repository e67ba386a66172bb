"""`nps-followup serve|migrate|erase-customer`, and `nps-followup policy check FILE` (offline:
it reads the files given, nothing else)."""

import argparse
import sys
from pathlib import Path

from nps_followup.adapters.policy_file import PolicyError, load_policy
from nps_followup.bootstrap import build, erase_customer
from nps_followup.config import FollowupSettings
from nps_kit import cli


def check_policy(files: list[str]) -> int:
    """`policy check FILE...`: 0 if every file is a valid policy, 1 (with the lines) if not."""
    status = 0
    for name in files:
        try:
            policy = load_policy(Path(name))
        except PolicyError as exc:
            sys.stderr.write("".join(f"{line}\n" for line in exc.lines()))
            status = 1
            continue
        sys.stdout.write(
            f"{name}: ok ({len(policy.rules)} rules, {len(policy.teams)} teams, "
            f"{len(policy.root_causes)} root causes)\n"
        )
    return status


def _configure_policy(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="policy_command", required=True)
    check = actions.add_parser(
        "check",
        help="validate follow-up policy files offline",
        description="Validate follow-up policy files offline: each valid one is summarised; an "
        "invalid one is reported with its lines at fault (exit 1).",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="a policy file (YAML)")


POLICY = cli.Command(
    name="policy",
    help="work with follow-up policy files (policy check FILE…)",
    configure=_configure_policy,
    run=lambda args: check_policy(args.files),
)


def main() -> None:
    settings = FollowupSettings()
    if sys.argv[1:2] == ["serve"]:
        # Refuse an invalid policy before connecting to anything, with the lines at fault.
        try:
            load_policy(settings.policy_file)
        except PolicyError as exc:
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
