"""Schema creation, once, under a PostgreSQL advisory lock.

Every process calls ``init_schema`` at start-up (and ``relief db init`` calls it explicitly).
The advisory lock serialises them, so concurrent starts never race on CREATE statements; all
other constructions of the application run with the library's CREATE_TABLE off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from infra.database import Sessions, add_missing_column, store_env
from projections.base import Projection

log = logging.getLogger(__name__)

#: Arbitrary constant: the advisory lock key of schema changes ("relief" in ASCII).
SCHEMA_LOCK_KEY = 0x72656C696566
CONTROL_SCHEMA = "relief"
READ_SCHEMA = "read_models"

CONTROL_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {CONTROL_SCHEMA}",
    f"CREATE SCHEMA IF NOT EXISTS {READ_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {CONTROL_SCHEMA}.projections (
        name text PRIMARY KEY,
        active_generation integer NOT NULL,
        building_generation integer,
        last_error text,
        last_error_position bigint,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
    # Idempotency-Key: one row per caller and key; the response is kept sealed (it may hold
    # names) so a retried command answers the same without recording anything again.
    f"""CREATE TABLE IF NOT EXISTS {CONTROL_SCHEMA}.idempotency_keys (
        caller text NOT NULL,
        key text NOT NULL,
        request_hash bytea NOT NULL,
        status integer,
        response bytea,
        created_at timestamptz NOT NULL DEFAULT now(),
        completed_at timestamptz,
        PRIMARY KEY (caller, key)
    )""",
    # Dashboard answers computed by one API process for the others (api/etags.py
    # SharedAnswers): derived, sealed, a minute old at most; unlogged (a crash only empties it).
    f"""CREATE UNLOGGED TABLE IF NOT EXISTS {CONTROL_SCHEMA}.shared_answers (
        tag text PRIMARY KEY,
        body bytea NOT NULL,
        stored_at timestamptz NOT NULL DEFAULT now()
    )""",
    f"""CREATE TABLE IF NOT EXISTS {CONTROL_SCHEMA}.relay_state (
        name text PRIMARY KEY,
        position bigint NOT NULL DEFAULT 0,
        epoch integer NOT NULL DEFAULT 1,
        partition_offsets jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
)
#: Columns added since: the relay copies checkpoints to <topic>.checkpoints after the events
#: they cover (the last one copied, and the next offset of that topic).
RELAY_CHECKPOINT_COLUMNS = {
    "checkpoint_sequence": "bigint NOT NULL DEFAULT 0",
    "checkpoint_offset": "bigint NOT NULL DEFAULT 0",
}


def generation_schema(projection_name: str, generation: int) -> str:
    return f"rm_{projection_name}_g{generation}"


def create_generation(
    conn: psycopg.Connection, projection: type[Projection], schema: str, *, replace: bool = False
) -> None:
    """Create one build generation of a projection: its tables plus its tracking tables."""
    ident = sql.Identifier(schema)
    if replace:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(ident))
    for ddl in projection.tables:
        conn.execute(ddl)  # DDL from code, not input
    # One row: which feed builds this generation and how far it has got.
    # content_position: the position of the last batch that wrote rows, so an answer's ETag
    # (api/etags.py) stays the same while only events that change nothing of it pass.
    conn.execute(
        "CREATE TABLE _tracking (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),"
        " feed text NOT NULL, position bigint NOT NULL DEFAULT 0,"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " content_position bigint NOT NULL DEFAULT 0)"
    )
    # Per table of the generation, the position of the last batch that wrote rows to it: an
    # answer reading only some tables (alerts, not the facts behind them) keeps its tag while
    # batches write only the others.
    conn.execute(TABLE_MARKS_DDL)
    # Per scoped table and county, the position of the last batch that wrote rows of that
    # county to it: an answer about one county keeps its tag while batches write only other
    # counties' rows (Projection.scoped).
    install_scope_marks(conn, schema, projection.scoped)
    # Per minute, the position of the last batch that wrote rows and held an event recorded
    # in that minute or before: an answer as things stood at a past moment (built only from
    # what was recorded by then) keeps its tag while batches of later events pass.
    conn.execute(MOMENT_MARKS_DDL)
    # Kafka feed: where each partition is read to, and the last version applied per aggregate
    # (so a republished or duplicated message is applied once).
    conn.execute(
        "CREATE TABLE _kafka_offsets (topic text, partition integer, next_offset bigint NOT NULL,"
        " epoch integer NOT NULL, last_id text, PRIMARY KEY (topic, partition))"
    )
    conn.execute(
        "CREATE TABLE _applied_versions (originator_id uuid PRIMARY KEY, version bigint NOT NULL)"
    )
    conn.execute("RESET search_path")


TABLE_MARKS_DDL = (
    "CREATE TABLE _table_marks (relname text PRIMARY KEY, content_position bigint NOT NULL)"
)


MOMENT_MARKS_DDL = (
    "CREATE TABLE _moment_marks (recorded_by timestamptz PRIMARY KEY,"
    " content_position bigint NOT NULL)"
)


SCOPE_MARKS_DDL = (
    'CREATE TABLE _scope_marks (relname text, scope text COLLATE "C",'
    " content_position bigint NOT NULL, PRIMARY KEY (relname, scope))",
    # The counties the batch in progress wrote, by table (filled by the triggers, emptied into
    # the marks by the batch's last statement: empty outside a batch's transaction).
    'CREATE TABLE _scope_touched (relname text, scope text COLLATE "C",'
    " PRIMARY KEY (relname, scope))",
)

#: A scoped row's county: the first six digits of its code; a row with no code, every county.
EVERY_COUNTY = "*"

_TRANSITIONS = {
    "INSERT": ("REFERENCING NEW TABLE AS new_rows", ("new_rows",)),
    "UPDATE": ("REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows", ("old_rows", "new_rows")),
    "DELETE": ("REFERENCING OLD TABLE AS old_rows", ("old_rows",)),
}


def install_scope_marks(
    conn: psycopg.Connection, schema: str, scoped: Mapping[str, Sequence[str]]
) -> None:
    """The scope marks' tables in ``schema`` (a generation, the search path) and, on each of
    the ``scoped`` tables (``Projection.scoped``), a trigger per kind of write noting the
    counties of the rows it wrote or removed, once per statement (COPY fires them too)."""
    for ddl in SCOPE_MARKS_DDL:
        conn.execute(ddl)
    ident = sql.Identifier(schema)
    for table, columns in scoped.items():
        for event, (referencing, transitions) in _TRANSITIONS.items():
            function = sql.Identifier(f"_scope_{table}_{event.lower()}")
            counties = sql.SQL(" UNION ").join(
                sql.SQL("SELECT coalesce(left({}, 6), {}) FROM {}").format(
                    sql.Identifier(column), sql.Literal(EVERY_COUNTY), sql.Identifier(rows)
                )
                for rows in transitions
                for column in columns
            )
            conn.execute(
                sql.SQL(
                    "CREATE FUNCTION {schema}.{function}() RETURNS trigger LANGUAGE plpgsql AS $$"
                    " BEGIN INSERT INTO {schema}._scope_touched (relname, scope)"
                    " SELECT {table}, county FROM ({counties}) AS touched (county)"
                    " ON CONFLICT DO NOTHING; RETURN NULL; END $$"
                ).format(
                    schema=ident, function=function, table=sql.Literal(table), counties=counties
                )
            )
            conn.execute(
                sql.SQL(
                    "CREATE TRIGGER {trigger} AFTER {event} ON {schema}.{table} {referencing}"
                    " FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{function}()"
                ).format(
                    trigger=sql.Identifier(f"scope_marks_{event.lower()}"),
                    event=sql.SQL(event),
                    schema=ident,
                    table=sql.Identifier(table),
                    referencing=sql.SQL(referencing),
                    function=function,
                )
            )


def add_scope_marks(
    conn: psycopg.Connection, schema: str, scoped: Mapping[str, Sequence[str]]
) -> None:
    """Scope marks for a generation built before them: each scoped table's mark for every
    county at its table mark, so no answer's tag goes back."""
    _add_marks(
        conn,
        schema,
        lambda: install_scope_marks(conn, schema, scoped),
        "INSERT INTO _scope_marks (relname, scope, content_position)"
        " SELECT relname, %s, content_position FROM _table_marks WHERE relname = ANY(%s)",
        (EVERY_COUNTY, list(scoped)),
    )


def add_moment_marks(conn: psycopg.Connection, schema: str) -> None:
    """Moment marks for a generation built before them: one mark before every moment at the
    generation's content position, so an answer at any moment follows every batch, as before.
    The per-day marks they replace (a day's answers followed every batch of that day, today's
    commands included) are dropped in the same transaction: no generation keeps both."""
    with conn.transaction():
        _add_marks(
            conn,
            schema,
            MOMENT_MARKS_DDL,
            "INSERT INTO _moment_marks (recorded_by, content_position)"
            " SELECT '-infinity', content_position FROM _tracking",
        )
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}._day_marks").format(sql.Identifier(schema)))


def _add_marks(
    conn: psycopg.Connection,
    schema: str,
    create: str | Callable[[], None],
    fill: str,
    params: tuple[Any, ...] = (),
) -> None:
    """Marks created in ``schema`` (a generation, the search path meanwhile) by ``create`` (a
    table's DDL, or a function creating them) and filled, in one transaction."""
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        if isinstance(create, str):
            conn.execute(create)
        else:
            create()
        conn.execute(fill, params)


def generations_without(conn: psycopg.Connection, table: str) -> list[str]:
    """The generations (schemas with a tracking table) built before ``table`` was added."""
    rows = conn.execute(
        "SELECT t.table_schema FROM information_schema.tables t"
        " WHERE t.table_name = '_tracking' AND NOT EXISTS (SELECT 1 FROM"
        " information_schema.tables m WHERE m.table_schema = t.table_schema"
        " AND m.table_name = %s) ORDER BY 1",
        (table,),
    ).fetchall()
    return [str(schema) for (schema,) in rows]


def add_table_marks(conn: psycopg.Connection, schema: str) -> None:
    """Table marks for a generation built before them: every table marked at the generation's
    content position (what its answers' tags followed until now), so no tag goes back."""
    _add_marks(
        conn,
        schema,
        TABLE_MARKS_DDL,
        "INSERT INTO _table_marks (relname, content_position)"
        " SELECT table_name, (SELECT content_position FROM _tracking)"
        " FROM information_schema.tables WHERE table_schema = %s"
        " AND left(table_name, 1) <> '_'",
        (schema,),
    )


def point_views(conn: psycopg.Connection, projection: type[Projection], schema: str) -> None:
    """(Re)point the stable reader views at ``schema``; in the caller's transaction."""
    for view in projection.views:
        conn.execute(
            sql.SQL("DROP VIEW IF EXISTS {}.{}").format(
                sql.Identifier(READ_SCHEMA), sql.Identifier(view)
            )
        )
        conn.execute(
            sql.SQL("CREATE VIEW {}.{} AS SELECT * FROM {}.{}").format(
                sql.Identifier(READ_SCHEMA),
                sql.Identifier(view),
                sql.Identifier(schema),
                sql.Identifier(view),
            )
        )


def init_schema(
    database_url: str, projections: Iterable[type[Projection]], *, pool_size: int = 2
) -> None:
    """Create the event store, control tables and first projection generations if missing."""
    from infra.ledger import ReliefLedger  # the library creates its own tables

    projections = list(projections)

    sessions = Sessions("schema")
    with psycopg.connect(sessions.conninfo(database_url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            ReliefLedger(
                env=store_env(database_url, create_table=True, pool_size=1, sessions=sessions)
            ).close()
            from infra import audit_chain, checkpoints
            from infra.read_audit import READS_DDL
            from infra.sealing import BOUNDARY_DDL
            from infra.verification_jobs import JOBS_DDL

            with conn.transaction():
                audit_chain.install(conn)
                checkpoints.install(conn)
                for ddl in (*BOUNDARY_DDL, *READS_DDL, *JOBS_DDL):
                    conn.execute(ddl)
            for ddl in CONTROL_DDL:
                conn.execute(ddl)
            for column, kind in RELAY_CHECKPOINT_COLUMNS.items():
                add_missing_column(conn, f"{CONTROL_SCHEMA}.relay_state", column, kind)
            for (schema,) in conn.execute(
                "SELECT table_schema FROM information_schema.tables"
                " WHERE table_name = '_tracking' ORDER BY 1"
            ).fetchall():  # generations built before the column: 0 is a tag never issued
                add_missing_column(
                    conn, f"{schema}._tracking", "content_position", "bigint NOT NULL DEFAULT 0"
                )
            for table, add in (
                ("_table_marks", add_table_marks),
                ("_moment_marks", add_moment_marks),
            ):
                for schema in generations_without(conn, table):
                    add(conn, schema)
            scoped = {p.name: p.scoped for p in projections}
            for schema in generations_without(conn, "_scope_marks"):
                # a generation of a projection not run here gets the tables, no triggers
                name = schema.removeprefix("rm_").rsplit("_g", 1)[0]
                add_scope_marks(conn, schema, scoped.get(name, {}))
            for projection in projections:
                with conn.transaction():
                    row = conn.execute(
                        f"SELECT active_generation FROM {CONTROL_SCHEMA}.projections"
                        " WHERE name = %s",
                        (projection.name,),
                    ).fetchone()
                    if row is not None:
                        continue
                    schema = generation_schema(projection.name, 1)
                    create_generation(conn, projection, schema, replace=True)
                    point_views(conn, projection, schema)
                    conn.execute(
                        f"INSERT INTO {CONTROL_SCHEMA}.projections (name, active_generation)"
                        " VALUES (%s, 1)",
                        (projection.name,),
                    )
                    log.info("created projection %s generation 1", projection.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
