"""Telling faults apart: is it the infrastructure, the data, or our own code?

Every loop that consumes, stores or sends asks `classify(exc)` and acts on the answer:

- **infrastructure**: the database or the broker is unreachable, a connection was lost, the
  server is starting or shutting down, a failover, a timeout, a serialization conflict, a
  schema or grant the deployment has not put in place yet. Nothing is wrong with the work:
  wait and try the same work again, without limit (capped backoff), and say why meanwhile.
- **data**: the work can never succeed as it is: a value PostgreSQL refuses (a NUL byte, an
  invalid encoding, a constraint), a record that does not decode or validate, a value our
  rules reject (`DataFault`). Set that one item aside with the reason (the DLQ) and go on.
- **unexpected**: anything else, i.e. a bug of ours. Try again a few times (it may be a race
  that passes), then treat it as data, with the exception's class in the reason: loudly
  logged and counted, but never a crash loop that blocks a partition for ever.

PostgreSQL's errors are told apart by their SQLSTATE class (the first two characters), which
is stable across versions and drivers: https://www.postgresql.org/docs/current/errcodes-appendix.html
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from enum import StrEnum
from typing import TypeVar

from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError
from asyncpg.exceptions import DataError as DriverDataError
from asyncpg.exceptions import InterfaceError as DriverInterfaceError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from nps_kit.logging import get_logger
from nps_kit.redact import safe_error

log = get_logger(__name__)
T = TypeVar("T")


class Fault(StrEnum):
    INFRASTRUCTURE = "infrastructure"
    DATA = "data"
    UNEXPECTED = "unexpected"


class DataFault(Exception):  # noqa: N818 - named for what it is
    """Raised by our code for a value that can never be processed as it is: the item goes to
    the dead-letter topic with this message as the reason."""


class InfrastructureFault(Exception):  # noqa: N818 - named for what it is
    """Raised by our code when something it depends on is not there (a broker that did not
    acknowledge, a server that is not ready): wait and try again."""


#: SQLSTATE classes that say the server, the connection or the deployment is the problem:
#: 08 connection exception, 40 transaction rollback (serialization failure, deadlock),
#: 42 syntax error or access rule (a migration or grant not in place: an operator fixes it,
#: and the same work then succeeds), 53 insufficient resources, 55 object not in
#: prerequisite state (lock not available), 57 operator intervention (admin or crash
#: shutdown, cannot connect now, statement timeout), 58 system error, 25 transaction state
#: (a read-only server after a failover, an idle-in-transaction timeout), F0 configuration,
#: XX internal error (data corruption: an operator's matter, not the record's).
INFRASTRUCTURE_SQLSTATE_CLASSES = frozenset(
    {"08", "25", "40", "42", "53", "55", "57", "58", "F0", "XX"}
)
#: SQLSTATE classes that say the data is the problem: 22 data exception (invalid byte
#: sequence, NUL, value out of range), 23 integrity constraint violation.
DATA_SQLSTATE_CLASSES = frozenset({"22", "23"})

_DATA_ERRORS = (
    DataFault,
    ValidationError,
    UnicodeError,
    # asyncpg's DataError (a parameter its type cannot encode) is also an InterfaceError.
    DriverDataError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
)
_INFRASTRUCTURE_ERRORS = (
    InfrastructureFault,
    KafkaError,
    # refused, reset and timed-out connections, DNS failures
    OSError,
    TimeoutError,
    PoolTimeoutError,
    # closed in the middle of an operation; another operation in progress on a connection
    # a cancelled task left behind
    DriverInterfaceError,
    InterfaceError,
    OperationalError,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it says it wraps: SQLAlchemy's `orig`, `raise … from` causes. (Not
    `__context__`: an exception handled earlier in an `except` block is no evidence.)"""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending.extend(e for e in (orig, current.__cause__) if isinstance(e, BaseException))


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE PostgreSQL answered with, anywhere in `exc`'s chain, if any."""
    for link in _chain(exc):
        code = getattr(link, "sqlstate", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def classify(exc: BaseException) -> Fault:  # noqa: PLR0911 - one line per kind of evidence
    """Which kind of fault `exc` is (see the module's docstring)."""
    code = sqlstate(exc)
    if code is not None:
        if code[:2] in DATA_SQLSTATE_CLASSES:
            return Fault.DATA
        if code[:2] in INFRASTRUCTURE_SQLSTATE_CLASSES:
            return Fault.INFRASTRUCTURE
        return Fault.UNEXPECTED
    chain = list(_chain(exc))
    # Evidence of bad data anywhere in the chain wins: a publish error wrapping "message too
    # large", SQLAlchemy's error wrapping asyncpg's DataError.
    if any(isinstance(link, _DATA_ERRORS) for link in chain):
        return Fault.DATA
    for link in chain:
        if isinstance(link, _INFRASTRUCTURE_ERRORS):
            return Fault.INFRASTRUCTURE
        if isinstance(link, DBAPIError) and link.connection_invalidated:
            return Fault.INFRASTRUCTURE
    return Fault.UNEXPECTED


async def through_outages(
    work: Callable[[], Awaitable[T]], *, what: str, max_wait: float = 10.0
) -> T:
    """`work()`, tried again for as long as it fails on an infrastructure fault (capped
    exponential backoff); any other fault is raised at once. For work whose only record is in
    memory, such as the outcome of a message already handed to a provider: losing it to a
    database restart would turn a delivered message into an `unknown` one."""
    failures = 0
    while True:
        try:
            return await work()
        except Exception as exc:
            if classify(exc) is not Fault.INFRASTRUCTURE:
                raise
            failures += 1
            wait = min(max_wait, 0.1 * 2**failures)
            log.warning(f"{what}.waiting", error=safe_error(exc), failures=failures, retry_in=wait)
            await asyncio.sleep(wait)
