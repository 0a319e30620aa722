"""Connection settings for the event store (eventsourcing env) and our own pools (psycopg).

Every database session of the system says who it is and how long it may wait:

- ``application_name`` is ``relief-<role>`` (``relief-api``, ``relief-relay``,
  ``relief-checkpointer``, ``relief-<projection>``), so an operator sees in
  ``pg_stat_activity`` which kind of session is which, and can end one kind;
- connecting, and waiting for a pooled connection, give up after ``wait_s`` seconds: when the
  database is down a request fails fast (503) instead of queueing, and workers retry;
- a pool whose connections were lost tries to reconnect for a few seconds at a time (not the
  pool's default of growing pauses over five minutes), so service resumes within seconds of
  the database's return; requests ask for connections again after that, which starts a new
  attempt at once;
- sessions of the API may carry a statement timeout; TCP keepalives notice a vanished server.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg.abc import Params, Query
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from infra.faults import is_transient, session_lost
from infra.group_commit import Groups, Insert
from infra.sealing import LEGACY_SEALS_UNTIL, PositionedRecorder, insert_arrays

T = TypeVar("T")

#: The library's AES-GCM cipher (``cryptography`` package), sealing each event to its place.
CIPHER_TOPIC = "infra.sealing:PlaceBoundCipher"
MAPPER_TOPIC = "infra.sealing:PlaceBoundMapper"

#: How long a pool keeps trying to replace a lost connection before it waits for the next
#: request to try again (psycopg_pool's default is 5 minutes of doubling pauses).
RECONNECT_TIMEOUT_S = 5.0

#: The connection parameters the library's settings carry; the others travel in
#: ``SESSION_PARAMETERS`` (JSON), from ``store_env`` to ``SessionsPostgresFactory``.
STORE_TARGET_KEYS = ("dbname", "host", "port", "user", "password")
SESSION_PARAMETERS = "SESSION_PARAMETERS"
#: "y": the inserts of one process that arrive together are written by one transaction
#: (infra/group_commit.py).
GROUP_COMMIT = "GROUP_COMMIT"


@dataclass(frozen=True)
class Sessions:
    """How the database sessions of one role behave (see the module docstring)."""

    role: str
    wait_s: int = 3
    statement_timeout_s: int = 0  # 0: none

    @property
    def application_name(self) -> str:
        return f"relief-{self.role}"[:63]  # PostgreSQL keeps 63 bytes of it

    def parameters(self) -> dict[str, str]:
        """libpq connection parameters of these sessions."""
        params = {
            "application_name": self.application_name,
            "connect_timeout": str(max(self.wait_s, 2)),  # libpq treats less than 2 as 2
            "keepalives": "1",
            "keepalives_idle": "30",
            "keepalives_interval": "10",
            "keepalives_count": "3",
        }
        if self.statement_timeout_s:
            params["options"] = f"-c statement_timeout={self.statement_timeout_s}s"
        return params

    def conninfo(self, database_url: str) -> str:
        """``database_url`` with these sessions' parameters (its own ``options`` kept)."""
        params = self.parameters()
        own_options = conninfo_to_dict(database_url).get("options")
        if own_options and "options" in params:
            params["options"] = f"{own_options} {params['options']}"
        return make_conninfo(database_url, **params)


def store_env(
    database_url: str,
    *,
    cipher_key: str | None = None,
    legacy_seals_until: int = 0,
    aggregate_cache: int = 0,
    snapshot_interval: int = 0,
    create_table: bool = False,
    pool_size: int = 8,
    sessions: Sessions | None = None,
    group_commit: bool = False,
) -> dict[str, str]:
    """eventsourcing's PostgreSQL settings from a libpq URL.

    ``create_table`` is off except inside the schema step, which runs under an advisory lock:
    the library's own CREATE TABLE fails ("tuple concurrently updated") when two processes
    construct the application at once.
    """
    sessions = sessions or Sessions("ledger")
    params = conninfo_to_dict(database_url)
    # Parameters of the URL beyond the target (sslmode, options, ...) and the sessions' own:
    # the library's settings have no place for them, our factory hands them to its pool.
    session_parameters = {
        key: str(value)
        for key, value in conninfo_to_dict(sessions.conninfo(database_url)).items()
        if key not in STORE_TARGET_KEYS
    }
    env = {
        "PERSISTENCE_MODULE": f"{__name__}:{SessionsPostgresFactory.__name__}",
        "POSTGRES_DBNAME": str(params.get("dbname") or params.get("user") or "postgres"),
        "POSTGRES_HOST": str(params.get("host") or "localhost"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        # The library keeps POOL_SIZE connections open from the start (its pool's minimum) and
        # may open MAX_OVERFLOW more: one kept, the rest opened as needed (up to the same
        # 2 × pool_size), as our own pools do. Keeping them all, in every process (API, relay,
        # one per projection), left the embedded server's 100 connections short when idle.
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": str(2 * pool_size - 1),
        # The library's name for how long a caller waits for a pooled connection.
        "POSTGRES_CONNECT_TIMEOUT": str(sessions.wait_s),
        "POSTGRES_LOCK_TIMEOUT": "10",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",  # keep the table lock: ids commit in order
        "CREATE_TABLE": "y" if create_table else "n",
        SESSION_PARAMETERS: json.dumps(session_parameters),
        GROUP_COMMIT: "y" if group_commit else "n",
        "MAPPER_TOPIC": MAPPER_TOPIC,
        # The snapshots table always exists (relief_snapshots); SNAPSHOT_INTERVAL says how
        # often the ledger writes one (0: never; loads use those there are).
        "IS_SNAPSHOTTING_ENABLED": "y",
        "SNAPSHOT_INTERVAL": str(snapshot_interval),
    }
    if aggregate_cache:
        # Recently used aggregates stay in memory; each load still reads the events recorded
        # since, so other processes' writes are seen (infra/ledger.py LatestCache).
        env["AGGREGATE_CACHE_MAXSIZE"] = str(aggregate_cache)
    if cipher_key is not None:
        # Stored event state is AES-GCM encrypted: ID numbers, names and incomes never sit
        # in clear in the table, its backups or the Kafka topic (the relay ships stored bytes);
        # each seal is bound to its place, and events up to ``legacy_seals_until`` may carry the
        # seal of the version before binding (infra/sealing.py).
        env["CIPHER_TOPIC"] = CIPHER_TOPIC
        env["CIPHER_KEY"] = cipher_key
        env[LEGACY_SEALS_UNTIL] = str(legacy_seals_until)
    return env


def _undecorated(method: Callable[..., T]) -> Callable[..., T]:
    """The library's recorder method without its retry decorator (ten attempts)."""
    return getattr(method, "__wrapped__", method)


def _once_more_if_the_session_was_lost(method: Callable[..., T]) -> Callable[..., T]:
    """The recorder's ``method``, tried a second time only when its connection broke (the
    pool's other idle connections are tested first): after a database restart the first
    connection taken may be a dead one. An unreachable server fails at once, in the pool's
    wait, instead of the library's ten attempts of that wait each."""
    undecorated = _undecorated(method)

    @functools.wraps(undecorated)
    def once_more(self: Any, *args: Any, **kwargs: Any) -> T:
        try:
            return undecorated(self, *args, **kwargs)
        except (InterfaceError, OperationalError) as error:
            if not session_lost(error):
                raise
        self.datastore.pool.check()
        return undecorated(self, *args, **kwargs)

    return once_more


#: How long an insert whose session was lost on the way keeps trying to learn whether it was
#: recorded, before it gives up with ``CommitInDoubt``: a database restart or failover takes a
#: few seconds, and within them the command gets its true answer instead of a 503.
IN_DOUBT_WAIT_S = 8.0

#: Set for a request by whoever can settle a doubt later (the Idempotency-Key middleware,
#: api/safe_writes.py): the stored events whose recording was left in doubt are added to it.
commits_in_doubt: ContextVar[list[StoredEvent] | None] = ContextVar(
    "commits_in_doubt", default=None
)


class CommitInDoubt(Exception):
    """The session broke while these events were being recorded, and the database did not
    come back in time to tell whether the COMMIT happened. Transient (its cause is): the
    request answers 503; the Idempotency-Key middleware settles the doubt later."""

    def __init__(self, stored_events: Sequence[StoredEvent]) -> None:
        super().__init__(
            f"recording of {len(stored_events)} event(s) in doubt: the database went away"
            " during the commit"
        )
        self.stored_events = list(stored_events)


class FailFastApplicationRecorder(PositionedRecorder):
    """The library's recorder (its aggregate reads keeping each event's position, for the
    seals: infra/sealing.py) with ``_once_more_if_the_session_was_lost`` as its retry policy.

    A session ended while its COMMIT was on the way may have committed or not. The insert is
    tried again (for up to ``IN_DOUBT_WAIT_S``, while the database comes back); refused as a
    conflict, it looks for its own stored events (the very same sealed bytes): found, the first
    attempt was recorded and its positions are the answer, so the command is neither reported
    failed nor recorded twice. Still unknown at the end of the wait: ``CommitInDoubt``.

    With ``groups`` (the factory sets it when ``GROUP_COMMIT`` is on), the first attempt of an
    insert is written together with the inserts of other threads that arrive meanwhile
    (infra/group_commit.py); the retries after a lost session go alone, as before.
    """

    groups: Groups | None = None

    select_events = _once_more_if_the_session_was_lost(PositionedRecorder.select_events)
    select_notifications = _once_more_if_the_session_was_lost(
        PostgresApplicationRecorder.select_notifications
    )
    max_notification_id = _once_more_if_the_session_was_lost(
        PostgresApplicationRecorder.max_notification_id
    )

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        insert = _undecorated(PostgresApplicationRecorder.insert_events)
        try:
            # Saves pass ``tracking=None`` (the library's): only a tracked insert goes alone.
            if self.groups is not None and stored_events and not any(kwargs.values()):
                return self.groups.insert(stored_events)
            return insert(self, stored_events, **kwargs)
        except (InterfaceError, OperationalError) as error:
            if not session_lost(error):
                raise
        deadline = time.monotonic() + IN_DOUBT_WAIT_S
        while True:
            try:
                self.datastore.pool.check()
                return insert(self, stored_events, **kwargs)
            except IntegrityError:
                recorded = self.recorded_positions(stored_events)
                if recorded is None:
                    raise
                return recorded
            except (InterfaceError, OperationalError) as error:
                if not is_transient(error):
                    raise
                if time.monotonic() >= deadline:
                    doubts = commits_in_doubt.get()
                    if doubts is not None:
                        doubts.extend(stored_events)
                    raise CommitInDoubt(stored_events) from error
            time.sleep(0.25)

    def write_group(self, group: list[Insert]) -> None:
        """The inserts of a group in one transaction under one table lock (``Groups``): each
        in a savepoint of its own, so a conflict (IntegrityError) rolls back and fails only
        its own; any other error rolls the whole transaction back and is raised. One insert
        alone is written as ever, with no savepoint."""
        if len(group) == 1:
            alone = group[0]
            try:
                insert = _undecorated(PostgresApplicationRecorder.insert_events)
                alone.positions = insert(self, alone.stored_events)
            except IntegrityError as conflict:
                alone.error = conflict
            return
        with (
            self.datastore.get_connection() as conn,
            conn.pipeline() as pipeline,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._lock_table(curs)
            self._notify_channel(curs)
            for each in group:
                try:
                    arrays = insert_arrays(each.stored_events)
                    with conn.transaction():  # SAVEPOINT ... RELEASE (ROLLBACK TO on error)
                        curs.execute(self.insert_arrays_statement, arrays)
                        pipeline.sync()  # this insert's conflict is raised here, in its block
                        each.positions = [row["notification_id"] for row in curs.fetchall()]
                except psycopg.IntegrityError as conflict:
                    each.error = IntegrityError(str(conflict))
                    each.error.__cause__ = conflict

    def recorded_positions(self, stored_events: Sequence[StoredEvent]) -> list[int] | None:
        """The positions of ``stored_events`` if exactly these are in the table, else None."""
        query = SQL(
            "SELECT e.originator_id, e.originator_version, e.state, e.notification_id"
            " FROM {schema}.{table} e JOIN unnest(%s::uuid[], %s::bigint[]) AS k(id, version)"
            " ON e.originator_id = k.id AND e.originator_version = k.version"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        keys = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            rows = {
                (str(r["originator_id"]), int(r["originator_version"])): r
                for r in cursor.execute(query, keys).fetchall()
            }
        positions = []
        for event in stored_events:
            row = rows.get((str(event.originator_id), event.originator_version))
            if row is None or bytes(row["state"]) != bytes(event.state):
                return None
            positions.append(int(row["notification_id"]))
        return positions


class SessionsPostgresFactory(PostgresFactory):
    """The library's PostgreSQL persistence, its pool's sessions set up like ours.

    The library's settings name no application_name, libpq timeouts or reconnection policy;
    its pool is made but not yet connected when the factory is constructed, so they are added
    to the pool's connection arguments here, before any session starts.
    """

    application_recorder_class = FailFastApplicationRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        pool = self.datastore.pool
        if isinstance(pool.kwargs, dict):
            pool.kwargs.update(json.loads(self.env.get(SESSION_PARAMETERS) or "{}"))
        pool.reconnect_timeout = RECONNECT_TIMEOUT_S

    def application_recorder(self) -> Any:
        recorder = super().application_recorder()
        if isinstance(recorder, FailFastApplicationRecorder) and self.env.get(GROUP_COMMIT) == "y":
            recorder.groups = Groups(recorder.write_group)
        return recorder


def open_pool(database_url: str, *, size: int = 8, sessions: Sessions) -> ConnectionPool:
    """A psycopg pool for every SQL statement of our own (read models, relay, audit)."""
    pool = ConnectionPool(
        sessions.conninfo(database_url),
        min_size=1,
        max_size=size,
        name=sessions.application_name,
        open=False,
        timeout=sessions.wait_s,
        reconnect_timeout=RECONNECT_TIMEOUT_S,
    )
    pool.open(wait=True, timeout=30)
    return pool


class LoopReads:
    """Statements sent from an event loop on async connections of their own (the API's case
    reads: no hand-off to a worker thread and back, which under load cost more than the read
    itself). The pool is made on first use, in and for the loop that uses it (an asyncio
    pool serves one loop): ``serves()`` says whether the running loop is that one.
    Connections as the store's: autocommit (a statement is committed when its rows arrive),
    rows as dicts, the sessions' parameters (names, timeouts)."""

    def __init__(self, database_url: str, *, size: int, sessions: Sessions) -> None:
        self._conninfo = sessions.conninfo(database_url)
        self._size = size
        self._sessions = sessions
        self._pool: AsyncConnectionPool[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def serves(self) -> bool:
        """Whether the running loop may use this pool (the first loop that did, or any while
        none has)."""
        return self._loop is None or self._loop is asyncio.get_running_loop()

    async def fetch(self, query: Query, params: Params) -> list[Any]:
        """The rows of one statement (prepared), committed when they arrive."""
        if self._pool is None:
            self._loop = asyncio.get_running_loop()
            self._pool = AsyncConnectionPool(
                self._conninfo,
                kwargs={"autocommit": True, "row_factory": dict_row},
                min_size=1,
                max_size=self._size,
                name=f"{self._sessions.application_name}-loop",
                open=False,
                timeout=self._sessions.wait_s,
                reconnect_timeout=RECONNECT_TIMEOUT_S,
            )
            await self._pool.open(wait=False)
        # getconn/putconn, not ``connection()``: its context commits on the way out, a tenth
        # of the fetch's CPU for connections in autocommit, which have nothing to commit.
        conn = await self._pool.getconn()
        try:
            cursor = await conn.execute(query, params, prepare=True)
            rows: list[Any] = await cursor.fetchall()
        finally:
            await self._pool.putconn(conn)
        return rows

    async def check(self) -> None:
        """Replace the broken idle connections (after a connection error)."""
        if self._pool is not None and not self._pool.closed and self.serves():
            await self._pool.check()

    async def close(self) -> None:
        if self._pool is not None and self.serves():
            await self._pool.close()
        self._pool, self._loop = None, None


def discard_broken(pools: Iterable[ConnectionPool]) -> None:
    """Test the idle connections of ``pools`` now and replace the broken ones.

    After the database restarted, every idle connection is dead but looks fine until used;
    called on the first connection error, this spares the following requests the same error.
    """
    for pool in pools:
        if not pool.closed:
            pool.check()


def add_missing_column(conn: psycopg.Connection[Any], table: str, column: str, kind: str) -> None:
    """ALTER TABLE only when the column is missing: ALTER locks the table exclusively even when
    there is nothing to do, which would queue every insert behind a long-running reader."""
    schema, name = table.split(".")
    if not conn.execute(
        "SELECT 1 FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s AND column_name = %s",
        (schema, name, column),
    ).fetchone():
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")  # names from code


def create_missing_index(conn: psycopg.Connection[Any], name: str, definition: str) -> None:
    """CREATE INDEX only when missing (it locks the table against writes while it checks)."""
    if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone() == (None,):
        conn.execute(definition)
