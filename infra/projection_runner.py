"""Runs projections: feeds events from the PostgreSQL log or from Kafka into read-model tables.

Exactly-once effect: every batch writes the read-model rows and the new position in one
transaction, so a crash anywhere leaves either both or neither. Catch-up commits many events per
transaction (one position per batch), unlike the library's stock runner that commits per event.

A projection's tables live in a schema per build generation; readers see the active generation
through views in ``read_models``. A rebuild fills a new generation from position 0 while the old
one keeps serving, then switches the views in one transaction.

A projection that fails on an event stops with an error naming that event's position; the batch
is rolled back, so it resumes from that event once the code or data is fixed. A transient
failure (connection lost, session ended, serialization failure: ``infra.faults``) does not
halt it: the batch is rolled back and run again after a pause.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification, StoredEvent
from eventsourcing.utils import get_topic
from psycopg import sql
from psycopg_pool import ConnectionPool

from infra.faults import is_transient
from infra.schema import CONTROL_SCHEMA, create_generation, generation_schema, point_views
from projections.base import Projection, RecordedEvent
from projections.sets import work_meanwhile

log = logging.getLogger(__name__)


class ProjectionHalted(Exception):
    """A projection could not apply an event; it stops there until fixed."""

    def __init__(self, projection: str, position: int, topic: str, cause: BaseException) -> None:
        super().__init__(
            f"projection {projection} stopped at position {position} ({topic}): "
            f"{type(cause).__name__}: {cause}"
        )
        self.projection = projection
        self.position = position
        self.topic = topic
        self.cause = cause


class FeedMismatch(Exception):
    pass


@dataclass(frozen=True)
class Target:
    """Where a runner writes: the registry's active generation, or one fixed schema."""

    projection: type[Projection]
    fixed_schema: str | None = None

    def schema(self, conn: psycopg.Connection) -> str:
        if self.fixed_schema is not None:
            return self.fixed_schema
        # FOR SHARE: a rebuild's switch (FOR UPDATE) waits for this batch, and this batch waits
        # for the switch, so no batch ever commits into a generation that is being retired.
        row = conn.execute(
            f"SELECT active_generation FROM {CONTROL_SCHEMA}.projections WHERE name = %s FOR SHARE",
            (self.projection.name,),
        ).fetchone()
        if row is None:
            raise LookupError(f"projection {self.projection.name} is not initialised")
        return generation_schema(self.projection.name, row[0])


def advance_tracking(
    conn: psycopg.Connection, position: int, events: Sequence[RecordedEvent]
) -> None:
    """Move the generation's position past a batch that applied ``events``; when it brought
    events the projection reads and wrote rows, the marks answers' ETags follow
    (api/etags.py) move too, in the same statement (``MARKS``), and the content position."""
    if not events:
        conn.execute("UPDATE _tracking SET position = %s, updated_at = now()", (position,))
        return
    lock_marks(conn)
    conn.execute(
        MARKS + " UPDATE _tracking SET position = %(position)s, updated_at = now(),"
        " content_position = CASE WHEN EXISTS (SELECT FROM written) THEN %(position)s"
        " ELSE content_position END",
        marks_params(position, events),
    )


#: The marks of a batch that wrote rows, the head of a statement (``written``: whether it
#: did), none moving back (a rebuild's stages may commit positions out of order):
#: - each table written, from the transaction's own statistics (inserted, updated or deleted
#:   rows, COPY included): no projection lists them;
#: - the minute of the batch's earliest recorded event, at the batch's position or the mark
#:   of the last minute before it if higher; the marks of later minutes at or below that are
#:   dropped, so marks rise with their minutes and an answer as things stood at a past moment
#:   follows the mark of the last minute up to that moment's (batches of events recorded
#:   after it, today's commands, leave it as it is).
#: - each county of a scoped table written (``Projection.scoped``), as its triggers noted it
#:   in ``_scope_touched``, which this empties.
#: A batch whose events changed no row (a projection reading a topic for some events of it
#: only) leaves every answer's tag as it was.
MARKS = (
    "WITH touched AS (DELETE FROM _scope_touched RETURNING relname, scope),"
    " scopes AS (INSERT INTO _scope_marks (relname, scope, content_position)"
    " SELECT relname, scope, %(position)s FROM touched"
    " ON CONFLICT (relname, scope) DO UPDATE SET content_position"
    " = greatest(_scope_marks.content_position, excluded.content_position)),"
    " written AS ("
    " INSERT INTO _table_marks (relname, content_position)"
    " SELECT relname, %(position)s FROM pg_stat_xact_user_tables"
    " WHERE schemaname = current_schema() AND left(relname, 1) <> '_'"
    " AND n_tup_ins + n_tup_upd + n_tup_del > 0"
    " ON CONFLICT (relname) DO UPDATE SET content_position"
    " = greatest(_table_marks.content_position, excluded.content_position)"
    " RETURNING 1),"
    " prior AS (SELECT greatest(%(position)s, coalesce((SELECT content_position"
    " FROM _moment_marks WHERE recorded_by <= %(minute)s ORDER BY recorded_by DESC LIMIT 1), 0))"
    " AS mark),"
    " later AS (DELETE FROM _moment_marks WHERE recorded_by > %(minute)s"
    " AND content_position <= (SELECT mark FROM prior) AND EXISTS (SELECT FROM written)),"
    " moment AS (INSERT INTO _moment_marks (recorded_by, content_position)"
    " SELECT %(minute)s, mark FROM prior WHERE EXISTS (SELECT FROM written)"
    " ON CONFLICT (recorded_by) DO UPDATE SET content_position"
    " = greatest(_moment_marks.content_position, excluded.content_position))"
)


def mark_batch(conn: psycopg.Connection, position: int, events: Sequence[RecordedEvent]) -> None:
    """The marks of a batch alone (``MARKS``), for a writer whose position another keeps (a
    rebuild's trailing stage)."""
    if events:
        lock_marks(conn)
        conn.execute(MARKS + " SELECT 1", marks_params(position, events))


def lock_marks(conn: psycopg.Connection) -> None:
    """Take the generation's marks until the transaction ends (it commits right after
    writing them): a rebuild's two stages upserting the same mark rows in different orders
    deadlocked, which failed the rebuild."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()))")


def marks_params(position: int, events: Sequence[RecordedEvent]) -> dict[str, Any]:
    return {"position": position, "minute": minute_of(min(e.timestamp for e in events))}


def minute_of(moment: dt.datetime) -> dt.datetime:
    """The minute a moment falls in (its start): the grain of the moment marks."""
    return moment.astimezone(dt.UTC).replace(second=0, microsecond=0)


def claim_tracking(conn: psycopg.Connection, feed: str) -> int:
    """Lock this generation's tracking row for the batch and return its position."""
    conn.execute(
        "INSERT INTO _tracking (feed, position) VALUES (%s, 0) ON CONFLICT DO NOTHING", (feed,)
    )
    row = conn.execute("SELECT feed, position FROM _tracking FOR UPDATE").fetchone()
    assert row is not None
    if row[0] != feed:
        raise FeedMismatch(
            f"this generation is built from the {row[0]} feed, not {feed}; rebuild to switch"
        )
    return int(row[1])


def record_error(pool: ConnectionPool, halted: ProjectionHalted | None, name: str) -> None:
    with pool.connection() as conn:
        conn.execute(
            f"UPDATE {CONTROL_SCHEMA}.projections SET last_error = %s, last_error_position = %s,"
            " updated_at = now() WHERE name = %s",
            (str(halted) if halted else None, halted.position if halted else None, name),
        )


def halts_projection(error: BaseException) -> bool:
    """Whether ``error`` stops the projection at an event (a bad event, a bug) rather than
    being a passing failure the run loop retries (database or broker away)."""
    return not is_transient(error)


class BatchApplier:
    """Applies a decoded batch to the projection inside the caller's transaction.

    The projection applies the batch as sets. When that fails, the batch is applied again one
    event at a time (each in a savepoint) to find the event it fails on, which the halt names;
    the caller's transaction is rolled back either way."""

    def __init__(self, projection: Projection) -> None:
        self.projection = projection

    def apply(self, conn: psycopg.Connection, events: Sequence[RecordedEvent]) -> None:
        if not events:
            return
        try:
            # Pipeline mode: the server runs a statement while the next is being prepared;
            # a read waits for its own answer.
            with conn.pipeline(), conn.transaction(), conn.cursor() as cursor:
                # A projection runs the same statements batch after batch: each is prepared at
                # its first run on the session and keeps one generic plan, instead of being
                # planned again every batch (a third of the server's time in red_flags'
                # catch-up went to planning).
                conn.prepare_threshold = 0
                cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                # The read models are in memory: an index probe costs about what a page read
                # in order does. At the default (4), a table of a hundred rows was scanned
                # once per record rather than probed (red_flags' contract work: 15 ms a
                # batch of 788 records, 6.5 ms probed).
                cursor.execute("SET LOCAL random_page_cost = 1.1")
                self.projection.apply_batch(cursor, events)
            return
        except Exception as error:
            if len(events) == 1 or not halts_projection(error):
                # A passing failure is not looked for event by event: the run loop sees
                # through the halt (infra.faults) and runs the batch again.
                raise self._halt(events[0], error) from error
            batch_error = error
        for recorded in events:
            try:
                with conn.transaction(), conn.cursor() as cursor:
                    self.projection.apply_batch(cursor, [recorded])
            except Exception as error:
                raise self._halt(recorded, error) from error
        # Every event applies alone but not the batch: name the batch's first event.
        raise self._halt(events[0], batch_error) from batch_error

    def _halt(self, recorded: RecordedEvent, error: BaseException) -> ProjectionHalted:
        return ProjectionHalted(self.projection.name, recorded.position, recorded.topic, error)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a batch is decoded and applied.

    A batch makes hundreds of thousands of short-lived objects (decoded events, fact rows,
    statement parameters), which reference counting frees; the collector, triggered every 700
    allocations, walked the young ones some fifteen times per 1,000 events: a seventh of
    red_flags' Python time in catch-up. Cycles the batch leaves are collected after it."""
    if not gc.isenabled():  # paused already (another runner's batch in this process)
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def decode_notification(
    mapper: Mapper[Any],
    projection_name: str,
    notification: Notification | StoredEvent,
    position: int,
) -> RecordedEvent:
    try:
        event = mapper.to_domain_event(notification)
    except Exception as error:
        raise ProjectionHalted(projection_name, position, notification.topic, error) from error
    return RecordedEvent(
        position=position,
        originator_id=notification.originator_id,  # type: ignore[arg-type]
        originator_version=notification.originator_version,
        topic=notification.topic,
        event=event,
    )


def decode_event(
    mapper: Mapper[Any],
    projection_name: str,
    position: int,
    originator_id: Any,
    version: int,
    topic: str,
    state: bytes,
    fields: frozenset[str] | None = None,
) -> RecordedEvent:
    """The event at ``position`` of the log, from its row: read by the ledger's mapper
    directly (``infra.sealing.PlaceBoundMapper.event_at``; ``fields``: only these), by way of
    a notification otherwise."""
    event_at = getattr(mapper, "event_at", None)
    if event_at is None:
        # A Notification carries the position: a seal is judged by its place in the log.
        stored = Notification(
            id=position,
            originator_id=originator_id,
            originator_version=version,
            topic=topic,
            state=state,
        )
        return decode_notification(mapper, projection_name, stored, position)
    try:
        event = event_at(position, originator_id, version, topic, state, fields)
    except Exception as error:
        raise ProjectionHalted(projection_name, position, topic, error) from error
    return RecordedEvent(position, originator_id, version, topic, event)


def fields_by_topic(projection: type[Projection]) -> dict[str, frozenset[str]]:
    """The only fields a feed decodes of the events of each topic the projection names in
    ``event_fields`` (with their timestamp); the topics it does not name come whole."""
    return {
        get_topic(event_class): fields | {"timestamp"}
        for event_class, fields in (projection.event_fields() or {}).items()
    }


@dataclass
class _Batch:
    """Rows of the log read for one batch: after ``position``, at most ``limit`` of them, up
    to ``stop`` (the ``head`` when read, or lower). ``events``: those decoded so far."""

    position: int
    limit: int
    head: int
    stop: int
    rows: list[tuple[Any, ...]]
    events: list[RecordedEvent] = field(default_factory=list)

    @property
    def full(self) -> bool:
        return len(self.rows) == self.limit

    @property
    def last(self) -> int:
        """The position the batch covers up to: its last row when full, else ``stop``."""
        return int(self.rows[-1][0]) if self.full else self.stop

    def decoded(
        self, decode: Callable[[tuple[Any, ...]], RecordedEvent], budget_s: float | None = None
    ) -> list[RecordedEvent]:
        """The rows decoded: every one, or (``budget_s``) those decoded before that many seconds
        have passed. An event that does not decode raises here: ``meanwhile`` decodes a batch
        before its turn, and leaves such an event to the batch that holds it."""
        rows = self.rows
        until = None if budget_s is None else time.perf_counter() + budget_s
        while len(self.events) < len(rows):
            if until is not None and time.perf_counter() > until:
                break
            self.events.append(decode(rows[len(self.events)]))
        return self.events


class PostgresFeedRunner:
    """Feeds a projection from the global log in PostgreSQL (the default feed)."""

    feed = "postgres"

    def __init__(
        self,
        pool: ConnectionPool,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        projection: type[Projection],
        *,
        batch_size: int = 1000,
        catch_up_batch: int | None = None,
        schema: str | None = None,
        before_commit: Callable[[int], None] | None = None,
        linger_s: float = 0.0,
    ) -> None:
        self.pool = pool
        self.recorder = recorder
        # Live, woken by a commit: wait this long for the commits right behind it, so they are
        # applied as one batch (a batch's fixed cost, several statements per projection, paid
        # once for them, not once per command).
        self.linger_s = linger_s
        self.mapper = mapper
        self.projection_class = projection
        self.applier = BatchApplier(projection())
        self.topics = frozenset(projection.topics())
        self.topic_list = sorted(self.topics)
        self.target = Target(projection, schema)
        self._fields = fields_by_topic(projection)
        self.batch_size = batch_size
        # A runner whose last batch was full is behind: it takes up to ``catch_up_batch``
        # events at a time until it reaches the head (fewer transactions and statements for
        # the same rows: a fifth of the server's time, a tenth of ours, at 5,000 instead of
        # 1,000), then ``batch_size`` again. The open alerts do not depend on batch boundaries.
        self.catch_up_batch = max(batch_size, catch_up_batch or batch_size)
        self._next_batch = batch_size
        self.before_commit = before_commit  # test hook: simulate a crash before commit
        self.reached_head = False  # the last batch reached the head as it stood then
        self._ahead: _Batch | None = None  # the next batch's rows, read with this one
        table = sql.SQL("{}.{}").format(
            sql.Identifier(recorder.datastore.schema),  # type: ignore[attr-defined]
            sql.Identifier(recorder.events_table_name),  # type: ignore[attr-defined]
        )
        self._head_sql = sql.SQL("SELECT max(notification_id) FROM {}").format(table)
        self._select_sql = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {}"
            " WHERE notification_id > %s AND notification_id <= %s AND topic = ANY(%s)"
            " ORDER BY notification_id LIMIT %s"
        ).format(table)

    @property
    def name(self) -> str:
        return self.projection_class.name

    def run_once(self, *, up_to: int | None = None) -> int:
        """Apply the next batch in one transaction; return how many events it covered."""
        with self.pool.connection() as conn, conn.transaction():
            # In a pipeline: the search path and the tracking row's insert are sent with the
            # tracking row's read, not each on a round trip of its own.
            with conn.pipeline():
                schema = self.target.schema(conn)
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
                # Derived rows, committed with the position they reach: a server crash may
                # lose the last batches' commits, and then their tracking with them, so they
                # are applied again. The commit does not wait for its WAL flush, which under
                # load queued behind and slowed the commands' own (those stay durable).
                conn.execute("SET LOCAL synchronous_commit = off")
                position = self._claim(conn)
            return self._apply_after(conn, position, up_to=up_to)[0]

    def _claim(self, conn: psycopg.Connection) -> int:
        """Where this batch starts: the generation's tracking row, locked for the batch."""
        return claim_tracking(conn, self.feed)

    def _apply_after(
        self, conn: psycopg.Connection, position: int, *, up_to: int | None
    ) -> tuple[int, int]:
        """Apply the events after ``position``; return (events covered, new position).

        Only the topics the projection reads are fetched and decoded; the position moves over
        the others too, up to the head as it stood before the read (ids commit in order, so
        every event up to that head is visible)."""
        limit = self._next_batch
        ahead, self._ahead = self._ahead, None
        if (
            ahead is not None
            and ahead.rows
            and up_to is None
            and (ahead.position, ahead.limit) == (position, limit)
        ):
            batch = ahead  # read with the last batch, maybe decoded while the server wrote it
        else:
            batch = self._read(conn, position, up_to, limit)
            if batch.stop <= position:
                return 0, position
        full = batch.full
        last = batch.last
        self._next_batch = self.catch_up_batch if full else self.batch_size
        self.reached_head = last == batch.head
        if full and up_to is None:
            # Behind: the next batch's rows are read now, and decoded while the server runs
            # this batch's writes (projections.sets.meanwhile): on the other core, instead
            # of after them.
            self._ahead = self._read(conn, last, None, self._next_batch)
        with collector_paused():
            events = batch.decoded(self.decode)
            with work_meanwhile(self._decode_ahead):
                self.applier.apply(conn, events)
        self._advance(conn, last, events)
        if self.before_commit is not None:
            self.before_commit(last)
        return last - position, last

    def _decode_ahead(self, budget_s: float | None) -> None:
        """The next batch decoded ahead of its turn, as far as it decodes: an event that does
        not is decoded again, and its error raised, when its own batch is applied."""
        if self._ahead is not None:
            with contextlib.suppress(Exception):
                self._ahead.decoded(self.decode, budget_s)

    def _read(
        self, conn: psycopg.Connection, position: int, up_to: int | None, limit: int
    ) -> _Batch:
        """Up to ``limit`` rows of the projection's topics after ``position``, up to the head
        as it stands now (or ``up_to``, when lower)."""
        head_row = conn.execute(self._head_sql).fetchone()
        head = int(head_row[0]) if head_row and head_row[0] is not None else 0
        stop = head if up_to is None else min(up_to, head)
        if stop <= position:
            return _Batch(position, limit, head, stop, [])
        with conn.cursor(binary=True) as cursor:  # the stored bytes as they are, not hex
            rows = cursor.execute(
                self._select_sql, (position, stop, self.topic_list, limit)
            ).fetchall()
        return _Batch(position, limit, head, stop, rows)

    def _advance(
        self, conn: psycopg.Connection, position: int, events: Sequence[RecordedEvent]
    ) -> None:
        advance_tracking(conn, position, events)

    def decode(self, row: tuple[Any, ...]) -> RecordedEvent:
        position, originator_id, version, topic, state = row
        return decode_event(
            self.mapper,
            self.name,
            position,
            originator_id,
            version,
            topic,
            state,
            self._fields.get(topic),
        )

    def catch_up(self, *, stop: threading.Event | None = None) -> int:
        """Run batches until the log's head; return events covered."""
        total = 0
        while stop is None or not stop.is_set():
            count = self.run_once()
            if count == 0:
                return total
            total += count
        return total

    def run_forever(self, stop: threading.Event, *, idle_wait_s: float = 1.0) -> None:
        from infra.pg_listen import LogListener

        error_cleared = False
        channel = str(getattr(self.recorder, "channel_name", ""))
        with LogListener(str(self.pool.conninfo), channel) as listener:
            while not stop.is_set():
                try:
                    count = self.run_once()
                except ProjectionHalted as halted:
                    if not is_transient(halted):  # it would recur on this event: halt here
                        log.error("%s", halted)
                        record_error(self.pool, halted, self.name)
                    raise  # transient: the supervisor runs the same batch again after a pause
                if count and not error_cleared:
                    # progress past a recorded halt: clear it (once; a new halt leaves the loop)
                    record_error(self.pool, None, self.name)
                    error_cleared = True
                if count == 0 and listener.wait(idle_wait_s) and self.linger_s:
                    stop.wait(self.linger_s)


class TrailingFeedRunner(PostgresFeedRunner):
    """A rebuild's second stage (``Projection.rebuild_stages``): applies the log to the
    generation ``schema`` behind its first stage, up to the position the first has committed
    (the generation's tracking row, which it leaves to the first). Its own position lives
    here: a rebuild that fails starts again from nothing."""

    def __init__(
        self,
        pool: ConnectionPool,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        projection: type[Projection],
        *,
        schema: str,
        batch_size: int,
    ) -> None:
        super().__init__(pool, recorder, mapper, projection, batch_size=batch_size, schema=schema)
        self.position = 0
        self._head_sql = sql.SQL("SELECT position FROM {}._tracking").format(sql.Identifier(schema))

    def _claim(self, conn: psycopg.Connection) -> int:
        return self.position

    def _advance(
        self, conn: psycopg.Connection, position: int, events: Sequence[RecordedEvent]
    ) -> None:
        """The marks of the batch alone (the tracking row is the first stage's); the position
        kept here."""
        mark_batch(conn, position, events)
        self.position = position

    def follow(self, first_done: Callable[[], bool], *, idle_s: float = 0.05) -> None:
        """Apply batches until the first stage is done (``first_done``) and every event it
        committed is applied."""
        while True:
            done = first_done()  # before the batch: what it finds then is the first's last
            if self.run_once() == 0:
                if done:
                    return
                time.sleep(idle_s)


#: A rebuild refreshes the planner's statistics of a new table once it holds this many rows
#: more than at its last ANALYZE, and at least as many again as then: tables filled from
#: nothing keep the statistics of empty ones until then, and the plans a batch's statements
#: keep (one generic plan each, infra/projection_runner.BatchApplier) were made for them. By
#: table, not by position: a table the log's first events leave empty (the cases, behind the
#: people and households) was analysed empty at the first mark of a position schedule, and a
#: plan made for an empty case table cost a batch more the more records there were (a
#: statement of red_flags' grew to half a second per batch between two marks, 80k apart).
ANALYZE_MIN_ROWS = 1_000


def analyze(pool: ConnectionPool, schema: str, *, grown_only: bool = False) -> list[str]:
    """Refresh the planner's statistics of the tables of ``schema`` (``grown_only``: of those
    that have doubled, by ``ANALYZE_MIN_ROWS`` at least, since their last ANALYZE); the tables
    analysed."""
    with pool.connection() as conn:
        # The server's counts of each table's changes (of committed transactions: a few
        # moments behind, which only moves an ANALYZE to a later batch).
        condition = (
            " AND n_mod_since_analyze >= greatest(%s, n_live_tup - n_mod_since_analyze)"
            if grown_only
            else ""
        )
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT relname FROM pg_stat_user_tables WHERE schemaname = %s" + condition,
                (schema, ANALYZE_MIN_ROWS) if grown_only else (schema,),
            ).fetchall()
        ]
        for table in tables:
            conn.execute(
                sql.SQL("ANALYZE {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )
    return tables


class SecondStage(Protocol):
    """A rebuild's second stage running elsewhere (``TrailingFeedRunner.follow``)."""

    def finish(self) -> None:
        """The first stage is done: wait until the second has applied all it committed
        (raises when the second failed)."""

    def abort(self) -> None:
        """The first stage failed: stop the second."""


def rebuild(
    pool: ConnectionPool,
    recorder: ApplicationRecorder,
    mapper: Mapper[Any],
    projection: type[Projection],
    *,
    batch_size: int = 1000,
    catch_up_batch: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    second_stage: Callable[[str], SecondStage] | None = None,
) -> int:
    """Build a new generation from position 0 while the active one keeps serving; then switch.

    ``second_stage``: for a projection with ``rebuild_stages``, starts the second stage on the
    new generation's schema (in a process of its own: ``infra.projection_processes``), while
    this process applies the first; the switch waits for it. Returns the new generation number.
    """
    name = projection.name
    with pool.connection() as conn, conn.transaction():
        row = conn.execute(
            f"SELECT active_generation, building_generation FROM {CONTROL_SCHEMA}.projections"
            " WHERE name = %s FOR UPDATE",
            (name,),
        ).fetchone()
        if row is None:
            raise LookupError(f"projection {name} is not initialised")
        active, building = row
        new_generation = int(max(active, building or 0)) + 1
        schema = generation_schema(name, new_generation)
        create_generation(conn, projection, schema, replace=True)
        conn.execute(
            f"UPDATE {CONTROL_SCHEMA}.projections SET building_generation = %s, updated_at = now()"
            " WHERE name = %s",
            (new_generation, name),
        )
    stages = projection.rebuild_stages() if second_stage is not None else None
    runner = PostgresFeedRunner(
        pool,
        recorder,
        mapper,
        stages[0] if stages else projection,
        batch_size=batch_size,
        catch_up_batch=catch_up_batch,
        schema=schema,
    )
    follower = second_stage(schema) if second_stage is not None and stages else None
    try:
        done = 0
        while True:
            count = runner.run_once()
            done += count
            if progress is not None:
                progress(done, max(done, recorder.max_notification_id() or 0))
            if count == 0 or runner.reached_head:
                break
            analyze(pool, schema, grown_only=True)
    except BaseException:
        if follower is not None:
            follower.abort()
        raise
    if follower is not None:
        follower.finish()  # every event the first stage applied, applied by the second
        # The tail and everything after the switch: the projection itself.
        runner = PostgresFeedRunner(
            pool, recorder, mapper, projection, batch_size=batch_size, schema=schema
        )
    analyze(pool, schema)
    # Switch: hold the registry row so live batches pause, finish the tail, repoint the views.
    with pool.connection() as conn, conn.transaction():
        row = conn.execute(
            f"SELECT active_generation FROM {CONTROL_SCHEMA}.projections WHERE name = %s"
            " FOR UPDATE",
            (name,),
        ).fetchone()
        assert row is not None
        old_schema = generation_schema(name, row[0])
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        position = claim_tracking(conn, runner.feed)
        count = 1
        while count:
            count, position = runner._apply_after(conn, position, up_to=None)
        conn.execute("RESET search_path")
        point_views(conn, projection, schema)
        conn.execute(
            f"UPDATE {CONTROL_SCHEMA}.projections SET active_generation = %s,"
            " building_generation = NULL, last_error = NULL, last_error_position = NULL,"
            " updated_at = now() WHERE name = %s",
            (new_generation, name),
        )
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(old_schema)))
    log.info("projection %s rebuilt as generation %d", name, new_generation)
    return new_generation


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    generation: int
    feed: str | None
    position: int
    head: int
    last_error: str | None
    last_error_position: int | None
    updated_at: Any

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)


def projection_status(
    pool: ConnectionPool, projections: Sequence[type[Projection]], head: int
) -> list[ProjectionStatus]:
    statuses = []
    with pool.connection() as conn:
        for projection in projections:
            row = conn.execute(
                f"SELECT active_generation, last_error, last_error_position, updated_at"
                f" FROM {CONTROL_SCHEMA}.projections WHERE name = %s",
                (projection.name,),
            ).fetchone()
            if row is None:
                continue
            schema = generation_schema(projection.name, row[0])
            tracking = conn.execute(
                sql.SQL("SELECT feed, position, updated_at FROM {}._tracking").format(
                    sql.Identifier(schema)
                )
            ).fetchone()
            statuses.append(
                ProjectionStatus(
                    name=projection.name,
                    generation=row[0],
                    feed=tracking[0] if tracking else None,
                    position=tracking[1] if tracking else 0,
                    head=head,
                    last_error=row[1],
                    last_error_position=row[2],
                    updated_at=(tracking[2] if tracking else row[3]),
                )
            )
    return statuses
