"""The console's key for the tokens it keeps: it will not start without one, a key that is
not a Fernet key is named in the error, and a new key put first still opens what the old one
sealed (rotation), while a key taken out opens nothing. And its OpenID Connect client runs
on the HTTP client Authlib supports."""

import sys

import pytest
from cryptography.fernet import Fernet, InvalidToken
from pydantic import ValidationError

from nps_console import __main__ as console_command
from nps_console.adapters.sessions import TokenCipher
from nps_console.bootstrap import MissingSessionKey, build
from nps_console.config import ConsoleSettings


def test_the_console_does_not_start_without_a_session_key() -> None:
    with pytest.raises(MissingSessionKey, match="CONSOLE_SESSION_KEYS is not set"):
        build(ConsoleSettings(session_keys=""))


def test_its_command_says_what_is_missing_and_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSOLE_SESSION_KEYS", "")
    monkeypatch.setattr(sys, "argv", ["nps-console", "serve"])
    with pytest.raises(SystemExit) as exited:
        console_command.main()
    assert isinstance(exited.value.code, str), "a message, not a traceback"
    assert "CONSOLE_SESSION_KEYS is not set" in exited.value.code
    assert "Fernet.generate_key()" in exited.value.code
    # Its help needs no key.
    monkeypatch.setattr(sys, "argv", ["nps-console", "--help"])
    with pytest.raises(SystemExit) as helped:
        console_command.main()
    assert helped.value.code == 0


def test_a_key_that_is_not_a_fernet_key_is_named() -> None:
    good = Fernet.generate_key().decode()
    with pytest.raises(ValidationError, match="key 2 of CONSOLE_SESSION_KEYS is not a Fernet"):
        ConsoleSettings(session_keys=f"{good}, not-a-key")


def test_a_new_key_first_opens_what_the_old_one_sealed_until_the_old_one_is_removed() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = TokenCipher([old]).seal("an access token")
    assert sealed is not None
    assert "an access token" not in sealed
    rotated = TokenCipher(ConsoleSettings(session_keys=f"{new},{old}").session_key_list)
    assert rotated.open(sealed) == "an access token"
    resealed = rotated.seal("an access token")
    assert TokenCipher([new]).open(resealed) == "an access token", "sealed with the first key"
    with pytest.raises(InvalidToken):
        TokenCipher([new]).open(sealed)


def test_authlib_runs_on_httpx2_not_on_its_deprecated_httpx_fallback() -> None:
    # Authlib (1.8+) picks httpx2 when it can import it, else falls back to httpx with an
    # AuthlibDeprecationWarning that it forces to "always" show (so a warnings filter cannot
    # guard this): the module it picked is the one to look at.
    from authlib.integrations.httpx_client import _compat  # noqa: PLC0415

    assert _compat.httpx2.__name__ == "httpx2"
