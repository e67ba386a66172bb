"""Exceptions rendered for logs without the data they were raised about.

An exception's own text often quotes its input: pydantic's `ValidationError` shows each
`input_value`, SQLAlchemy's errors the statement's parameters, asyncpg's the server's
`DETAIL` ("Key (email)=(…) already exists", "Failing row contains (…)"), httpx's the URL
(and so its query), aiosmtplib's the refused recipients. Any of those can be a customer's
email, name, phone or comment. `safe_error` keeps what an operator acts on — the class, and
for the libraries we know a message built only from codes and names (SQLSTATE and
constraint, field locations and error types, HTTP status and host, errno) — and drops the
text. `safe_traceback` is a traceback with every exception line so rendered.
"""

import errno
import traceback
from types import TracebackType

import httpx
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, StatementError

#: Exception modules whose messages are about the connection, never about our data.
_TRANSPORT_MODULES = ("aiokafka",)
_MAX_FIELDS = 10
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def safe_error(exc: BaseException) -> str:
    """`Class(detail)`: a PII-free rendering of `exc` for a log field (`error=safe_error(exc)`).

    The detail never quotes values: SQLSTATE and constraint for database errors, field
    locations and error types for validation errors, status, method and host for HTTP
    errors, the errno for OS errors; for anything else, where it was raised."""
    name = type(exc).__name__
    detail = _detail(exc)
    cause = exc.__cause__
    if cause is not None and not isinstance(exc, DBAPIError):
        detail = f"{detail}; " if detail else ""
        detail += f"caused by {safe_error(cause)}"
    return f"{name}({detail})" if detail else name


def safe_traceback(exc: BaseException) -> str:
    """The traceback of `exc` and of the exceptions it chains, as Python prints it, each
    exception's line being `safe_error`'s instead of its own text."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    parts: list[str] = []
    for item, following in reversed(chain):
        parts.append(_frames(item.__traceback__))
        parts.append(f"{type(item).__module__}.{_only_line(item)}\n")
        if following:
            parts.append(following)
    return "".join(parts).rstrip("\n")


def _only_line(exc: BaseException) -> str:
    name = type(exc).__qualname__
    detail = _detail(exc)
    return f"{name}({detail})" if detail else name


def _frames(tb: TracebackType | None) -> str:
    if tb is None:
        return ""
    return "Traceback (most recent call last):\n" + "".join(traceback.format_tb(tb))


def _detail(exc: BaseException) -> str:  # noqa: PLR0911 - one answer per kind of error
    if isinstance(exc, DBAPIError):
        return _database(exc.orig)
    if isinstance(exc, StatementError):
        # A bound parameter the driver refused (its text quotes the value).
        return _where(exc) if exc.orig is None else f"{type(exc.orig).__name__}"
    if _has_sqlstate(exc):
        return _database(exc)
    if isinstance(exc, ValidationError):
        return _fields(exc)
    if isinstance(exc, httpx.HTTPStatusError):
        return f"{exc.response.status_code} from {_request(exc.request)}"
    if isinstance(exc, httpx.RequestError):
        try:
            return _request(exc.request)
        except RuntimeError:  # raised before a request existed
            return ""
    if isinstance(exc, BaseExceptionGroup):
        return ", ".join(safe_error(sub) for sub in exc.exceptions)
    if isinstance(exc, OSError) and exc.errno is not None:
        # Never `filename`: a path can name anything.
        return errno.errorcode.get(exc.errno, str(exc.errno))
    code = getattr(exc, "code", None)
    if isinstance(code, int) and type(exc).__module__.startswith("aiosmtplib"):
        return f"SMTP {code}"  # the server's text echoes the recipients
    if type(exc).__module__.startswith(_TRANSPORT_MODULES):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return ""
    return _where(exc)


def _has_sqlstate(exc: BaseException | None) -> bool:
    return isinstance(getattr(exc, "sqlstate", None), str)


def _database(orig: BaseException | None) -> str:
    """SQLSTATE, the driver's error class and the schema objects involved: never its text,
    whose DETAIL line quotes the row."""
    if orig is None:
        return ""
    found = orig if _has_sqlstate(orig) else orig.__cause__
    source = found if _has_sqlstate(found) else orig
    parts = []
    sqlstate = getattr(source, "sqlstate", None)
    if isinstance(sqlstate, str):
        parts.append(f"sqlstate={sqlstate}")
    parts.append(type(source).__name__)
    for attribute in ("table_name", "column_name", "constraint_name"):
        value = getattr(source, attribute, None)
        if isinstance(value, str) and value:
            parts.append(f"{attribute.removesuffix('_name')}={value}")
    if not _has_sqlstate(source) and isinstance(source, OSError) and source.errno is not None:
        parts.append(errno.errorcode.get(source.errno, str(source.errno)))
    return " ".join(parts)


def _fields(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    shown = [
        f"{'.'.join(str(p) for p in error['loc']) or '(root)'}: {error['type']}"
        for error in errors[:_MAX_FIELDS]
    ]
    more = len(errors) - len(shown)
    return f"{exc.title}: " + "; ".join(shown) + (f"; {more} more" if more > 0 else "")


def _request(request: httpx.Request) -> str:
    # The host only: a path or a query can carry an email or a phone number.
    return f"{request.method} {request.url.scheme}://{request.url.host}"


def _where(exc: BaseException) -> str:
    """Where it was raised (module:line), the innermost frame of its traceback."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if not frames:
        return ""
    last = frames[-1]
    return f"at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name}"
