"""The event store: one global ordered log for every aggregate (eventsourcing on PostgreSQL).

A thin application: it loads aggregates by kind and saves their new events atomically; the
commands are handled by the application services (services/), which it knows nothing of.
Optimistic concurrency is the library's: a second writer of the same aggregate version fails
on the primary key.

Loads (README "How it works"):

- *Latest versions* come from a per-process cache of aggregates at their newest known
  version, checked against the log on every load (one indexed SELECT of the events after the
  cached version), so every process sees every other process's writes. Cached aggregates are
  shared and never changed in place: new events are applied to a copy that replaces them.
  A read is handed the cached aggregate itself; a command gets its own copy.
- *Within one request* an aggregate is loaded once (``request_loads``): the access check's
  load is the one the command then changes, or the read then answers from.
- *Past versions*, and latest versions not cached, start from the nearest snapshot at or
  below the version (infra/snapshots.py) and replay the events after it. Snapshots once
  opened are kept per process (``ByVersion``): a snapshot of a version never changes.
- *A read of a case's personal data* hands the load its read record (``recording``): the
  record is inserted by the same statement that reads the events (a data-modifying CTE, in
  autocommit), so it is committed when the rows arrive and costs no round trip of its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from copy import deepcopy
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    JSONTranscoder,
    MapperDeserialisationError,
    Notification,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import Environment

from domain.case import ReliefCase
from domain.clock import Clock
from domain.contract import DEFAULT_LATE_ENTRY_DAYS, Contract
from domain.contractor import Contractor
from domain.errors import NotFound
from domain.household import Household
from domain.investigation import Investigation
from domain.staff import StaffMember
from infra.codec import FastJSONTranscoder, register_transcodings
from infra.read_audit import READ_INSERT_CTE, ReadRecord
from infra.snapshots import AggregateSnapshot, SnapshotStateError

A = TypeVar("A", bound=Aggregate)
log = logging.getLogger(__name__)

#: Application env keys (set by infra.database.store_env).
CACHE_SIZE = "AGGREGATE_CACHE_MAXSIZE"
SNAPSHOT_INTERVAL = "SNAPSHOT_INTERVAL"
#: Decoded events kept per process (``ReliefLedger.decoded``): this many per cached aggregate.
DECODED_PER_AGGREGATE = 10
#: A version above every version (PostgreSQL bigint's largest).
NEWEST = 9_223_372_036_854_775_807


def replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's projector without its per-event ``isinstance`` check against a runtime
    Protocol, which took a third of the time of loading an aggregate on Python 3.11; every
    event of this log is an aggregate event with ``mutate``."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


#: Values shared between an aggregate and its copy: immutable all the way down.
_IMMUTABLE = (str, int, float, bool, type(None), Decimal, UUID, dt.date, dt.datetime, Enum)


def _copied(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [_copied(v) for v in value]
    if kind is dict:
        return {k: _copied(v) for k, v in value.items()}
    if kind is set:
        return set(value)  # its elements are hashable values
    if kind is tuple:
        return tuple(_copied(v) for v in value)
    if isinstance(value, _IMMUTABLE) or kind is frozenset:
        return value
    params = getattr(kind, "__dataclass_params__", None)
    if params is not None and params.frozen:
        return value  # the domain's values: frozen, with tuples inside (infra/codec.py)
    return deepcopy(value)  # anything else that may change in place (a household member)


def _shareable(event: Any) -> bool:
    """Whether no replay can change ``event``: its values are immutable all the way down
    (frozen dataclasses, tuples, text, numbers...). One holding a list or a dict is not
    shared between replays (``ReliefLedger.decoded``): an apply may keep that container."""
    for value in vars(event).values():
        kind = type(value)
        if kind is tuple or kind is frozenset:
            if not all(_immutable(v) for v in value):
                return False
        elif not _immutable(value):
            return False
    return True


def _immutable(value: Any) -> bool:
    if isinstance(value, _IMMUTABLE):
        return True
    kind = type(value)
    if kind is tuple or kind is frozenset:
        return all(_immutable(v) for v in value)
    params = getattr(kind, "__dataclass_params__", None)
    return params is not None and params.frozen  # the domain's values (infra/codec.py)


def own_copy(aggregate: Any) -> Any:
    """A copy of ``aggregate`` a command may change without touching the original: its
    containers copied, its immutable values (frozen dataclasses, enums, numbers, text,
    dates) shared. Several times cheaper than ``deepcopy``, which copied every value too;
    tests/unit/test_snapshots.py checks it against ``deepcopy`` for every aggregate type."""
    copy = object.__new__(type(aggregate))
    copy.__dict__.update({k: _copied(v) for k, v in vars(aggregate).items()})
    return copy


#: Sends one statement with its parameters on an async connection, answers its rows.
Fetch = Callable[[str, dict[str, Any]], Awaitable[list[Any]]]


class _SnapshotUnopened(Exception):
    """The snapshot of a read did not open: replay every event up to ``version`` instead."""

    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


class RecordUnreadable(Exception):
    """A stored event (or the chain of them) of an aggregate does not open or decode: its
    sealed bytes were changed, moved or forged outside the ledger. Answered as a problem naming
    the aggregate (api/problems.py), never as a crash."""

    def __init__(self, aggregate_id: UUID, cause: str) -> None:
        super().__init__(f"the stored events of {aggregate_id} failed verification: {cause}")
        self.aggregate_id = aggregate_id


class RequestLoads(dict[UUID, Any]):
    """Aggregates loaded during one request, by id (``ABSENT``: looked for, not there).
    ``writes``: the request is a command, so what it loads is its own copy (it will change
    it); else the shared cached aggregate."""

    def __init__(self, *, writes: bool) -> None:
        super().__init__()
        self.writes = writes


#: In ``RequestLoads``: the log holds no aggregate of that id (as the request found it).
ABSENT = object()


class WouldLoad(Exception):
    """Raised inside ``ReliefLedger.loaded_only``: the aggregate is not among the request's
    loads, and loading it would block the event loop on I/O."""


_request_loads: ContextVar[RequestLoads | None] = ContextVar("relief_request_loads", default=None)
_loaded_only: ContextVar[bool] = ContextVar("relief_loaded_only", default=False)


def current_loads() -> RequestLoads | None:
    """The running request's loads (None outside a request)."""
    return _request_loads.get()


@contextmanager
def request_loads(*, writes: bool) -> Iterator[RequestLoads]:
    """Within the block (one request), each aggregate is loaded once. Set on the event loop
    before the request is routed: the worker threads of its dependencies and endpoint run in
    copies of this context and so share the same ``RequestLoads``."""
    loads = RequestLoads(writes=writes)
    token = _request_loads.set(loads)
    try:
        yield loads
    finally:
        _request_loads.reset(token)


class LatestCache:
    """Aggregates at their newest known version (LRU, thread-safe). Entries are shared and
    never changed: a newer version replaces an entry, an older one never does."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[UUID, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, aggregate_id: UUID) -> Any:
        with self._lock:
            found = self._items.get(aggregate_id)
            if found is not None:
                self._items.move_to_end(aggregate_id)
            return found

    def offer(self, aggregate: Any) -> None:
        with self._lock:
            held = self._items.get(aggregate.id)
            if held is not None and held.version >= aggregate.version:
                return
            self._items[aggregate.id] = aggregate
            self._items.move_to_end(aggregate.id)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def discard(self, aggregate_id: UUID) -> None:
        with self._lock:
            self._items.pop(aggregate_id, None)

    def __len__(self) -> int:
        return len(self._items)


class ByVersion:
    """What is derived from an aggregate at a version, by (aggregate id, version): LRU,
    thread-safe. An aggregate's state at a version never changes (its events are never
    updated), so neither does what is derived from it; entries are shared, never changed.
    The ledger keeps opened snapshots in one (a load replays onto a copy) and decoded events
    in another, the API case summaries in a third."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple[UUID, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[UUID, int]) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[UUID, int], aggregate: Any) -> None:
        with self._lock:
            self._items[key] = aggregate
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)


class ReliefLedger(Application[UUID]):
    #: The library names the events table after the application: relief_events.
    name = "relief"
    #: Days after a contract's last day its staff may still record (and so reach) work done
    #: while it ran; the runtime sets it from the settings (RELIEF_LATE_ENTRY_DAYS).
    late_entry_days: int = DEFAULT_LATE_ENTRY_DAYS
    #: The business clock the access checks read "today" on: the runtime's (a simulated or
    #: imported history's own clock in tests and bulk loads), the system's by default.
    business_clock: Clock = Clock()
    snapshot_class = AggregateSnapshot

    def construct_env(self, name: str, env: Any = None) -> Environment:
        """Only the settings given (infra.database.store_env), not the process environment:
        the library would read ``RELIEF_<KEY>`` there as its own ``<KEY>`` (our
        RELIEF_CIPHER_KEY as its CIPHER_KEY, with its own cipher class)."""
        return Environment(name, dict(env or {}))

    def construct_transcoder(self) -> Transcoder:
        """The library's JSON transcoder, reading with orjson (infra.codec)."""
        transcoder = FastJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        register_transcodings(transcoder)

    def construct_repository(self) -> Repository[UUID]:
        # The library's own cache is off: ours (LatestCache) shares aggregates with readers
        # without copies and never changes a shared one in place.
        size = int(self.env.get(CACHE_SIZE) or 0)
        self.latest: LatestCache | None = LatestCache(size) if size > 0 else None
        self.opened: ByVersion | None = ByVersion(size) if size > 0 else None
        self.decoded: ByVersion | None = (
            ByVersion(size * DECODED_PER_AGGREGATE) if size > 0 else None
        )
        self.snapshot_interval = int(self.env.get(SNAPSHOT_INTERVAL) or 0)
        return Repository(event_store=self.events, snapshot_store=self.snapshots)

    # Loads -----------------------------------------------------------------------------------

    def get(
        self,
        kind: type[A],
        aggregate_id: UUID,
        *,
        version: int | None = None,
        recording: ReadRecord | None = None,
    ) -> A:
        """The aggregate of ``kind`` with that id (as it was at ``version``); NotFound when
        there is none of that kind. Outside a request (CLI, workers, tests) the caller gets
        its own copy; inside one, see ``request_loads``. ``recording``: a read record the
        load's statement writes too, if the load reads the database (``recording.written``
        says whether it did; the caller writes it otherwise). Only for a caller that has
        checked the reader may see the aggregate."""
        try:
            if version is not None:
                aggregate = self.reconstruct(aggregate_id, version, recording)
            else:
                loads = _request_loads.get()
                if loads is None:
                    aggregate = self.load_latest(aggregate_id, private=True, recording=recording)
                else:
                    aggregate = loads.get(aggregate_id)
                    if aggregate is ABSENT:
                        raise AggregateNotFoundError(f"Aggregate {aggregate_id!r}")
                    if aggregate is None:
                        aggregate = self.load_latest(
                            aggregate_id, private=loads.writes, recording=recording
                        )
                        loads[aggregate_id] = aggregate
        except AggregateNotFoundError:
            raise NotFound(f"no {kind.__name__} with id {aggregate_id}") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"no {kind.__name__} with id {aggregate_id}")
        return aggregate

    def cached(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """This process's newest known version of the aggregate (shared: never to be
        changed), with no I/O; None when it is not cached or not of ``kind``. It may be older
        than the log: for what never changes after an aggregate's creation only."""
        found = self.latest.get(aggregate_id) if self.latest is not None else None
        return found if isinstance(found, kind) else None

    def loaded(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate this request has loaded already (no I/O), or None."""
        loads = _request_loads.get()
        found = loads.get(aggregate_id) if loads is not None else None
        return found if isinstance(found, kind) else None

    def get_any(self, aggregate_id: UUID, *, version: int | None = None) -> Any:
        """An aggregate of any kind (audit reads); AggregateNotFoundError when none."""
        if version is not None:
            return self.reconstruct(aggregate_id, version)
        loads = _request_loads.get()
        if loads is not None and aggregate_id in loads:
            if loads[aggregate_id] is ABSENT:
                raise AggregateNotFoundError(f"Aggregate {aggregate_id!r}")
            return loads[aggregate_id]
        return self.load_latest(aggregate_id, private=loads is None or loads.writes)

    @staticmethod
    @contextmanager
    def loaded_only() -> Iterator[None]:
        """Within the block, ``get`` and ``get_any`` answer only from the request's loads
        (``load_on_loop``) and raise ``WouldLoad`` where they would read the database: for
        checks run on the event loop, which must not wait on a blocking connection."""
        token = _loaded_only.set(True)
        try:
            yield
        finally:
            _loaded_only.reset(token)

    @staticmethod
    def _check_may_load() -> None:
        if _loaded_only.get():
            raise WouldLoad()

    def load_latest(
        self, aggregate_id: UUID, *, private: bool, recording: ReadRecord | None = None
    ) -> Any:
        """The newest version: the cached one brought up to date with the log (a copy when
        ``private``, the shared one else)."""
        self._check_may_load()
        cached = self.latest.get(aggregate_id) if self.latest is not None else None
        if cached is None:
            aggregate = self.reconstruct(aggregate_id, None, recording)
            if self.latest is not None:
                self.latest.offer(own_copy(aggregate) if private else aggregate)
            return aggregate
        if recording is not None and self._sql_store():
            query, params = self._newer_query(aggregate_id, cached.version, recording)
            rows = self._fetch(query, params)
            recording.written = True
            new = list(self._decoded(aggregate_id, rows))
        else:
            new = list(self._events(aggregate_id, gt=cached.version))
        return self._caught_up(cached, new, private=private)

    def _caught_up(self, cached: Any, new: list[Any], *, private: bool) -> Any:
        """``cached`` with the ``new`` events applied (to a copy), offered to the cache."""
        if not new:
            return own_copy(cached) if private else cached
        aggregate = replay(own_copy(cached), new)
        if self.latest is not None:
            self.latest.offer(aggregate)
        return own_copy(aggregate) if private else aggregate

    def reconstruct(
        self, aggregate_id: UUID, version: int | None, recording: ReadRecord | None = None
    ) -> Any:
        """Replayed from the nearest snapshot at or below ``version`` (None: the newest)."""
        if version is None:
            aggregate = self._replayed(aggregate_id, str(NEWEST), {}, recording)
        else:
            aggregate = self._replayed(
                aggregate_id, "%(version)s::bigint", {"version": version}, recording
            )
        if aggregate is None:
            raise AggregateNotFoundError(f"Aggregate {aggregate_id!r} version {version!r}")
        return aggregate

    #: The version recorded last at or before a moment (audit.chain's time index).
    VERSION_AT = (
        "(SELECT max(originator_version) FROM audit.chain"
        " WHERE originator_id = %(id)s AND recorded_at <= %(moment)s)"
    )

    def as_of(self, aggregate_id: UUID, moment: Any, *, recording: ReadRecord | None = None) -> Any:
        """The aggregate as it stood at ``moment`` (the version recorded last at or before
        it), or None when it did not exist yet; one query (version, snapshot and events, and
        the read record when ``recording``)."""
        return self._replayed(aggregate_id, self.VERSION_AT, {"moment": moment}, recording)

    # Reads on an event loop (the API's case reads) ---------------------------------------------

    def reads_on_loop(self) -> bool:
        """Whether ``read_latest``/``read_as_of`` can answer (the events are in PostgreSQL)."""
        return self.snapshots is not None and self._sql_store()

    async def read_latest(
        self, kind: type[A], aggregate_id: UUID, recording: ReadRecord, fetch: Fetch
    ) -> A | None:
        """Inside a read request: the newest version of a cached aggregate, its newer events
        and the read record in one statement sent by ``fetch`` (an async connection: no
        worker thread); None when it is not cached (the caller loads it as ``get`` does)."""
        loads = _request_loads.get()
        cached = self.cached(kind, aggregate_id)
        if cached is None or loads is None or loads.writes or not self.reads_on_loop():
            return None
        query, params = self._newer_query(aggregate_id, cached.version, recording)
        rows = await fetch(query, params)
        recording.written = True
        aggregate: A = self._caught_up(
            cached, list(self._decoded(aggregate_id, rows)), private=False
        )
        loads[aggregate_id] = aggregate
        return aggregate

    async def load_on_loop(self, aggregate_ids: Iterable[UUID], fetch: Fetch) -> None:
        """Into the request's loads (``request_loads``): the newest version of each aggregate
        (``ABSENT`` when there is none), all read by one statement sent by ``fetch`` (an async
        connection: no worker thread): of a cached aggregate the events after the cached
        version, of another its nearest snapshot and the events after it. A command then
        changes its own copy, its access check having read the same version. What the request
        loaded already is not read again; a store whose events are not in PostgreSQL reads
        nothing (the loads happen where they are asked for)."""
        loads = _request_loads.get()
        if loads is None or not self.reads_on_loop():
            return
        wanted = [i for i in dict.fromkeys(aggregate_ids) if i not in loads]
        if not wanted:
            return
        cached = {i: self.latest.get(i) if self.latest is not None else None for i in wanted}
        rows = await fetch(
            self.LOADS_QUERY,
            {
                "ids": wanted,
                "after": [c.version if c is not None else None for c in cached.values()],
            },
        )
        by_id: dict[UUID, list[Any]] = {i: [] for i in wanted}
        for row in rows:
            by_id[row["originator_id"]].append(row)
        for aggregate_id, found in by_id.items():
            held = cached[aggregate_id]
            if held is not None:
                new = list(self._decoded(aggregate_id, found))
                loads[aggregate_id] = self._caught_up(held, new, private=loads.writes)
                continue
            try:
                aggregate = self._from_rows(aggregate_id, found)
            except _SnapshotUnopened as unopened:
                version = unopened.version
                aggregate = await asyncio.to_thread(
                    lambda: replay(None, self._events(aggregate_id, lte=version))  # noqa: B023
                )
            if aggregate is None:
                loads[aggregate_id] = ABSENT
                continue
            if self.latest is not None and not loads.writes:
                # A command's load is cached when it is saved (``save``), not before: a copy
                # offered now would only be replaced.
                self.latest.offer(aggregate)
            loads[aggregate_id] = aggregate

    #: ``load_on_loop``'s statement: per id, after a cached version the newer events; with
    #: none (``after`` NULL) the newest snapshot and the events after it.
    LOADS_QUERY = (
        "WITH want AS (SELECT * FROM unnest(%(ids)s::uuid[], %(after)s::bigint[]) w(id, after)),"
        " s AS (SELECT DISTINCT ON (r.originator_id) r.originator_id, r.originator_version,"
        " r.topic, r.state FROM want JOIN public.relief_snapshots r"
        " ON r.originator_id = want.id AND want.after IS NULL"
        " ORDER BY r.originator_id, r.originator_version DESC)"
        " SELECT originator_id, true AS snapshot, NULL::bigint AS position, originator_version,"
        " topic, state FROM s UNION ALL"
        " SELECT e.originator_id, false, e.notification_id, e.originator_version, e.topic,"
        " e.state FROM want JOIN public.relief_events e ON e.originator_id = want.id"
        " AND e.originator_version > coalesce(want.after,"
        " (SELECT s.originator_version FROM s WHERE s.originator_id = want.id), 0)"
        " ORDER BY 1, 2 DESC, 4"
    )

    async def read_as_of(
        self, aggregate_id: UUID, moment: Any, recording: ReadRecord, fetch: Fetch
    ) -> Any:
        """``as_of`` with its statement sent by ``fetch`` (see ``read_latest``)."""
        query, params = self._replayed_query(
            aggregate_id, self.VERSION_AT, {"moment": moment}, recording
        )
        rows = await fetch(query, params)
        recording.written = True
        try:
            return self._from_rows(aggregate_id, rows)
        except _SnapshotUnopened as unopened:
            version = unopened.version
        return await asyncio.to_thread(
            lambda: replay(None, self._events(aggregate_id, lte=version))
        )

    # Statements and their rows -----------------------------------------------------------------

    def _sql_store(self) -> bool:
        """Whether the events are in PostgreSQL (not the unit tests' in-memory store)."""
        return hasattr(self.recorder, "datastore")

    def _fetch(self, query: str, params: dict[str, Any]) -> list[Any]:
        recorder: Any = self.recorder
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
            rows: list[Any] = cursor.execute(query, params, prepare=True).fetchall()
        return rows

    def _newer_query(
        self, aggregate_id: UUID, after: int, recording: ReadRecord
    ) -> tuple[str, dict[str, Any]]:
        """The events after version ``after``, read by the statement that writes the read
        record (committed when the rows arrive: autocommit)."""
        query = (
            f"WITH {READ_INSERT_CTE}"
            " SELECT notification_id AS position, originator_version, topic, state"
            " FROM public.relief_events WHERE originator_id = %(id)s"
            " AND originator_version > %(after)s ORDER BY originator_version"
        )
        return query, {"id": aggregate_id, "after": after, **recording.params()}

    def _decoded(self, aggregate_id: UUID, rows: list[Any]) -> Iterator[Any]:
        """Domain events of stored rows (position, originator_version, topic, state):
        unsealed (their seals checked) and decoded. An event this process decoded before from
        the very same row (same position, topic and sealed bytes, compared in full) is the one
        decoded then (``decoded``): unsealing and decoding those bytes again could only give
        it again, so a changed row is still unsealed, and refused, as before."""
        mapper, cache = self.mapper, self.decoded
        try:
            for row in rows:
                version, position, topic = row["originator_version"], row["position"], row["topic"]
                state = bytes(row["state"])
                if cache is not None:
                    held = cache.get((aggregate_id, version))
                    if held is not None and held[0] == state and held[1:3] == (position, topic):
                        yield held[3]
                        continue
                event = mapper.to_domain_event(
                    Notification(
                        id=position,
                        originator_id=aggregate_id,
                        originator_version=version,
                        topic=topic,
                        state=state,
                    )
                )
                if cache is not None and _shareable(event):
                    cache.put((aggregate_id, version), (state, position, topic, event))
                yield event
        except MapperDeserialisationError as error:
            raise RecordUnreadable(aggregate_id, str(error)) from error

    def _replayed(
        self,
        aggregate_id: UUID,
        version_sql: str,
        params: dict[str, Any],
        recording: ReadRecord | None = None,
    ) -> Any:
        """The nearest snapshot at or below the version and the events after it up to the
        version, fetched in one round trip and replayed; None when there are none. With
        ``recording``, the same statement writes the read record."""
        self._check_may_load()
        if not self.reads_on_loop():
            # The in-memory store (unit tests): the library's reads, one after the other.
            version = params.get("version")
            start = self._snapshot_at(aggregate_id, version)
            events = self._events(aggregate_id, gt=start.version if start else None, lte=version)
            return replay(start, events)
        query, params = self._replayed_query(aggregate_id, version_sql, params, recording)
        rows = self._fetch(query, params)
        if recording is not None:
            recording.written = True
        try:
            return self._from_rows(aggregate_id, rows)
        except _SnapshotUnopened as unopened:  # every event up to the same version
            return replay(None, self._events(aggregate_id, lte=unopened.version))

    def _replayed_query(
        self,
        aggregate_id: UUID,
        version_sql: str,
        params: dict[str, Any],
        recording: ReadRecord | None,
    ) -> tuple[str, dict[str, Any]]:
        record = f"{READ_INSERT_CTE}, " if recording is not None else ""
        query = (
            f"WITH {record}v AS (SELECT {version_sql} AS version),"
            " s AS (SELECT originator_version, topic, state FROM public.relief_snapshots"
            " WHERE originator_id = %(id)s AND originator_version <= (SELECT version FROM v)"
            " ORDER BY originator_version DESC LIMIT 1)"
            " SELECT true AS snapshot, NULL::bigint AS position, originator_version, topic, state"
            " FROM s UNION ALL"
            " SELECT false, notification_id, originator_version, topic, state"
            " FROM public.relief_events WHERE originator_id = %(id)s"
            " AND originator_version > coalesce((SELECT originator_version FROM s), 0)"
            " AND originator_version <= (SELECT version FROM v)"
            " ORDER BY snapshot DESC, originator_version"
        )
        params = {"id": aggregate_id, **params}
        if recording is not None:
            params.update(recording.params())
        return query, params

    def _from_rows(self, aggregate_id: UUID, rows: list[Any]) -> Any:
        """The aggregate of a snapshot row (if first) and the event rows after it; None when
        there are no rows; ``_SnapshotUnopened`` when the snapshot does not open."""
        if not rows:
            return None
        start = None
        if rows[0]["snapshot"]:
            head = rows.pop(0)
            start = self._open_snapshot(aggregate_id, head)
            if start is None:
                last = rows[-1] if rows else head
                raise _SnapshotUnopened(last["originator_version"])
        return replay(start, self._decoded(aggregate_id, rows))

    def _open_snapshot(self, aggregate_id: UUID, row: Any) -> Any:
        """The snapshot's aggregate, a copy of its own to replay onto; None when it does not
        open. Opened once per process (``opened``)."""
        key = (aggregate_id, row["originator_version"])
        opened = self.opened.get(key) if self.opened is not None else None
        if opened is None:
            opened = self._opened_snapshot(aggregate_id, row)
            if opened is None:
                return None
            if self.opened is not None:
                self.opened.put(key, opened)
        return own_copy(opened)

    def _opened_snapshot(self, aggregate_id: UUID, row: Any) -> Any:
        stored = StoredEvent(
            originator_id=aggregate_id,
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=bytes(row["state"]),
        )
        try:
            return self.mapper.to_domain_event(stored).mutate(None)  # type: ignore[attr-defined]
        except (MapperDeserialisationError, SnapshotStateError, KeyError, TypeError) as error:
            # A snapshot is a cache of a replay: one that does not open is ignored.
            log.warning("snapshot of %s ignored (%s): replaying its events", aggregate_id, error)
            return None

    def _events(
        self, aggregate_id: UUID, *, gt: int | None = None, lte: int | None = None
    ) -> Iterator[Any]:
        events = self.events.get(aggregate_id, gt=gt, lte=lte)
        try:
            yield from events
        except MapperDeserialisationError as error:
            raise RecordUnreadable(aggregate_id, str(error)) from error

    def _snapshot_at(self, aggregate_id: UUID, version: int | None) -> Any:
        if self.snapshots is None:
            return None
        try:
            found = list(self.snapshots.get(aggregate_id, desc=True, limit=1, lte=version))
            return found[0].mutate(None) if found else None  # type: ignore[attr-defined]
        except (MapperDeserialisationError, SnapshotStateError, KeyError, TypeError) as error:
            # A snapshot is a cache of a replay: one that does not open is ignored.
            log.warning("snapshot of %s ignored (%s): replaying its events", aggregate_id, error)
            return None

    def exists(self, aggregate_id: UUID) -> bool:
        loads = _request_loads.get()
        if loads is not None and aggregate_id in loads:
            return loads[aggregate_id] is not ABSENT
        if self.latest is not None and self.latest.get(aggregate_id) is not None:
            return True
        self._check_may_load()
        recorder: Any = self.recorder
        if not hasattr(recorder, "datastore"):  # the in-memory store (unit tests)
            return aggregate_id in self.repository
        # Not the library's ``in repository``, which loads (and unseals) the whole aggregate.
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
            row = cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM public.relief_events WHERE originator_id = %s)"
                " AS found",
                (aggregate_id,),
                prepare=True,
            ).fetchone()
        return bool(row and row["found"])

    # Saves -----------------------------------------------------------------------------------

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """Record the aggregates' new events atomically; then they are the newest versions
        (cached), and a snapshot is taken of each that crossed a multiple of the interval."""
        before = {a.id: a.version - len(a.pending_events) for a in objs if isinstance(a, Aggregate)}
        recordings = super().save(*objs, **kwargs)
        in_request = _request_loads.get() is not None
        for aggregate in objs:
            if not isinstance(aggregate, Aggregate):
                continue
            if self.latest is not None and in_request:
                # A request's saved aggregate is done with (one command per request; the
                # route only reads it): it is the newest version, shared from now on. Other
                # callers may go on changing theirs, so theirs are not shared.
                self.latest.offer(aggregate)
            if self.snapshot_due(before[aggregate.id], aggregate.version):
                self.snapshot(aggregate)
        return recordings

    def snapshot_due(self, version_before: int, version: int) -> bool:
        """Whether a save from ``version_before`` to ``version`` crossed a multiple of the
        snapshot interval (0: snapshots are not taken)."""
        interval = self.snapshot_interval
        return bool(interval) and version // interval > version_before // interval

    def snapshot(self, aggregate: Any) -> bool:
        """Store a snapshot of ``aggregate`` (at its version); False when it cannot be taken
        (the events are recorded either way: a snapshot only spares replays)."""
        if self.snapshots is None:
            return False
        try:
            self.snapshots.put([AggregateSnapshot.take(aggregate)])
        except Exception as error:  # never fail a recorded command for its snapshot
            log.warning("no snapshot of %s v%s: %s", aggregate.id, aggregate.version, error)
            return False
        return True

    def take_snapshots(self, interval: int, progress: Any = None) -> int:
        """Snapshots of every aggregate at each multiple of ``interval`` of its versions not
        snapshotted yet (for a log written before snapshots, or with another interval);
        returns how many were taken. Safe beside running writers (a snapshot is of recorded
        events only; one taken twice is refused by its key and skipped)."""
        if self.snapshots is None or interval < 1:
            return 0
        recorder: Any = self.recorder
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
            rows = cursor.execute(
                "SELECT originator_id, max(originator_version) AS head FROM public.relief_events"
                " GROUP BY originator_id HAVING max(originator_version) >= %s",
                (interval,),
            ).fetchall()
            existing = {
                (r["originator_id"], r["originator_version"])
                for r in cursor.execute(
                    "SELECT originator_id, originator_version FROM public.relief_snapshots"
                ).fetchall()
            }
        taken = 0
        for done, row in enumerate(rows, 1):
            aggregate_id = row["originator_id"]
            batch = []
            aggregate = None
            for event in self._events(aggregate_id):
                aggregate = event.mutate(aggregate)
                version = event.originator_version
                if version % interval == 0 and (aggregate_id, version) not in existing:
                    batch.append(AggregateSnapshot.take(aggregate))  # state encoded now
            for snapshot in batch:
                try:
                    self.snapshots.put([snapshot])
                    taken += 1
                except Exception as error:  # a concurrent taker's, or a value it cannot carry
                    log.warning("no snapshot of %s: %s", aggregate_id, error)
            if progress is not None:
                progress(done, len(rows))
        return taken

    def clear_snapshots(self) -> int:
        recorder: Any = self.recorder
        with recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute("DELETE FROM public.relief_snapshots")
            return int(cursor.rowcount)

    # Reads by kind, for views and scope checks ---------------------------------------------

    def get_case(self, case_id: UUID, *, version: int | None = None) -> ReliefCase:
        return self.get(ReliefCase, case_id, version=version)

    def get_household(self, household_id: UUID) -> Household:
        return self.get(Household, household_id)

    def get_contractor(self, contractor_id: UUID) -> Contractor:
        return self.get(Contractor, contractor_id)

    def get_contract(self, contract_id: UUID) -> Contract:
        return self.get(Contract, contract_id)

    def get_staff(self, staff_id: UUID) -> StaffMember:
        return self.get(StaffMember, staff_id)

    def get_investigation(self, investigation_id: UUID) -> Investigation:
        return self.get(Investigation, investigation_id)
