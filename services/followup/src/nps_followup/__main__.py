"""`nps-followup serve|migrate`, and `nps-followup policy check FILE` (offline, no settings)."""

import sys
from pathlib import Path

from nps_followup.adapters.policy_file import PolicyError, load_policy
from nps_followup.bootstrap import build, erase_customer
from nps_followup.config import FollowupSettings
from nps_kit import cli


def check_policy(argv: list[str]) -> int:
    """`policy check FILE...`: 0 if every file is a valid policy, 1 (with the lines) if not."""
    if len(argv) < 2 or argv[0] != "check":
        sys.stderr.write("usage: nps-followup policy check FILE [FILE...]\n")
        return 2
    status = 0
    for name in argv[1:]:
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


def main() -> None:
    if sys.argv[1:2] == ["policy"]:
        raise SystemExit(check_policy(sys.argv[2:]))
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
    )


if __name__ == "__main__":
    main()
