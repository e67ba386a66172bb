"""Every command lists every subcommand with one line, and every subcommand has `--help`
(issue #18): a newcomer finds `policy check` and `rebuild-figures` from `--help` alone."""

import re
import subprocess
import sys

import pytest

#: Each command and the subcommands it must list.
COMMANDS = {
    "nps_ingest": {"serve", "migrate"},
    "nps_scoring": {"serve", "migrate", "erase-customer", "rebuild-figures"},
    "nps_followup": {"serve", "migrate", "erase-customer", "policy"},
    "nps_notify": {"serve", "migrate", "erase-customer"},
    "nps_kit.dlq": {"list", "redrive"},
}


def _help(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("module", COMMANDS)
def test_help_lists_every_subcommand_and_each_has_its_own_help(module: str) -> None:
    listed = _help(module)
    choices = re.search(r"\{([a-z,-]+)\}", listed)
    assert choices is not None, listed
    assert set(choices[1].split(",")) >= COMMANDS[module]
    for sub in choices[1].split(","):
        assert re.search(rf"^\s+{re.escape(sub)}\s+\S", listed, re.M), (sub, listed)  # one line
        assert "usage: " in _help(module, sub)


def test_policy_check_has_help_of_its_own() -> None:
    assert "FILE" in _help("nps_followup", "policy", "check")


def test_policy_simulate_has_help_of_its_own() -> None:
    shown = _help("nps_followup", "policy", "simulate")
    assert all(option in shown for option in ("--policy", "--from", "--to", "--json"))
