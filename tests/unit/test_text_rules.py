"""The text rules every boundary and every event share (`nps_events.text`)."""

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from nps_events import EmailAddress, Line, StaffRecipient, Text
from nps_events.text import _plain_email, clean_line, clean_text


class Sample(BaseModel):
    line: Line | None = None
    text: Text | None = None
    email: EmailAddress | None = None
    recipient: StaffRecipient | None = None


@pytest.mark.parametrize(
    "value",
    ["a\u0000b", "a\nb", "a\r\nb", "a\tb", "\u001b[1m", "a\u007fb", "a\u0085b", "a\u2028b"],
)
def test_a_line_refuses_line_breaks_and_control_characters(value: str) -> None:
    with pytest.raises(ValidationError, match="single line"):
        Sample(line=value)


def test_a_line_keeps_any_other_character() -> None:
    assert Sample(line="Zoë Łukasiewicz-O'Brien 🙂 <x>").line == "Zoë Łukasiewicz-O'Brien 🙂 <x>"


@pytest.mark.parametrize("value", ["a\u0000b", "\u001b[1m", "a\u0085b", "a\u000bb", "a\u007fb"])
def test_text_refuses_control_characters_other_than_tab_and_line_breaks(value: str) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        Sample(text=value)


def test_text_keeps_tabs_and_line_breaks() -> None:
    value = "one\r\ntwo\nthree\rfour\tfive\u2028six"
    assert Sample(text=value).text == value


@pytest.mark.parametrize(
    "value",
    [
        "x@y.z,bob",
        "ok@team.example, outsider@example.org",
        "Ada <ada@example.com>",
        "ada@example.com\n",
        "ada@",
        '"a,b"@example.com',
        "ada@localhost",
        "a@b.c;d@e.f",
    ],
)
def test_an_email_address_is_exactly_one_address(value: str) -> None:
    with pytest.raises(ValidationError, match="one email address"):
        Sample(email=value)


@pytest.mark.parametrize("value", ["ada@example.com", "Ada.Lovelace+nps@Example.CO.uk", "é@ex.fr"])
def test_an_email_address_is_kept_as_sent(value: str) -> None:
    assert Sample(email=value).email == value


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("lead@example.com", True),
        ("webhook:ops-tools", True),
        ("webhook:", False),
        ("webhook:a b", False),
        ("@sam", False),
        ("ok@team.example, outsider@example.org", False),
    ],
)
def test_a_staff_recipient_is_one_address_or_a_webhook_name(value: str, ok: bool) -> None:
    if ok:
        assert Sample(recipient=value).recipient == value
    else:
        with pytest.raises(ValidationError):
            Sample(recipient=value)


def test_clean_line_makes_any_string_a_line() -> None:
    assert clean_line(" Eve\r\nBcc: x@example.com\u0000\t(admin)\u2028 ") == (
        "Eve Bcc: x@example.com (admin)"
    )


def test_clean_text_drops_controls_and_keeps_lines() -> None:
    assert clean_text("a\u0000b\r\nc\u001b[0m\td\u0085") == "ab\r\nc[0m\td"


@given(st.text())
def test_cleaned_strings_always_pass_their_type(value: str) -> None:
    Sample(line=clean_line(value), text=clean_text(value))


ATEXT = st.sampled_from("abcXYZ019_+-.!#$%&'*/=?^`{|}~@,; \u00e9\u0000")


@settings(max_examples=400)
@given(
    st.one_of(
        st.emails(),
        st.text(ATEXT, min_size=1, max_size=30).map(lambda s: s + "@example.com"),
        st.builds(
            lambda local, labels: f"{local}@{'.'.join(labels)}",
            st.text(ATEXT, min_size=1, max_size=20),
            st.lists(st.from_regex(r"[a-zA-Z0-9-]{1,12}", fullmatch=True), min_size=1, max_size=4),
        ),
    )
)
def test_the_fast_path_accepts_only_what_email_validator_accepts(address: str) -> None:
    if _plain_email(address):
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            pytest.fail(f"{address!r} passes the fast path but email-validator says: {exc}")
