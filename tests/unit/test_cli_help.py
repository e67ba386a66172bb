"""Every command lists every subcommand with one line, and every subcommand has `--help`
(issue #18): a newcomer finds `policy check` and `rebuild-figures` from `--help` alone.

Each command's own `--help` runs as `python -m` would run it, in a process of its own; its
subcommands' help runs in this process through the same `main()` (a process each took 2–4 s
of imports on the CI machine, a minute in all, for the same parser)."""

import contextlib
import importlib
import io
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
#: `nps_kit.dlq` configures the process's logging before it parses: it keeps its processes.
IN_PROCESS = {"nps_ingest", "nps_scoring", "nps_followup", "nps_notify"}


def _help_process(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _help(module: str, *args: str, monkeypatch: pytest.MonkeyPatch) -> str:
    if module not in IN_PROCESS:
        return _help_process(module, *args)
    main = importlib.import_module(f"{module}.__main__").main
    monkeypatch.setattr(sys, "argv", [module, *args, "--help"])
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown), pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code in (0, None), shown.getvalue()
    return shown.getvalue()


@pytest.mark.parametrize("module", COMMANDS)
def test_help_lists_every_subcommand_and_each_has_its_own_help(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = _help_process(module)
    choices = re.search(r"\{([a-z,-]+)\}", listed)
    assert choices is not None, listed
    assert set(choices[1].split(",")) >= COMMANDS[module]
    for sub in choices[1].split(","):
        assert re.search(rf"^\s+{re.escape(sub)}\s+\S", listed, re.M), (sub, listed)  # one line
        assert "usage: " in _help(module, sub, monkeypatch=monkeypatch)


def test_policy_check_has_help_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "FILE" in _help("nps_followup", "policy", "check", monkeypatch=monkeypatch)


def test_policy_simulate_has_help_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = _help("nps_followup", "policy", "simulate", monkeypatch=monkeypatch)
    assert all(option in shown for option in ("--policy", "--from", "--to", "--json"))
