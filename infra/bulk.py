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

It assumes it is the only writer of the aggregates it touches while it runs (a seed or an
import into a quiet ledger); a concurrent writer makes the next flush fail with the library's
conflict error, which stops the run rather than overwrite anything.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from domain.errors import NotFound
from infra.ledger import A, ReliefLedger, own_copy
from infra.read_audit import ReadRecord

COPY_EVENTS = (
    "COPY public.relief_events (originator_id, originator_version, topic, state)"
    " FROM STDIN (FORMAT BINARY)"
)


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
        self._stored: set[UUID] | None = None  # ids in the log (``_stored_ids``)
        self.events_written = 0

    @property
    def kept_events(self) -> int:
        """Events kept in memory, not yet written."""
        return self._pending

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
        return aggregate_id in self._stored_ids()

    def _stored_ids(self) -> set[UUID]:
        """Ids of the aggregates in the log: read once (one query, where asking for each
        person of each record took a round trip apiece), then kept up to date by ``flush``.
        A writer beside the run adding the same aggregate meanwhile makes a flush fail on the
        primary key, as it would have had this asked the database each time (module doc)."""
        if self._stored is None:
            recorder: Any = self.recorder
            with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                rows = cursor.execute(
                    "SELECT DISTINCT originator_id FROM public.relief_events"
                ).fetchall()
            self._stored = {row["originator_id"] for row in rows}
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

    def _maybe_flush(self) -> None:
        if self._pending >= self.flush_events:
            self.flush()

    def _copy(self, aggregates: list[Any]) -> int:
        """The aggregates' new events, in one transaction, by COPY; then their snapshots."""
        before = {a.id: a.version - len(a.pending_events) for a in aggregates}
        stored = [
            self.mapper.to_stored_event(event) for a in aggregates for event in a.collect_events()
        ]
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
                for event in stored:
                    copy.write_row(
                        (event.originator_id, event.originator_version, event.topic, event.state)
                    )
        interval = self.snapshot_interval
        if interval:
            for aggregate in aggregates:
                if aggregate.version // interval > before[aggregate.id] // interval:
                    self.snapshot(aggregate)
        return len(stored)

    def flush(self) -> int:
        """Write every kept event in one transaction; the aggregates stay cached."""
        if not self._dirty:
            return 0
        aggregates = list(self._dirty.values())
        written = self._copy(aggregates)
        self._dirty.clear()
        self._pending = 0
        for aggregate in aggregates:
            self._remember(aggregate)
            if self._stored is not None:
                self._stored.add(aggregate.id)
        self.events_written += written
        return written
