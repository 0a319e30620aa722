"""The bulk path: the ledger's own commands, saved in large transactions.

Seeding a province or importing a legacy system's records runs every record through the same
application services as the HTTP API (so every rule of the domain holds and the events are
exactly the ones those commands record), but over a ``BulkLedger``: a store that keeps the
aggregates they change in memory and writes their events in one transaction per few hundred
events instead of one per command.

Each record is one *unit*: the aggregates it reads are copied into the unit and the unit's
changes are kept only if the whole record succeeds. A record refused half-way leaves nothing
behind, not even in memory; the records before it are unaffected.

Transactions hold about ``flush_events`` events (whole units only, so a unit is never split
between two transactions). Each is written with COPY (binary) under the store's own table lock
and NOTIFY, as the library's insert would, but without its per-row INSERT: the stored events
are the application mapper's (sealed to their place), the audit-chain trigger fires for each
row, and a version taken meanwhile by another writer fails the COPY on the primary key.

A transaction is written on a writer thread of its own while the next units run (their
commands are Python; the COPY and the audit-chain trigger are the server's): one transaction
in flight at a time, in order, its rows and snapshots encoded before it is handed over, and
its failure raised by the next hand-over, ``flush`` or ``close``.

While ``collector_per_transaction`` is on (``relief import`` runs in it), the cyclic garbage
collector runs once per transaction, at the hand-over, instead of every 700 allocations: the
units make hundreds of thousands of objects per transaction, most freed by reference counting,
and the cached aggregates grow the heap, so the collector's young passes and the full passes
they set off (each walking every cached aggregate) were a tenth of an import's time.

It assumes it is the only writer of the aggregates it touches while it runs (a seed or an
import into a quiet ledger); a concurrent writer makes the next flush fail with the library's
conflict error, which stops the run rather than overwrite anything.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg.rows import tuple_row

from domain.errors import NotFound
from infra.ledger import A, ReliefLedger, own_copy
from infra.read_audit import ReadRecord
from infra.snapshots import AggregateSnapshot

COPY_EVENTS = (
    "COPY public.relief_events (originator_id, originator_version, topic, state)"
    " FROM STDIN (FORMAT BINARY)"
)

log = logging.getLogger(__name__)


@dataclass
class Transaction:
    """One transaction's rows, encoded (sealed) before it is handed to the writer thread."""

    events: list[StoredEvent]
    snapshots: list[StoredEvent]


class BulkLedger(ReliefLedger):
    name = "relief"

    def __init__(
        self,
        env: dict[str, str],
        *,
        flush_events: int = 500,
        cache_size: int = 50_000,
    ) -> None:
        super().__init__(env=env)
        self.latest = None  # it keeps its own (below): no shared cache, no copies into one
        self.flush_events = flush_events
        self.cache_size = cache_size
        self._dirty: dict[UUID, Any] = {}  # aggregates with unsaved events
        self._clean: OrderedDict[UUID, Any] = OrderedDict()  # saved, kept for reuse (LRU)
        self._unit: dict[UUID, Any] | None = None  # copies read or changed by the current unit
        self._pending = 0
        self._stored: set[bytes] | None = None  # ids in the log, as bytes (``_stored_ids``)
        self.events_written = 0
        self._writer: ThreadPoolExecutor | None = None  # made at the first hand-over
        self._in_flight: Future[int] | None = None
        self._in_flight_events = 0
        self._collecting = False  # ``collector_per_transaction`` is on
        self._handed_over = 0

    @property
    def kept_events(self) -> int:
        """Events kept in memory or being written, not yet written."""
        return self._pending + self._in_flight_events

    # Reads see unsaved work ------------------------------------------------------------------

    def _lookup(self, aggregate_id: UUID) -> Any:
        if self._unit is not None and aggregate_id in self._unit:
            return self._unit[aggregate_id]
        found = self._dirty.get(aggregate_id)
        if found is None:
            found = self._clean.get(aggregate_id)
            if found is not None:
                self._clean.move_to_end(aggregate_id)
        return found

    def get(
        self,
        kind: type[A],
        aggregate_id: UUID,
        *,
        version: int | None = None,
        recording: ReadRecord | None = None,
    ) -> A:
        if version is not None or recording is not None:
            return super().get(kind, aggregate_id, version=version, recording=recording)
        found = self._lookup(aggregate_id)
        if found is None:
            self._settle()  # the log as this run has written it so far
            found = super().get(kind, aggregate_id)
            self._remember(found)
        if not isinstance(found, kind):
            raise NotFound(f"no {kind.__name__} with id {aggregate_id}")
        if self._unit is not None and aggregate_id not in self._unit:
            mine: A = own_copy(found)  # the unit works on its own copy until it succeeds
            self._unit[aggregate_id] = mine
            return mine
        return found

    def exists(self, aggregate_id: UUID) -> bool:
        if self._lookup(aggregate_id) is not None:
            return True
        if not self._sql_store():
            return super().exists(aggregate_id)
        return aggregate_id.bytes in self._stored_ids()

    def _stored_ids(self) -> set[bytes]:
        """Ids of the aggregates in the log: read once (one query, where asking for each
        person of each record took a round trip apiece), then kept up to date by ``flush``.
        A writer beside the run adding the same aggregate meanwhile makes a flush fail on the
        primary key, as it would have had this asked the database each time (module doc).
        Kept as their 16 bytes, read as such (binary, plain rows): a million-event log has a
        quarter of a million ids, and as UUIDs in dict rows building them took a sixth of
        the import's Python time, and the collector walked every one of them in each full
        pass (bytes are not tracked by it)."""
        if self._stored is None:
            self._settle()
            recorder: Any = self.recorder
            with (
                recorder.datastore.get_connection() as conn,
                conn.cursor(binary=True, row_factory=tuple_row) as cursor,
            ):
                rows = cursor.execute(
                    "SELECT DISTINCT uuid_send(originator_id) FROM public.relief_events"
                ).fetchall()
            self._stored = {row[0] for row in rows}
        return self._stored

    def _remember(self, aggregate: Any) -> None:
        self._clean[aggregate.id] = aggregate
        self._clean.move_to_end(aggregate.id)
        while len(self._clean) > self.cache_size:
            self._clean.popitem(last=False)

    # Writes are kept, then flushed together --------------------------------------------------

    def save(self, *objs: Any, **kwargs: Any) -> list[Any]:
        for aggregate in objs:
            if aggregate is None:
                continue
            if self._unit is not None:
                self._unit[aggregate.id] = aggregate
            else:
                self._keep(aggregate)
        if self._unit is None:
            self._maybe_flush()
        return []

    def _keep(self, aggregate: Any) -> None:
        new = len(aggregate.pending_events)
        if not new:
            return
        previous = self._dirty.get(aggregate.id)
        if previous is not None and previous is not aggregate:
            raise RuntimeError(f"two copies of {aggregate.id} with unsaved events")
        self._clean.pop(aggregate.id, None)
        self._dirty[aggregate.id] = aggregate
        self._pending += new

    @contextmanager
    def unit(self) -> Iterator[None]:
        """One record: all its changes are kept, or none (the exception propagates)."""
        if self._unit is not None:
            raise RuntimeError("units do not nest")
        self._unit = {}
        try:
            yield
        except BaseException:
            self._unit = None
            raise
        changed, self._unit = self._unit, None
        for aggregate_id, aggregate in changed.items():
            if aggregate.pending_events:
                # The copy carries the original's unsaved events too: it replaces it.
                replaced = self._dirty.pop(aggregate_id, None)
                if replaced is not None:
                    self._pending -= len(replaced.pending_events)
                self._keep(aggregate)
        self._maybe_flush()

    #: Under ``collector_per_transaction``, every this many transactions the hand-over's
    #: collection is a full one (cycles among long-lived objects, e.g. evicted aggregates).
    FULL_COLLECTION_EVERY = 100

    @contextmanager
    def collector_per_transaction(self) -> Iterator[None]:
        """Within the block the cyclic garbage collector is off except at each hand-over,
        where it collects what the transaction's units left (young objects; all of them every
        ``FULL_COLLECTION_EVERY`` transactions); on again when the block ends, however it
        ends. Nothing if the collector is off already (the caller's choice stands)."""
        if not gc.isenabled() or self._collecting:
            yield
            return
        gc.disable()
        self._collecting = True
        try:
            yield
        finally:
            self._collecting = False
            gc.enable()

    #: While ``writer_turns`` is on, the interpreter offers the other thread its turn this
    #: often (seconds; its default is 0.005).
    WRITER_SWITCH_S = 0.0005

    @contextmanager
    def writer_turns(self) -> Iterator[None]:
        """Within the block, a thread waiting for the interpreter's lock gets it within half a
        millisecond, not five: the writer thread's round trips (COPY, commit) each waited out
        the main thread's turn at the commands (the lock step of a 1M import's transactions,
        1.8 s, fell to 0.44 s). The interval is put back however the block ends."""
        before = sys.getswitchinterval()
        sys.setswitchinterval(min(before, self.WRITER_SWITCH_S))
        try:
            yield
        finally:
            sys.setswitchinterval(before)

    def _collect(self) -> None:
        if not self._collecting:
            return
        self._handed_over += 1
        gc.collect(2 if self._handed_over % self.FULL_COLLECTION_EVERY == 0 else 1)

    def _maybe_flush(self) -> None:
        if self._pending >= self.flush_events:
            self._hand_over()

    def _hand_over(self) -> None:
        """The kept events, encoded here, written on the writer thread while the next units
        run (after the transaction before them: one in flight at a time); the aggregates stay
        cached."""
        if not self._dirty:
            return
        aggregates = list(self._dirty.values())
        transaction = self._encoded(aggregates)
        self._settle()
        self._dirty.clear()
        self._pending = 0
        for aggregate in aggregates:
            self._remember(aggregate)
            if self._stored is not None:
                self._stored.add(aggregate.id.bytes)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="bulk-writer")
        self._in_flight_events = len(transaction.events)
        self._in_flight = self._writer.submit(self._write, transaction)
        self._collect()  # while the transaction is written

    def _encoded(self, aggregates: list[Any]) -> Transaction:
        """The aggregates' new events and the snapshots due, as stored (sealed) rows."""
        before = {a.id: a.version - len(a.pending_events) for a in aggregates}
        events = [
            self.mapper.to_stored_event(event) for a in aggregates for event in a.collect_events()
        ]
        snapshots = []
        store = self.snapshots
        due = [a for a in aggregates if self.snapshot_due(before[a.id], a.version)]
        if store is not None:
            for aggregate in due:
                try:
                    snapshot = AggregateSnapshot.take(aggregate)
                    snapshots.append(store.mapper.to_stored_event(snapshot))
                except Exception as error:  # a snapshot only spares replays
                    log.warning("no snapshot of %s: %s", aggregate.id, error)
        return Transaction(events, snapshots)

    def _write(self, transaction: Transaction) -> int:
        """One transaction by COPY under the store's lock and NOTIFY; then its snapshots."""
        recorder: Any = self.recorder
        with (
            recorder.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as cursor,
        ):
            recorder._lock_table(cursor)  # the store's lock: positions commit in order
            recorder._notify_channel(cursor)
            with cursor.copy(COPY_EVENTS) as copy:
                copy.set_types(["uuid", "int8", "text", "bytea"])
                for event in transaction.events:
                    copy.write_row(
                        (event.originator_id, event.originator_version, event.topic, event.state)
                    )
        if transaction.snapshots and self.snapshots is not None:
            try:
                self.snapshots.recorder.insert_events(transaction.snapshots)
            except Exception as error:  # never fail written events for their snapshots
                log.warning("no snapshots of %d aggregates: %s", len(transaction.snapshots), error)
        return len(transaction.events)

    def _settle(self) -> None:
        """Wait for the transaction in flight; its failure is raised here."""
        if self._in_flight is None:
            return
        in_flight, self._in_flight = self._in_flight, None
        try:
            self.events_written += in_flight.result()
        finally:
            self._in_flight_events = 0

    def flush(self) -> int:
        """Write every kept event (and wait for it); the aggregates stay cached."""
        before = self.events_written
        self._hand_over()
        self._settle()
        return self.events_written - before

    def close(self) -> None:
        """Wait for the transaction in flight (its failure raised), then close the store."""
        try:
            self._settle()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
            super().close()
