"""How the kit tells infrastructure, data and unexpected faults apart (`nps_kit.faults`),
over the exceptions the drivers really raise, wrapped the way SQLAlchemy and our publisher
wrap them."""

import asyncpg.exceptions as pg
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, NodeNotReadyError
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError

from nps_events import EnvelopeError
from nps_kit.faults import DataFault, Fault, classify
from nps_kit.messaging import PublishError


class _DriverError(Exception):
    """What SQLAlchemy's asyncpg adapter raises: the driver's error as its cause, with the
    SQLSTATE copied over."""

    def __init__(self, orig: BaseException) -> None:
        super().__init__(str(orig))
        self.sqlstate = getattr(orig, "sqlstate", None)


def _wrapped(orig: BaseException) -> DBAPIError:
    """`orig` as it reaches our code from SQLAlchemy: DBAPIError(orig=adapter error) raised
    from the adapter error, raised from the driver's."""
    adapted = _DriverError(orig)
    adapted.__cause__ = orig  # raise … from
    wrapped = DBAPIError.instance(
        "INSERT INTO scoring.responses VALUES ($1)", ("secret@example.com",), adapted, Exception
    )
    wrapped.__cause__ = adapted
    return wrapped


class _Shape(BaseModel):
    score: int


def _validation_error() -> ValidationError:
    try:
        _Shape.model_validate({"score": "ten, said eve@example.com"})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


def _publish_error(cause: BaseException) -> PublishError:
    error = PublishError(f"broker did not acknowledge: {cause!r}")
    error.__cause__ = cause  # raise … from, as Publisher.send_many does
    return error


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        # The database is away, restarting, or shutting down.
        (ConnectionRefusedError(111, "Connect call failed"), Fault.INFRASTRUCTURE),
        (_wrapped(ConnectionResetError(104, "reset by peer")), Fault.INFRASTRUCTURE),
        (_wrapped(pg.CannotConnectNowError("not yet accepting")), Fault.INFRASTRUCTURE),
        (_wrapped(pg.AdminShutdownError("terminating connection")), Fault.INFRASTRUCTURE),
        (_wrapped(pg.ConnectionDoesNotExistError("closed mid-operation")), Fault.INFRASTRUCTURE),
        (_wrapped(pg.InterfaceError("another operation is in progress")), Fault.INFRASTRUCTURE),
        (_wrapped(pg.SerializationError("could not serialize")), Fault.INFRASTRUCTURE),
        (_wrapped(pg.DeadlockDetectedError("deadlock")), Fault.INFRASTRUCTURE),
        (_wrapped(pg.ReadOnlySQLTransactionError("read-only")), Fault.INFRASTRUCTURE),
        (_wrapped(pg.UndefinedTableError("no such table")), Fault.INFRASTRUCTURE),
        (_wrapped(pg.QueryCanceledError("statement timeout")), Fault.INFRASTRUCTURE),
        (TimeoutError(), Fault.INFRASTRUCTURE),
        # The broker is away.
        (KafkaConnectionError(), Fault.INFRASTRUCTURE),
        (_publish_error(NodeNotReadyError()), Fault.INFRASTRUCTURE),
        (PublishError("the broker has not been reached yet"), Fault.INFRASTRUCTURE),
        # The data can never be stored or sent as it is.
        (_wrapped(pg.CharacterNotInRepertoireError("0x00")), Fault.DATA),
        (_wrapped(pg.UniqueViolationError("duplicate key")), Fault.DATA),
        (_wrapped(pg.NumericValueOutOfRangeError("out of range")), Fault.DATA),
        (_wrapped(pg.DataError("invalid input for query argument $1")), Fault.DATA),
        (_publish_error(MessageSizeTooLargeError()), Fault.DATA),
        (_validation_error(), Fault.DATA),
        (EnvelopeError("missing CloudEvents header(s)"), Fault.UNEXPECTED),
        (DataFault("no owner for team 'x'"), Fault.DATA),
        (UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"), Fault.DATA),
        # Our own bugs.
        (KeyError("missing"), Fault.UNEXPECTED),
        (AttributeError("'NoneType' object has no attribute 'id'"), Fault.UNEXPECTED),
        (_wrapped(pg.InternalClientError("confused")), Fault.UNEXPECTED),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_each_fault_is_told_apart(exc: BaseException, fault: Fault) -> None:
    assert classify(exc) is fault


def test_an_exception_handled_earlier_is_no_evidence() -> None:
    """A bug raised while handling a connection error is a bug, not an outage."""

    def reset() -> None:
        raise ConnectionResetError

    def buggy_handling() -> None:
        try:
            reset()
        except ConnectionResetError:
            raise KeyError("bug") from None

    with pytest.raises(KeyError) as raised:
        buggy_handling()
    assert raised.value.__context__ is not None
    assert classify(raised.value) is Fault.UNEXPECTED
