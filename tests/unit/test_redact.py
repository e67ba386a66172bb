"""Exceptions are logged by class and codes, never by their text: the text quotes customer
data (pydantic's input values, SQL parameters and DETAIL, URLs, refused recipients)."""

import json
import logging

import aiosmtplib
import httpx
import pytest
import structlog
from asyncpg.exceptions import UniqueViolationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError

from nps_kit.logging import RedactingFormatter, redact_exceptions
from nps_kit.redact import safe_error, safe_traceback

EMAIL = "ada.canary@example.com"


class _Customer(BaseModel):
    email: int


def _validation_error() -> ValidationError:
    try:
        _Customer(email=EMAIL)  # type: ignore[arg-type]
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


def _integrity_error() -> IntegrityError:
    orig = UniqueViolationError.new(
        {
            "M": "duplicate key value violates unique constraint",
            "D": f"Key (email)=({EMAIL}) already exists.",
            "C": "23505",
            "n": "customers_email_key",
            "t": "customers",
        }
    )
    return IntegrityError("INSERT INTO customers (email) VALUES ($1)", (EMAIL,), orig)


def _refused() -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(550, f"<{EMAIL}>: Recipient address rejected", EMAIL)]
    )


def _status_error() -> httpx.HTTPStatusError:
    request = httpx.Request("GET", f"https://crm.example.com/v1/people?email={EMAIL}")
    return httpx.HTTPStatusError(
        EMAIL, request=request, response=httpx.Response(503, request=request)
    )


@pytest.mark.parametrize(
    ("exc", "rendered"),
    [
        (_validation_error(), "ValidationError(_Customer: email: int_parsing)"),
        (
            _integrity_error(),
            "IntegrityError(sqlstate=23505 UniqueViolationError table=customers "
            "constraint=customers_email_key)",
        ),
        (_status_error(), "HTTPStatusError(503 from GET https://crm.example.com)"),
        (_refused(), "SMTPRecipientsRefused"),
        (ConnectionRefusedError(111, "Connection refused"), "ConnectionRefusedError(ECONNREFUSED)"),
        (TimeoutError(), "TimeoutError"),
    ],
)
def test_an_exception_is_rendered_by_its_codes_not_its_text(
    exc: BaseException, rendered: str
) -> None:
    assert EMAIL in str(exc) or EMAIL in repr(exc) or isinstance(exc, OSError | TimeoutError)
    assert safe_error(exc) == rendered


def _no_case() -> None:
    raise RuntimeError(f"no case for {EMAIL}")


def test_an_unknown_exception_says_where_it_was_raised_not_what_it_said() -> None:
    with pytest.raises(RuntimeError) as raised:
        _no_case()
    assert safe_error(raised.value) == "RuntimeError(at test_redact.py:82 in _no_case)"
    assert EMAIL not in safe_traceback(raised.value)


def test_a_chained_traceback_keeps_its_frames_and_drops_every_message() -> None:
    try:
        try:
            raise _integrity_error()
        except IntegrityError as inner:
            raise ValueError(EMAIL) from inner
    except ValueError as exc:
        text = safe_traceback(exc)
    assert "direct cause" in text
    assert "sqlstate=23505" in text
    assert "test_redact.py" in text
    assert EMAIL not in text


def test_structlog_fields_quoting_the_handled_exception_are_redacted() -> None:
    try:
        raise _integrity_error()
    except IntegrityError as exc:
        event = redact_exceptions(
            None,
            "warning",
            {"event": "x", "error": repr(exc), "reason": f"gave up: {exc}", "exc_info": True},
        )
    rendered = structlog.processors.JSONRenderer()(None, "warning", dict(event))
    assert EMAIL not in str(rendered)
    assert json.loads(str(rendered))["reason"].startswith("gave up: IntegrityError(sqlstate=")


def test_the_standard_library_logs_no_exception_text() -> None:
    formatter = RedactingFormatter("%(levelname)s %(message)s")
    exc = _validation_error()
    record = logging.LogRecord(
        "lib", logging.ERROR, __file__, 1, "failed: %s", (exc,), (type(exc), exc, None)
    )
    assert EMAIL not in formatter.format(record)
