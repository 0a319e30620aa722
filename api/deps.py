"""Request-scoped dependencies shared by the routers.

Those that do no I/O are ``async``: FastAPI runs them on the event loop, where a sync one would
cost a hand-off to a worker thread and back (a fifth of a command's CPU was such hand-offs).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Annotated, Any, cast

import psycopg
from fastapi import Depends, Header, Request
from psycopg import Cursor
from psycopg_pool import ConnectionPool
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Strict, WithJsonSchema
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, current_principal
from domain.clock import business_date
from domain.errors import InvalidValue
from domain.provenance import Actor, Provenance
from domain.staff import KINDS_OF_ROLE, sign_in_id
from domain.values import AMOUNT_FORM, AMOUNT_TEXT, check_printable, plain_amount
from infra.ledger import ReliefLedger, WouldLoad, current_loads
from infra.runtime import Runtime
from services import Services


def _iso_text(value: object) -> object:
    """Dates and times travel as ISO 8601 text; a bare number is not an instant."""
    if isinstance(value, dt.date) or (isinstance(value, str) and ISO_DATE_START.match(value)):
        return value
    raise ValueError("expected ISO 8601 text, e.g. 2026-07-01 or 2026-07-01T09:00:00+08:00")


ISO_DATE_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _on_a_business_day(value: dt.datetime) -> dt.datetime:
    """An instant whose business day is a date: 0001-01-01T00:00+14:00 falls on a day before
    the year 1 in China Standard Time, and reading its business day failed (a 500)."""
    try:
        business_date(value)
    except (OverflowError, ValueError):
        raise ValueError(
            "out of range: its day in China Standard Time is not between 0001-01-01 and 9999-12-31"
        ) from None
    return value


#: Request dates and instants: ISO 8601 text only (pydantic would read 0.5 as 1970-01-01).
IsoDate = Annotated[dt.date, BeforeValidator(_iso_text)]
IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_text), AfterValidator(_on_a_business_day)]
#: JSON integers and booleans as such: "5" and 1 are not accepted for them.
JsonInt = Annotated[int, Strict()]
JsonBool = Annotated[bool, Strict()]


def _amount_text(value: object) -> Decimal:
    """Money travels as JSON text of plain decimal digits (a JSON number may already have
    been rounded by a float on its way)."""
    if not isinstance(value, str):
        raise ValueError(f"write amounts as JSON text of {AMOUNT_FORM}")
    return plain_amount(value)


#: An amount of yuan in a request: "960" or "960.50", nothing else (domain/values.py).
Amount = Annotated[
    Decimal,
    BeforeValidator(_amount_text),
    WithJsonSchema({"type": "string", "pattern": f"^{AMOUNT_TEXT.pattern}$", "example": "960.00"}),
]


#: Largest position or version a request may name (PostgreSQL bigint holds more; no log will).
MAX_SEQUENCE = 2**53


async def refuse_unknown_query(request: Request) -> None:
    """Query parameters the operation does not declare are refused, not ignored: a misspelt
    filter (``?divison=4401``) must not silently widen a read to everything."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _declared_query(route)
    for name in request.query_params:
        if name not in known:
            raise InvalidValue(f"unknown query parameter {name!r}", field=name)


def _declared_query(route: Any) -> frozenset[str]:
    cached: frozenset[str] | None = getattr(route, "_declared_query", None)
    if cached is None:
        names: set[str] = set()
        pending = [route.dependant]
        while pending:  # the operation's parameters and its dependencies', all the way down
            dependant = pending.pop()
            names.update(p.alias for p in dependant.query_params)
            pending.extend(dependant.dependencies)
        cached = frozenset(names)
        route._declared_query = cached
    return cached


class StrictModel(BaseModel):
    """Request bodies: unknown fields are refused, text is stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_ledger(request: Request) -> ReliefLedger:
    """The event store, for reading records (commands go through the services)."""
    runtime: Runtime = request.app.state.runtime
    return runtime.ledger


async def get_services(request: Request) -> Services:
    """The application services: every command is handled by one of their methods."""
    runtime: Runtime = request.app.state.runtime
    return runtime.services


class LazyReadCursor:
    """A read cursor whose connection is taken from the pool at its first use, in the thread
    that uses it (a sync route's worker thread), not before: a request answered without a
    query (a kept answer, a 304, a refusal) takes no connection and costs no hand-off."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._conn: psycopg.Connection[Any] | None = None
        self._cursor: Cursor[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        if self._cursor is None:
            self._conn = self._pool.getconn()
            # Each statement its own transaction (as in READ COMMITTED each saw its own
            # snapshot anyway): nothing is left open to roll back, so the connection goes
            # back to the pool from the event loop, with no I/O and no hand-off.
            self._conn.autocommit = True
            self._cursor = self._conn.cursor()
        return getattr(self._cursor, name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.__getattr__("__iter__")())

    @property
    def taken(self) -> bool:
        return self._conn is not None

    @property
    def idle(self) -> bool:
        """Whether its connection has no transaction open (``release`` then does no I/O)."""
        conn = self._conn
        return conn is None or conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    def release(self) -> None:
        """Back to the pool, as it was taken (a transaction left open is rolled back, never
        committed: I/O, on a worker thread)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(psycopg.Error):
            if self._cursor is not None:
                self._cursor.close()
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            conn.autocommit = False
        self._pool.putconn(conn)


async def read_cursor(request: Request) -> AsyncIterator[Cursor[Any]]:
    """A cursor on the read models for the request, its connection back in the pool after.

    Reads only, each statement in a transaction of its own (``LazyReadCursor``): nothing is
    open at the end, which comes after the answer has started, so the connection goes back to
    the pool from the event loop. A session ended by then (a failover, an operator) has
    nothing left to lose: the broken connection is dropped by the pool and not raised (which
    would cut off an answer already on its way). Lazy: a request answered without a query
    takes no connection at all."""
    runtime: Runtime = request.app.state.runtime
    cursor = LazyReadCursor(runtime.pool)
    try:
        yield cast(Cursor[Any], cursor)
    finally:
        if cursor.taken:
            if cursor.idle:
                cursor.release()
            else:
                await run_in_threadpool(cursor.release)


def acting_actor(services: Services, principal: Principal) -> Actor:
    """The actor recorded on a command's events: the staff record a caller's sign-in is linked
    to (its id as the actor id, the token's subject kept beside it), or, with no link, the
    subject itself (which is that staff record when it is the text of a staff record's id).
    Only the roles that act as staff records are looked up: one read of a small aggregate."""
    actor = principal.actor
    if actor.role not in KINDS_OF_ROLE:
        return actor
    staff_id = services.purchasing.signed_in_staff(principal.issuer, actor.id)
    if staff_id is None:
        return actor
    return Actor(
        id=str(staff_id), role=actor.role, organisation=actor.organisation, subject=actor.id
    )


async def command_provenance(
    request: Request,
    principal: Annotated[Principal, Depends(current_principal)],
    x_correlation_id: Annotated[str | None, Header(max_length=200)] = None,
) -> Provenance:
    """Who is acting and which business transaction the command belongs to. The correlation
    id is kept in every event: control characters (ESC, BEL, DEL, ...) are refused in it as
    in free text of a body. On the event loop but for finding the caller's staff record, which
    reads the store (only for the roles that act as staff records)."""
    if x_correlation_id is not None:
        check_printable(x_correlation_id, field="X-Correlation-Id")
    if principal.actor.role in KINDS_OF_ROLE:
        actor = await _acting_actor(request, principal)
    else:
        actor = principal.actor
    return Provenance(actor=actor, correlation_id=x_correlation_id)


async def _acting_actor(request: Request, principal: Principal) -> Actor:
    """``acting_actor``: the caller's sign-in read on the event loop into the request's loads
    (``ReliefLedger.load_on_loop``), so the command neither hops to a worker thread for it nor
    reads it again; on a worker thread where that cannot be done."""
    runtime: Runtime = request.app.state.runtime
    reads = getattr(request.app.state, "loop_reads", None)
    if reads is not None and reads.serves() and current_loads() is not None:
        ledger = runtime.ledger
        # Read with the path's records by the access check (``api.access.allow``) already.
        await ledger.load_on_loop([sign_in_id(principal.issuer, principal.actor.id)], reads.fetch)
        with contextlib.suppress(WouldLoad), ledger.loaded_only():
            return acting_actor(runtime.services, principal)
    return await run_in_threadpool(acting_actor, runtime.services, principal)


def with_reason(by: Provenance, reason: str | None) -> Provenance:
    return Provenance(actor=by.actor, reason=reason, correlation_id=by.correlation_id)


async def expected_version(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """The record version a command expects (the ETag in If-Match), or None: no check."""
    if if_match is None:
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise InvalidValue('If-Match must be the ETag of the record, e.g. "3"', field="If-Match")
    return int(tag)


Ledger = Annotated[ReliefLedger, Depends(get_ledger)]
AppServices = Annotated[Services, Depends(get_services)]
ReadCursor = Annotated[Cursor[Any], Depends(read_cursor)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
By = Annotated[Provenance, Depends(command_provenance)]
ExpectedVersion = Annotated[int | None, Depends(expected_version)]
