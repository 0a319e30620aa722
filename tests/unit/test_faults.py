"""Which failures are transient (retry, 503) and which would recur (halt, 500)."""

from __future__ import annotations

import threading

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError
from psycopg import errors
from psycopg_pool import PoolTimeout

from infra.faults import Backoff, is_transient, session_lost, supervise
from infra.projection_runner import ProjectionHalted


def raised_from(outer: type[Exception], inner: BaseException) -> Exception:
    """``outer`` as the event store raises it: ``raise outer(...) from inner``."""
    try:
        raise outer(str(inner)) from inner
    except Exception as error:
        return error


TRANSIENT = [
    errors.AdminShutdown("terminating connection due to administrator command"),  # 57P01
    errors.CrashShutdown("crash"),  # 57P02
    errors.CannotConnectNow("the database system is starting up"),  # 57P03
    errors.SerializationFailure("could not serialize access"),  # 40001
    errors.DeadlockDetected("deadlock detected"),  # 40P01
    errors.LockNotAvailable("lock timeout"),  # 55P03
    errors.QueryCanceled("canceling statement due to statement timeout"),  # 57014
    errors.ConnectionFailure("connection failure"),  # 08006
    errors.IdleInTransactionSessionTimeout("idle in transaction"),  # 25P03
    errors.TooManyConnections("too many clients"),  # 53300
    psycopg.OperationalError("server closed the connection unexpectedly"),  # no SQLSTATE
    psycopg.InterfaceError("the connection is closed"),
    PoolTimeout("couldn't get a connection after 3.00 sec"),
]
PERMANENT = [
    errors.UniqueViolation("duplicate key"),  # 23505: the same event would violate it again
    errors.NumericValueOutOfRange("out of range"),  # 22003
    errors.UndefinedTable("relation does not exist"),  # 42P01
    errors.DiskFull("no space left"),  # 53100: needs an operator, not a retry
    ValueError("a bug in a projection"),
    KeyError("missing"),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_failures_seen_through_their_wrappers(error: Exception) -> None:
    assert is_transient(error)
    wrapped = raised_from(OperationalError, error)  # the event store's wrapper
    assert is_transient(wrapped)
    halted = ProjectionHalted("caseload", 17, "topic", wrapped)
    halted.__cause__ = wrapped
    assert is_transient(halted)


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_failures_that_would_recur_are_not_transient(error: Exception) -> None:
    assert not is_transient(error)
    assert not is_transient(raised_from(IntegrityError, error))
    halted = ProjectionHalted("caseload", 17, "topic", error)
    halted.__cause__ = error
    assert not is_transient(halted)


def test_a_lost_session_is_told_from_an_unreachable_server() -> None:
    assert session_lost(raised_from(OperationalError, errors.AdminShutdown("terminating")))
    assert session_lost(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert not session_lost(raised_from(OperationalError, PoolTimeout("no connection")))
    assert not session_lost(errors.LockNotAvailable("lock timeout"))
    assert not session_lost(ValueError("bug"))


def test_backoff_grows_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0)
    pauses = [backoff.next() for _ in range(8)]
    assert pauses[0] < 0.2 and all(p <= 1.2 for p in pauses) and pauses[-1] >= 0.8
    backoff.reset()
    assert backoff.next() < 0.2


def test_supervise_retries_transient_failures_and_stops_on_a_halt() -> None:
    stop = threading.Event()
    calls: list[str] = []

    def flaky() -> None:
        calls.append("run")
        if len(calls) < 3:
            raise raised_from(OperationalError, errors.AdminShutdown("terminating"))
        if len(calls) == 3:
            raise RuntimeError("a passing bug")  # restarted too, with its traceback logged
        stop.set()

    assert supervise("flaky", flaky, stop, backoff=Backoff(0.01, 0.02)) is None
    assert len(calls) == 4

    bad_event = ProjectionHalted("caseload", 9, "topic", ValueError("cannot apply"))
    bad_event.__cause__ = bad_event.cause

    def halting() -> None:
        raise bad_event

    stop.clear()
    halted = supervise("halting", halting, stop, halts=(ProjectionHalted,))
    assert halted is bad_event

    passing = ProjectionHalted("caseload", 9, "topic", errors.SerializationFailure("retry"))
    passing.__cause__ = passing.cause
    attempts: list[int] = []

    def transient_halt() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise passing
        stop.set()

    halts = (ProjectionHalted,)
    assert supervise("t", transient_halt, stop, halts=halts, backoff=Backoff(0.01)) is None
    assert len(attempts) == 2
