"""Structured logging: events with fields, JSON in containers, ids bound per message.

No customer data in logs: exceptions are logged as `nps_kit.redact` renders them (class and
a message of codes and names, never the text, which quotes values). Log a failure with
`error=safe_error(exc)`; as a safety net, every log line — ours through structlog and the
libraries' through the standard library — renders `exc_info` that way, renders an exception
passed as a field that way, and replaces a field that quotes the exception being handled
(`error=repr(exc)`, `reason=f"…{exc}"`) by its safe rendering.
"""

import logging
import sys
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any

import structlog
from opentelemetry import trace

from nps_kit.redact import safe_error, safe_traceback
from nps_kit.settings import LogSettings

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _trace_ids(
    _logger: object, _method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """The current trace and span ids, when a span is recording (tracing on)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def _exception_of(exc_info: object) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1] if isinstance(exc_info[1], BaseException) else None
    if exc_info:
        return sys.exc_info()[1]
    return None


def _texts_of(exc: BaseException) -> list[str]:
    """What `str`, `repr` or an f-string would have put of `exc` (and of what it chains)
    into a log field, longest first: long enough not to match by accident."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for text in (str(current), repr(current)):
            if len(text) >= 8 and text not in texts:
                texts.append(text)
        current = current.__cause__ or current.__context__
    return sorted(texts, key=len, reverse=True)


def _without(value: str, texts: list[str], exc: BaseException) -> str:
    for text in texts:
        if text in value:
            value = value.replace(text, safe_error(exc))
    return value


def redact_exceptions(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The safety net (a structlog processor, before rendering): no exception's own text
    reaches a log line. See the module's docstring."""
    exc = _exception_of(event.pop("exc_info", None))
    if exc is not None:
        event["exception"] = safe_traceback(exc)
    handled = exc or sys.exc_info()[1]
    texts = _texts_of(handled) if handled is not None else []
    for key, value in event.items():
        if key == "exception":
            continue
        if isinstance(value, BaseException):
            event[key] = safe_error(value)
        elif texts and handled is not None and isinstance(value, str):
            event[key] = _without(value, texts, handled)
    return event


class RedactingFormatter(logging.Formatter):
    """The standard library's formatter (uvicorn, aiokafka, asyncio, SQLAlchemy log through
    it) with the same safety net: tracebacks and messages never quote an exception."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - the stdlib's name
        exc = _exception_of(ei)
        return safe_traceback(exc) if exc is not None else ""

    def format(self, record: logging.LogRecord) -> str:
        # An exception passed as an argument of the message (`log.error("…: %s", exc)`).
        if isinstance(record.args, tuple) and any(
            isinstance(arg, BaseException) for arg in record.args
        ):
            record.args = tuple(
                safe_error(arg) if isinstance(arg, BaseException) else arg for arg in record.args
            )
        return super().format(record)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802
        exc = _exception_of(record.exc_info) if record.exc_info else sys.exc_info()[1]
        if exc is not None:
            record.message = _without(record.message, _texts_of(exc), exc)
        return super().formatMessage(record)


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """The last resort: an exception that ends the process is logged safely too."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    get_logger(__name__).critical("process.uncaught_exception", exc_info=(kind, exc, tb))


def configure_logging(settings: LogSettings, *, service: str) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            redact_exceptions,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(settings.level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries (uvicorn, aiokafka, alembic) log through the standard library.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(
        level=max(logging.getLevelName(settings.level), logging.INFO),
        handlers=[handler],
        force=True,
    )
    sys.excepthook = _log_uncaught
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
