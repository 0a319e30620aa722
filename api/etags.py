"""Conditional dashboard reads: an ETag from the positions of the projections an answer reads,
and ``If-None-Match`` answered 304 before the answer's query runs.

A read model changes only when its projection commits a batch that wrote rows to it, and such
a batch moves the projection's ``_tracking.content_position`` in the same transaction (batches
that wrote nothing move only ``position``); a rebuild switches the generation. So
(generation, content position) of each projection read, with the request (path, query, the
caller's role, organisation and scope) and whatever the answer depends on besides the log (the
business date, terminations taking effect), name the answer. They are
read from the database on each request: several API processes give the same tag for the same
state, and no process can serve a stale tag from memory. One statement reads them all, on a
connection of its own, so a kept answer or a 304 takes no read cursor and one round trip. An
answer as things stood at a past moment, built from what was recorded by then, follows instead
the last batch holding an event recorded by that day (the generation's day marks).

The tag is read before the answer: a batch committed in between makes the answer newer than its
tag, never older, so a client revalidating with it gets a fresh 200.

Each API process also keeps the answers it encoded under their tags (``AnswerCache``, bounded in
bytes, least recently used first out): a request whose tag names a kept answer gets those bytes
without running the query; one asking while another request of the process computes the same
answer waits for it rather than computing it too. A kept answer is never older than its tag
(see above), so this serves nothing a revalidating client would not have been allowed to keep;
an answer "now" carries the moment it was computed (``at``), which is as current as the tag
says it still is. A request with ``Cache-Control: no-cache`` has its answer computed afresh.
With several processes, the answers one computes are kept in the database for the others too
(``SharedAnswers``).

A dashboard answer may also be sent a little behind its projections (``RELIEF_ANSWER_MAX_STALE_MS``,
one second by default): when the tag has moved past the answer last computed for the same
request, and that answer was still current less than that long ago, it is sent as it is, under
its own tag, while the process computes the new one in the background (``Refreshes``: the
request asked again of the app itself; at most one every half of that bound per request).
Province-wide answers move with nearly every batch; their readers no longer wait for them to be
computed (RFC 5861's stale-while-revalidate, kept on the server). An answer so sent names its
own positions in its tag and its moment in ``at``; a client that must see the newest sends
``Cache-Control: no-cache`` (or ``max-age=0``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
import psycopg
from cryptography.exceptions import InvalidTag
from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from psycopg import sql
from psycopg_pool import ConnectionPool
from pydantic import TypeAdapter, ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api.access import DIVISION_PREFIX, division_in_scope
from api.auth import CurrentPrincipal, Principal
from api.deps import AppServices, IsoDateTime
from domain.clock import business_date
from domain.errors import NotPermitted
from infra.database import LoopReads
from infra.projection_runner import minute_of
from infra.schema import CONTROL_SCHEMA, EVERY_COUNTY, generation_schema
from infra.sealing import Seal
from projections.red_flags.queries import ALERT_TABLES
from projections.registry import projection_class

log = logging.getLogger(__name__)

#: The generation each projection serves from.
GENERATIONS = (
    f"SELECT name, active_generation FROM {CONTROL_SCHEMA}.projections"
    " WHERE name = ANY(%s) ORDER BY name"
)

#: Clients may keep an answer but must ask again (with If-None-Match) before using it.
CACHE_CONTROL = "private, no-cache"


class NotModified(Exception):
    def __init__(self, etag: str) -> None:
        super().__init__(etag)
        self.etag = etag


class CachedAnswer(Exception):
    """The request's tag names an answer this process keeps: send it as it is."""

    def __init__(self, etag: str, body: bytes) -> None:
        super().__init__(etag)
        self.etag = etag
        self.body = body


@dataclass
class _Latest:
    """The answer last computed for a request: its tag, when it was last known current and
    when its last refresh began (``AnswerCache``)."""

    etag: str
    current_at: float
    refreshed_at: float


class AnswerCache:
    """Encoded answers by ETag, at most ``max_bytes`` of them, least recently used out first.
    Thread-safe: sync routes run on the thread pool."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self.shared_hits = 0  # of the hits: answers another process computed (SharedAnswers)
        self.coalesced = 0  # of the hits: answers waited for while this process computed them
        self.stale = 0  # answers sent behind their tag while their refresh ran (not misses)
        self.refreshed = 0  # of the misses: computed in the background after a stale one
        self._answers: OrderedDict[str, bytes] = OrderedDict()
        # For each request (its identity: the tag less the marks), the tag of the answer last
        # computed for it, when that answer was last known current (computed, or its tag read
        # again), and when its last refresh began (monotonic seconds): what a request may be
        # sent while its answer is refreshed.
        self._latest: OrderedDict[str, _Latest] = OrderedDict()
        self._lock = threading.Lock()
        # Answers being computed, by tag: on the event loop only (``conditional``).
        self._flights: dict[str, asyncio.Event] = {}

    def get(self, etag: str) -> bytes | None:
        with self._lock:
            body = self._answers.get(etag)
            if body is None:
                self.misses += 1
                return None
            self._answers.move_to_end(etag)
            self.hits += 1
            return body

    def found_shared(
        self, etag: str, body: bytes, request: str | None = None, current_at: float = 0.0
    ) -> None:
        """The answer ``get`` missed, found among the shared ones: kept here too, and counted
        as a hit, not a miss (nothing was computed)."""
        self.put(etag, body, request, current_at)
        with self._lock:
            self.misses -= 1
            self.hits += 1
            self.shared_hits += 1

    def flight(self, etag: str) -> asyncio.Event | None:
        """Set when the request computing the answer under ``etag`` ends; None when none is."""
        return self._flights.get(etag)

    def take_off(self, etag: str) -> asyncio.Event:
        """This request computes the answer under ``etag``: the others asking meanwhile wait."""
        flight = self._flights[etag] = asyncio.Event()
        return flight

    def land(self, etag: str, flight: asyncio.Event) -> None:
        """The request computing ``etag`` ended (answered, refused, failed or cancelled)."""
        if self._flights.get(etag) is flight:
            del self._flights[etag]
        flight.set()

    def waited_for(self, etag: str) -> bytes | None:
        """The answer a request waited for while another computed it (its miss counted as a
        hit); None when that one kept none (it failed, or its answer was too big to keep)."""
        with self._lock:
            body = self._answers.get(etag)
            if body is not None:
                self._answers.move_to_end(etag)
                self.misses -= 1
                self.hits += 1
                self.coalesced += 1
            return body

    def put(
        self, etag: str, body: bytes, request: str | None = None, current_at: float = 0.0
    ) -> None:
        """Keep ``body`` under ``etag``; with ``request`` (the request's identity), as the
        answer last computed for it, known current at ``current_at`` (when its tag was read:
        of two answers computed for it at once, the later state's)."""
        if len(body) > self.max_bytes // 8:  # one answer never crowds out the rest
            return
        with self._lock:
            old = self._answers.pop(etag, None)
            self.size -= len(old) if old is not None else 0
            self._answers[etag] = body
            self.size += len(body)
            while self.size > self.max_bytes:
                _, dropped = self._answers.popitem(last=False)
                self.size -= len(dropped)
            latest = self._latest.get(request) if request is not None else None
            if request is not None and (latest is None or latest.current_at <= current_at):
                refreshed_at = latest.refreshed_at if latest is not None else 0.0
                self._latest[request] = _Latest(etag, current_at, refreshed_at)
                self._latest.move_to_end(request)
                while len(self._latest) > MAX_REQUESTS_FOLLOWED:
                    self._latest.popitem(last=False)

    def current(self, request: str, etag: str, at: float) -> None:
        """The answer kept under ``etag`` was sent for ``request`` as current at ``at``."""
        with self._lock:
            latest = self._latest.get(request)
            if latest is not None and latest.etag == etag:
                latest.current_at = max(latest.current_at, at)

    def behind(self, request: str, max_stale_s: float) -> tuple[str, bytes, bool] | None:
        """The answer last computed for ``request`` (its tag and body) when it was known
        current less than ``max_stale_s`` ago and is still kept, counted as a stale answer sent;
        and whether its refresh is due (none began in the last half of that bound: a request
        asked many times a second, whose answer moves as often, is computed twice a second)."""
        with self._lock:
            latest = self._latest.get(request)
            now = time.monotonic()
            if latest is None or now - latest.current_at > max_stale_s:
                return None
            body = self._answers.get(latest.etag)
            if body is None:
                return None
            self.misses -= 1  # ``get`` counted the request's own tag a miss: none computed
            self.stale += 1
            due = now - latest.refreshed_at >= max_stale_s / 2
            if due:
                latest.refreshed_at = now
            return latest.etag, body, due


#: How long a request waits for the answer another request of its process is computing before
#: it computes the answer itself.
FLIGHT_WAIT_S = 30.0

#: Requests whose last computed answer a process remembers (stale answers sent while refreshed).
MAX_REQUESTS_FOLLOWED = 4096

#: The ASGI scope key marking a request the app asks itself to refresh an answer (not a header:
#: no client can send it).
REFRESH = "relief.refresh"

#: What a refresh keeps of the request it repeats (the rest is the client's connection's).
_SCOPE_KEYS = (
    "type",
    "asgi",
    "http_version",
    "method",
    "scheme",
    "path",
    "raw_path",
    "root_path",
    "query_string",
    "server",
    "client",
)

#: Headers a refresh leaves out: it asks for the answer itself, not whether one is current.
_VALIDATORS = {b"if-none-match", b"cache-control", b"if-modified-since"}


class Refreshes:
    """The answers a process computes in the background after sending a stale one: the request
    asked again of the app itself, as its client asked it (access, scope and tag all checked
    again), one at a time per request. Its answer is kept (``answer``) as any; the client's
    metrics and logs do not count it. A refresh refused or failed only means the next reader
    computes the answer once the stale one is too old."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[None]] = {}

    def running(self) -> int:
        """Refreshes under way."""
        return len(self._running)

    def start(self, request: Request, identity: str) -> None:
        if identity in self._running:
            return
        headers = [(k, v) for k, v in request.scope["headers"] if k.lower() not in _VALIDATORS]
        scope = {k: request.scope[k] for k in _SCOPE_KEYS if k in request.scope}
        scope.update(headers=headers, state={}, **{REFRESH: True})
        task = asyncio.get_running_loop().create_task(self._ask(request.app, scope))
        self._running[identity] = task
        task.add_done_callback(lambda _: self._running.pop(identity, None))

    @staticmethod
    async def _ask(app: Any, scope: dict[str, Any]) -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            pass

        try:
            await app(scope, receive, send)
        except Exception:  # the next reader computes it; never the process's failure
            log.warning("refreshing %s failed", scope.get("path"), exc_info=True)


#: How long a shared answer is kept after it was computed: a tag moves with every batch that
#: changes what its answer reads, so an older one is rarely asked for again.
SHARED_TTL_S = 60

_SHARED_GET = f"SELECT body FROM {CONTROL_SCHEMA}.shared_answers WHERE tag = %s"
_SHARED_PUT = (
    f"INSERT INTO {CONTROL_SCHEMA}.shared_answers (tag, body) VALUES (%s, %s)"
    " ON CONFLICT (tag) DO NOTHING RETURNING 1"
)
_SHARED_PRUNE = (
    f"WITH gone AS (DELETE FROM {CONTROL_SCHEMA}.shared_answers"
    " WHERE stored_at < now() - make_interval(secs => %s) RETURNING 1)"
    " SELECT count(*) FROM gone"
)


class SharedAnswers:
    """Answers any API process computed, kept in the database under their tag for a minute, so
    the several processes of ``relief api --workers N`` (or several hosts) compute each answer
    once, not once each. An unlogged table: a server crash loses them, which only means
    computing them again. Sealed with the event key and bound to their tag (answers can carry
    names): bytes copied under another tag do not open there. Read from the event loop on a
    process's own miss; written from it after the answer is sent. A failure here is logged and
    the answer computed or sent as without it."""

    def __init__(self, reads: LoopReads, seal: Seal | None) -> None:
        self.reads, self.seal = reads, seal
        self._puts = 0

    def _place(self, tag: str) -> bytes:
        return b"shared-answer\x00" + tag.encode()

    async def get(self, tag: str) -> bytes | None:
        try:
            rows = await self.reads.fetch(_SHARED_GET, (tag,))
            if not rows:
                return None
            body = bytes(rows[0]["body"])
            return self.seal.open_bound(body, self._place(tag)) if self.seal else body
        except (psycopg.Error, InvalidTag) as error:
            log.warning("shared answer %s not read: %s", tag, error)
            return None

    async def put(self, tag: str, body: bytes) -> None:
        sealed = self.seal.seal(body, self._place(tag)) if self.seal else body
        self._puts += 1
        try:
            await self.reads.fetch(_SHARED_PUT, (tag, sealed))
            if self._puts % 100 == 0:
                await self.reads.fetch(_SHARED_PRUNE, (SHARED_TTL_S,))
        except psycopg.Error as error:
            log.warning("shared answer %s not kept: %s", tag, error)


class Tag(str):
    """An answer's ETag, where the process keeps answers under it (None: nowhere), and where
    it shares them with the other processes (None: not shared)."""

    cache: AnswerCache | None = None
    shared: SharedAnswers | None = None
    request: str | None = None  # the request's identity: the tag less the marks
    read_at = 0.0  # when its marks were read (monotonic seconds): the answer current then


class ProjectionMarks:
    """What an answer's tag follows, read in one round trip on a connection of its own: the
    content position of each projection's active generation and any scalar the route adds.

    The generation each projection serves from is remembered and checked by the same
    statement; a rebuild's switch (or a generation dropped under it) makes it read the
    generations again and ask once more. Several API processes give the same tag for the same
    state: nothing here is served from memory without the database confirming it."""

    def __init__(self) -> None:
        self._generations: dict[tuple[str, ...], list[tuple[str, int]]] = {}
        self._lock = threading.Lock()

    def read(
        self,
        pool: ConnectionPool,
        names: Sequence[str],
        extra: Marks | None = None,
        tables: Mapping[str, Sequence[str]] | None = None,
        moments: Mapping[str, dt.datetime] | None = None,
        scope: str | None = None,
    ) -> list[Any]:
        key = tuple(sorted(names))
        conn = pool.getconn()
        try:
            conn.autocommit = True  # one statement: no transaction to end afterwards
            for _ in range(3):
                with self._lock:
                    known = self._generations.get(key)
                if known is None:
                    known = self._read_generations(conn, key)
                try:
                    statement = self._statement(known, extra, tables, moments, scope)
                    row = conn.execute(statement, _params(key, extra))
                    got = row.fetchone()
                except psycopg.errors.UndefinedTable:  # a generation dropped since
                    got = None
                if (marks := self._marks(key, known, got, extra)) is not None:
                    return marks
            raise RuntimeError(f"projections {key} kept switching generations")
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.autocommit = False
            pool.putconn(conn)

    async def read_on_loop(
        self,
        reads: LoopReads,
        names: Sequence[str],
        extra: Marks | None = None,
        tables: Mapping[str, Sequence[str]] | None = None,
        moments: Mapping[str, dt.datetime] | None = None,
        scope: str | None = None,
    ) -> list[Any]:
        """``read``, its statements sent from the event loop (``LoopReads``): a kept answer
        or a 304 then costs no hand-off to a worker thread at all."""
        key = tuple(sorted(names))
        for _ in range(3):
            with self._lock:
                known = self._generations.get(key)
            if known is None:
                rows = await reads.fetch(GENERATIONS, (list(key),))
                known = [(str(r["name"]), int(r["active_generation"])) for r in rows]
                with self._lock:
                    self._generations[key] = known
            try:
                statement = self._statement(known, extra, tables, moments, scope)
                rows = await reads.fetch(statement, _params(key, extra))
                got = list(rows[0].values()) if rows else None
            except psycopg.errors.UndefinedTable:  # a generation dropped since
                got = None
            if (marks := self._marks(key, known, got, extra)) is not None:
                return marks
        raise RuntimeError(f"projections {key} kept switching generations")

    def _marks(
        self, key: tuple[str, ...], known: list[Any], got: Any, extra: Marks | None
    ) -> list[Any] | None:
        """The marks of a row read for the ``known`` generations; None, and the generations
        forgotten, when they were not those the row was read for (a switch in between)."""
        if got is not None and list(got[0] or []) == [g for _, g in known]:
            positions = [(n, g, c) for (n, g), c in zip(known, got[1:], strict=False)]
            return [*positions, *got[1 + len(known) :], *(extra.values if extra else [])]
        with self._lock:
            self._generations.pop(key, None)
        return None

    def _read_generations(self, conn: psycopg.Connection, key: tuple[str, ...]) -> list[Any]:
        rows = conn.execute(GENERATIONS, (list(key),)).fetchall()
        known = [(str(name), int(generation)) for name, generation in rows]
        with self._lock:
            self._generations[key] = known
        return known

    @staticmethod
    def _statement(
        known: Sequence[tuple[str, int]],
        extra: Marks | None,
        tables: Mapping[str, Sequence[str]] | None,
        moments: Mapping[str, dt.datetime] | None,
        scope: str | None,
    ) -> bytes:
        tables, moments = tables or {}, moments or {}
        return _marks_statement(
            tuple(known),
            extra.query if extra is not None else None,
            tuple((name, tuple(tables[name])) for name in sorted(tables)),
            tuple((name, minute_of(moments[name])) for name in sorted(moments)),
            scope,
        )


@functools.lru_cache(maxsize=4096)
def _marks_statement(
    known: tuple[tuple[str, int], ...],
    extra_query: str | None,
    tables: tuple[tuple[str, tuple[str, ...]], ...],
    minutes: tuple[tuple[str, dt.datetime], ...],
    scope: str | None = None,
) -> bytes:
    """The marks statement, composed once per shape (generations, tables, the moment's minute,
    the division asked about) and kept as bytes: composing it and converting it again on each
    request was a tenth of a kept answer's CPU."""
    by_table, by_minute = dict(tables), dict(minutes)
    columns = [
        sql.SQL(
            "(SELECT array_agg(active_generation ORDER BY name)"
            " FROM {}.projections WHERE name = ANY(%s))"
        ).format(sql.Identifier(CONTROL_SCHEMA)),
        *(
            _content_mark(name, generation, by_table.get(name), by_minute.get(name), scope)
            for name, generation in known
        ),
    ]
    if extra_query is not None:
        columns.append(sql.SQL("({})").format(sql.SQL(extra_query)))
    # Named apart: rows read as dicts (``LoopReads``) keep every column.
    named = [sql.SQL("{} AS {}").format(c, sql.Identifier(f"m{i}")) for i, c in enumerate(columns)]
    return (sql.SQL("SELECT ") + sql.SQL(", ").join(named)).as_bytes(None)


def _content_mark(
    name: str,
    generation: int,
    tables: Sequence[str] | None,
    moment: dt.datetime | None,
    scope: str | None = None,
) -> sql.Composed:
    """The projection's content position; for an answer reading only ``tables`` of it, the
    position of the last batch that wrote any of them; for an answer built only from what was
    recorded by ``moment``, the position of the last batch that held an event recorded in
    that moment's minute or before (0: none): the answer as things stood at a past moment
    keeps its tag while later events are applied (``moment`` is that minute); for an answer
    reading only the rows of division ``scope`` (a code prefix) of the projection's scoped
    tables, the position of the last batch that wrote rows of its county (counties, for a
    prefecture) or any unscoped table it reads (``scope_mark``)."""
    schema = sql.Identifier(generation_schema(name, generation))
    if moment is not None:
        return sql.SQL(
            "(SELECT coalesce((SELECT content_position FROM {}._moment_marks"
            " WHERE recorded_by <= {} ORDER BY recorded_by DESC LIMIT 1), 0))"
        ).format(schema, sql.Literal(moment))
    if scope is not None and (scoped := list(projection_class(name).scoped)):
        return scope_mark(schema, tables, scoped, scope)
    if tables is None:
        return sql.SQL("(SELECT content_position FROM {}._tracking)").format(schema)
    return sql.SQL(
        "(SELECT coalesce(max(content_position), 0) FROM {}._table_marks WHERE relname = ANY({}))"
    ).format(schema, sql.Literal(list(tables)))


def scope_mark(
    schema: sql.Identifier, tables: Sequence[str] | None, scoped: Sequence[str], scope: str
) -> sql.Composed:
    """The mark of an answer about division ``scope`` reading ``tables`` (None: all) of a
    generation whose ``scoped`` tables mark the counties they are written for: the table
    marks of the unscoped tables, and the scope marks of the scoped ones for the county
    holding ``scope`` (a county or narrower) or the counties under it (a prefecture), and for
    rows of no division (``EVERY_COUNTY``)."""
    read = (
        sql.SQL("")
        if tables is None
        else sql.SQL(" AND relname = ANY({})").format(sql.Literal(list(tables)))
    )
    if len(scope) >= 6:
        counties = sql.SQL("scope IN ({}, {})").format(
            sql.Literal(scope[:6]), sql.Literal(EVERY_COUNTY)
        )
    else:
        counties = sql.SQL("(left(scope, {}) = {} OR scope = {})").format(
            sql.Literal(len(scope)), sql.Literal(scope), sql.Literal(EVERY_COUNTY)
        )
    return sql.SQL(
        "(SELECT greatest("
        "(SELECT coalesce(max(content_position), 0) FROM {schema}._table_marks"
        " WHERE relname <> ALL({scoped}){read}),"
        " (SELECT coalesce(max(content_position), 0) FROM {schema}._scope_marks"
        " WHERE {counties}{read})))"
    ).format(schema=schema, scoped=sql.Literal(list(scoped)), read=read, counties=counties)


def _params(key: tuple[str, ...], extra: Marks | None) -> tuple[Any, ...]:
    return (list(key), *(extra.params if extra is not None and extra.query else ()))


@dataclass(frozen=True)
class Marks:
    """What an answer depends on besides the projections it reads: values known without the
    database, and a scalar query (constant text, its parameters) read with the marks."""

    values: list[Any]
    query: str | None = None
    params: tuple[Any, ...] = ()


def staffing_marks(request: Request, now: Any) -> Marks:
    """What a staffing answer depends on besides the projections it reads (the band tables are
    the policies projection's, marked by its content position): for the present (no ``at``),
    the business date (contract terms and removals run by the day) and the terminations in
    effect by now."""
    if "at" in request.query_params:
        return Marks([])
    return Marks(
        [business_date(now)],
        "SELECT count(*) FROM read_models.contract_termination WHERE effective_at <= %s",
        (now,),
    )


_MOMENT: TypeAdapter[dt.datetime] = TypeAdapter(IsoDateTime)


def moment_asked(request: Request) -> dt.datetime | None:
    """The past moment a staffing answer is asked as it stood at (``at``, parsed as the route
    parses it); None for the present, or for an ``at`` the route refuses. The staffing tables
    keep intervals from when their events were recorded, so an answer at a moment is built
    from what was recorded by then (a correction recorded later is dated from when it was
    recorded, as the view as it stood then did not know it)."""
    text = request.query_params.get("at")
    if text is None:
        return None
    try:
        moment = _MOMENT.validate_python(text)
    except ValidationError:
        return None
    return moment if moment.tzinfo is not None else None


_DIVISION_PREFIX = re.compile(DIVISION_PREFIX)


def division_asked(request: Request, principal: Principal) -> str | None:
    """The division a read is narrowed to, as ``ScopedDivision`` takes it (``division``, or
    the caller's scope), when narrower than the province; None for the province, or for a
    division the route refuses (malformed, or outside the caller's scope)."""
    asked = request.query_params.get("division")
    if asked is not None and not _DIVISION_PREFIX.fullmatch(asked):
        return None
    try:
        division = division_in_scope(principal, asked)
    except NotPermitted:
        return None
    return division if _DIVISION_PREFIX.fullmatch(division) and len(division) > 2 else None


Extra = Callable[[Request, Any], Marks]
Moment = Callable[[Request], dt.datetime | None]
Scope = Callable[[Request, Principal], str | None]


def conditional(
    *projections: str,
    extra: Extra | None = None,
    tables: Mapping[str, Sequence[str]] | None = None,
    recorded_by: Mapping[str, Moment] | None = None,
    scoped_by: Scope | None = None,
) -> Any:
    """A dependency giving the answer's ETag, or ending the request with 304 when the client's
    If-None-Match names it, or with the answer this process keeps under it. On the event loop
    but for the one round trip reading the marks (no read cursor is taken for a kept answer).
    ``tables``: for a projection named there, the answer reads those of its tables only, and
    its tag follows their writes alone. ``recorded_by``: for a projection named there, when
    the request asks for an answer built from what was recorded by the moment given, its tag
    follows only batches holding events recorded by that moment's minute (a month-end answer
    is kept while today's commands pass). ``scoped_by``: the division the answer reads the
    rows of (None: the province), in every projection read; its tag then follows the writes
    of that division's county (counties) to their scoped tables (``Projection.scoped``), not
    the whole province's. A request whose answer another request of the process is computing
    waits for it (``AnswerCache.flight``)."""

    async def etag(
        request: Request,
        principal: CurrentPrincipal,
        services: AppServices,
        if_none_match: Annotated[str | None, Header()] = None,
        cache_control: Annotated[
            str | None,
            Header(description="no-cache: compute the answer afresh, not from the kept one"),
        ] = None,
    ) -> AsyncIterator[Tag]:
        runtime = request.app.state.runtime
        added = extra(request, services.clock.now()) if extra is not None else None
        marks_of: ProjectionMarks = request.app.state.projection_marks
        reads: LoopReads | None = getattr(request.app.state, "loop_reads", None)
        moments = {name: at for name, of in (recorded_by or {}).items() if (at := of(request))}
        scope = scoped_by(request, principal) if scoped_by is not None else None
        read_at = time.monotonic()  # the marks read now name the state current now
        if reads is not None and reads.serves():
            marks = await marks_of.read_on_loop(reads, projections, added, tables, moments, scope)
        else:
            marks = await run_in_threadpool(
                marks_of.read, runtime.pool, projections, added, tables, moments, scope
            )
        parts: list[Any] = [
            request.url.path,
            sorted(request.query_params.multi_items()),
            principal.role.value,
            principal.actor.organisation,
            principal.scope,
            marks,
        ]
        digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()
        tag = Tag(f'"{digest}"')
        if if_none_match is not None and matches(if_none_match, tag):
            raise NotModified(tag)
        tag.cache = getattr(request.app.state, "answer_cache", None)
        on_loop = reads is not None and reads.serves()
        tag.shared = getattr(request.app.state, "shared_answers", None) if on_loop else None
        fresh = cache_control is not None and _fresh_required(cache_control)
        if tag.cache is None or fresh:
            yield tag
            return
        # The request's identity: what names its answer but the positions.
        tag.request = hashlib.blake2b(repr(parts[:-1]).encode(), digest_size=16).hexdigest()
        tag.read_at = read_at
        refreshing = bool(request.scope.get(REFRESH))
        if (body := tag.cache.get(tag)) is not None:
            tag.cache.current(tag.request, tag, read_at)
            raise CachedAnswer(tag, body)
        if tag.shared is not None and (body := await tag.shared.get(tag)) is not None:
            tag.cache.found_shared(tag, body, tag.request, read_at)
            raise CachedAnswer(tag, body)
        max_stale_s: float = getattr(request.app.state, "answer_max_stale_s", 0.0)
        if max_stale_s > 0 and not refreshing and on_loop:
            behind = tag.cache.behind(tag.request, max_stale_s)
            if behind is not None:
                # The answer last computed for this request, under its own tag, while this
                # process computes the current one (unless it is already doing so).
                stale_tag, body, due = behind
                if due and tag.cache.flight(tag) is None:
                    request.app.state.refreshes.start(request, tag.request)
                if if_none_match is not None and matches(if_none_match, stale_tag):
                    raise NotModified(stale_tag)
                raise CachedAnswer(stale_tag, body)
        if refreshing:
            tag.cache.refreshed += 1
        # One computation per answer and process: a request asking while another computes
        # the same answer waits for it (after a batch moves a province-wide tag, every reader
        # asks at once; each computing it spent the cores they all waited for).
        if (flight := tag.cache.flight(tag)) is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flight.wait(), FLIGHT_WAIT_S)
            if (body := tag.cache.waited_for(tag)) is not None:
                raise CachedAnswer(tag, body)
            yield tag  # none kept: computed here
            return
        flight = tag.cache.take_off(tag)
        try:
            yield tag
        finally:
            tag.cache.land(tag, flight)

    etag.conditional = True  # type: ignore[attr-defined]  # (document_not_modified)
    return Depends(etag)


def document_not_modified(routes: Iterable[Any]) -> None:
    """Each of ``routes`` that answers conditionally lists 304 among its answers (OpenAPI)."""
    for route in routes:
        if isinstance(route, APIRoute) and _conditional(route.dependant):
            route.responses.setdefault(
                304,
                {
                    "description": "Not Modified: the answer the If-None-Match tag names is "
                    "still current (no body; the ETag header names it again)"
                },
            )


def _conditional(dependant: Any) -> bool:
    return any(
        getattr(d.call, "conditional", False) or _conditional(d) for d in dependant.dependencies
    )


def _fresh_required(cache_control: str) -> bool:
    """Whether a request's Cache-Control asks for an answer computed now: ``no-cache``, or
    ``max-age=0`` (RFC 9111 5.2.1)."""
    directives = {d.strip().lower().replace(" ", "") for d in cache_control.split(",")}
    return "no-cache" in directives or "max-age=0" in directives


def matches(if_none_match: str, tag: str) -> bool:
    """RFC 9110 13.1.2: ``*`` or a list of tags, compared weakly (W/ ignored)."""
    candidates = [c.strip() for c in if_none_match.split(",")]
    return any(c == "*" or c.removeprefix("W/") == tag for c in candidates)


# Caseload and staffing rows carry the names of their divisions (the divisions projection's).
CaseloadTag = Annotated[str, conditional("caseload", "divisions")]
#: The caseload rolled up (``query_caseload``): the rollup's rows of the division asked.
CaseloadRollupTag = Annotated[
    str,
    conditional(
        "caseload",
        "divisions",
        tables={"caseload": ("caseload_rollup",)},
        scoped_by=division_asked,
    ),
]
STAFFING_READS = ("staffing", "policies", "divisions")
StaffingTag = Annotated[
    str,
    conditional(*STAFFING_READS, extra=staffing_marks, recorded_by={"staffing": moment_asked}),
]
#: Staffing answers reading only the rows of the division asked (``ScopedDivision``).
StaffingDivisionTag = Annotated[
    str,
    conditional(
        *STAFFING_READS,
        extra=staffing_marks,
        recorded_by={"staffing": moment_asked},
        scoped_by=division_asked,
    ),
]
#: Alerts and their reviews only: the facts the rules keep change with nearly every event.
AlertsTag = Annotated[str, conditional("red_flags", tables={"red_flags": ALERT_TABLES})]


def answer(content: Any, etag: str) -> Response:
    """The answer as JSON encoded by orjson (a 1,000-row page in a fraction of a millisecond,
    where FastAPI's generic encoding takes tens), with its ETag; kept under the tag."""
    body = orjson.dumps(content)
    if isinstance(etag, Tag) and etag.cache is not None:
        etag.cache.put(etag, body, etag.request, etag.read_at)
        if etag.shared is not None:  # shared once sent: the caller does not wait for it
            return _json(body, etag, BackgroundTask(etag.shared.put, str(etag), body))
    return _json(body, etag)


def _json(body: bytes, etag: str, background: BackgroundTask | None = None) -> Response:
    return Response(
        body,
        media_type="application/json",
        headers={"ETag": etag, "Cache-Control": CACHE_CONTROL},
        background=background,
    )


def install(
    app: FastAPI,
    *,
    cache_bytes: int = 0,
    shared: LoopReads | None = None,
    seal: Seal | None = None,
    max_stale_s: float = 0.0,
) -> None:
    """304 and kept answers for the app's conditional routes; ``cache_bytes`` of answers kept
    (0: none); with ``shared``, computed answers shared with the other processes through the
    database (``SharedAnswers``), sealed with ``seal``; an answer still current less than
    ``max_stale_s`` ago sent while the current one is computed in the background (0: never)."""
    app.state.answer_cache = AnswerCache(cache_bytes) if cache_bytes > 0 else None
    app.state.answer_max_stale_s = max_stale_s
    app.state.refreshes = Refreshes()
    app.state.shared_answers = (
        SharedAnswers(shared, seal) if shared is not None and cache_bytes > 0 else None
    )
    app.state.projection_marks = ProjectionMarks()

    async def cached(_request: Request, error: Exception) -> Response:
        assert isinstance(error, CachedAnswer)
        return _json(error.body, error.etag)

    app.add_exception_handler(CachedAnswer, cached)

    async def not_modified(_request: Request, error: Exception) -> Response:
        assert isinstance(error, NotModified)
        return Response(
            status_code=304, headers={"ETag": error.etag, "Cache-Control": CACHE_CONTROL}
        )

    app.add_exception_handler(NotModified, not_modified)
