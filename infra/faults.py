"""Which failures pass and which recur: the rule by which workers retry or halt, and the API
answers 503 or 500.

A failure is *transient* when trying the same thing again later can succeed: the database
connection was lost or refused, the server is shutting down or restarting (a failover, an
operator ending sessions), no pooled connection came in time, or the server gave up a
transaction that may be run again (serialization failure, deadlock, lock or statement timeout).
Anything else would recur on the same event or request (a constraint, a bad value, a bug), so
a projection halts on it and the API reports a server error.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
from psycopg_pool import PoolTimeout, TooManyRequests

log = logging.getLogger(__name__)

#: SQLSTATEs of errors that a retry may not meet again.
TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout)
        "57014",  # query_canceled (statement_timeout, pg_cancel_backend)
        "57P01",  # admin_shutdown (server stopping, pg_terminate_backend)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (server starting)
        "25P03",  # idle_in_transaction_session_timeout
        "53300",  # too_many_connections
    }
)
#: SQLSTATE classes of the same kind: 08 is "connection exception".
TRANSIENT_CLASSES = frozenset({"08"})


def is_transient(error: BaseException) -> bool:
    """True when ``error``, or an error it was raised from or while handling, is transient.

    Wrappers (the event store's own OperationalError, a ProjectionHalted) are looked through to
    the psycopg error they carry. Looking through is safe: an error that would recur meets a
    working connection on the retry and is then classified by itself.
    """
    return any(_transient(cause) for cause in _causes(error))


def _transient(error: BaseException) -> bool:
    if not isinstance(error, psycopg.Error):
        return False
    state = error.sqlstate
    if state is None:
        # No answer from the server at all: connection lost or refused, pool timeout
        # (psycopg_pool's PoolTimeout and TooManyRequests are OperationalErrors), a closed
        # connection used again.
        return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))
    return state in TRANSIENT_SQLSTATES or state[:2] in TRANSIENT_CLASSES


def session_lost(error: BaseException) -> bool:
    """True when the connection itself broke (the server closed it, ended the session, or
    shut down): another connection may work at once. Not when no connection could be had
    (the server is away: waiting again is pointless) nor when a statement was refused."""
    for cause in _causes(error):
        if isinstance(cause, (PoolTimeout, TooManyRequests)):
            return False
        if isinstance(cause, (psycopg.OperationalError, psycopg.InterfaceError)):
            state = cause.sqlstate
            if state is None or state[:2] == "08" or state in ("57P01", "57P02"):
                return True
    return False


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (current.__cause__, current.__context__, getattr(current, "cause", None)):
            if isinstance(linked, BaseException):
                pending.append(linked)


class Backoff:
    """Capped exponential pauses with jitter (so restarted workers do not retry in step)."""

    def __init__(self, initial: float = 0.2, maximum: float = 5.0) -> None:
        self.initial, self.maximum = initial, maximum
        self.delay = initial

    def next(self) -> float:
        delay = self.delay * random.uniform(0.8, 1.2)  # jitter, not a secret
        self.delay = min(self.delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.delay = self.initial


def supervise(
    name: str,
    target: Callable[[], None],
    stop: threading.Event,
    *,
    halts: tuple[type[BaseException], ...] = (),
    backoff: Backoff | None = None,
) -> BaseException | None:
    """Run ``target`` until ``stop`` is set, starting it again after each failure.

    Transient failures are logged in one line and retried after a growing pause (reset once a
    run lasted longer than the longest pause). A failure of a kind in ``halts`` that is not
    transient stops the worker for good and is returned; other failures are logged with their
    traceback and retried too (a worker should not die of a bug in a passing situation).
    """
    backoff = backoff or Backoff()
    while not stop.is_set():
        started = time.monotonic()
        try:
            target()
            return None  # the target returns when ``stop`` is set
        except Exception as error:
            transient = is_transient(error)
            if isinstance(error, halts) and not transient:
                return error  # the worker said why (a projection records its halt)
            if time.monotonic() - started > backoff.maximum:
                backoff.reset()
            pause = backoff.next()
            if transient:
                log.warning(
                    "worker %s: database unavailable (%s: %s); retrying in %.1fs",
                    name,
                    type(error).__name__,
                    str(error).strip().splitlines()[0] if str(error).strip() else "",
                    pause,
                )
            else:
                log.exception("worker %s failed; restarting in %.1fs", name, pause)
            stop.wait(pause)
    return None
