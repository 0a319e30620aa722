"""Tamper evidence: a hash chain over the global log, kept as events commit.

Each stored event's link is SHA-256(previous link || event bytes), where the event bytes are
position || aggregate id || version || recording time (microseconds since the Unix epoch) ||
topic || 0x00 || stored state. The recording time is the as-of index; it is chained because the
event's own timestamp is sealed inside the encrypted state, out of reach of SQL. A trigger on the
events table writes the link in the same transaction as the event; inserts are serialised by the
store's table lock, so the chain follows commit order. Each chain row also names the position it
was chained after, so a row deleted together with its link is found at its own position.

The event bytes are defined once as SQL (``event_bytes_sql``, for the trigger; the verifier's
COPY reads the same expressions but the recording time, ``event_parts_sql``, and the recording
time as stored, ``unix_micros``) and once in Python (``event_bytes``, for bundles checked
offline); tests hold them equal. Checking the chain is infra/audit_verify.py; signing it,
infra/checkpoints.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from infra.database import add_missing_column, create_missing_index

GENESIS = bytes(32)
EVENTS_TABLE = "public.relief_events"


def event_parts_sql(
    position: str, aggregate_id: str, version: str, topic: str, state: str
) -> tuple[str, str]:
    """The canonical bytes of one stored event but its recording time, as two SQL expressions
    over the given columns: the head (position, aggregate id, version: 32 bytes) and the tail
    (topic, 0x00, stored state). The event bytes are head || recording time || tail."""
    return (
        f"int8send({position}) || uuid_send({aggregate_id}) || int8send({version})",
        f"convert_to({topic}, 'UTF8') || '\\x00'::bytea || {state}",
    )


def event_bytes_sql(
    position: str, aggregate_id: str, version: str, recorded_at: str, topic: str, state: str
) -> str:
    """The canonical bytes of one stored event as a SQL expression over the given columns, in
    built-in functions only: the trigger writes links with it; the verifier reads the same
    head and tail (``event_parts_sql``) and the recording time as stored (``unix_micros``),
    with ``search_path`` pinned to pg_catalog, so no function of the database's own can stand
    in for them."""
    head, tail = event_parts_sql(position, aggregate_id, version, topic, state)
    return f"{head} || int8send((extract(epoch FROM {recorded_at}) * 1000000)::bigint) || {tail}"


NEW_EVENT_BYTES = event_bytes_sql(
    "NEW.notification_id",
    "NEW.originator_id",
    "NEW.originator_version",
    "stamp",
    "NEW.topic",
    "NEW.state",
)
CHAIN_FUNCTION = f"""CREATE OR REPLACE FUNCTION audit.chain_event() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        previous bytea;
        previous_at bigint;
        stamp timestamptz;
    BEGIN
        SELECT position, hash INTO previous_at, previous FROM audit.chain
            WHERE position < NEW.notification_id ORDER BY position DESC LIMIT 1;
        IF previous IS NULL THEN
            previous := decode(repeat('00', 32), 'hex');
            previous_at := 0;
        END IF;
        -- Truncated to what timestamptz keeps, so the hash covers exactly the stored value.
        stamp := date_trunc('microseconds', clock_timestamp());
        INSERT INTO audit.chain (position, originator_id, originator_version, recorded_at, hash,
                                 previous_position)
        VALUES (NEW.notification_id, NEW.originator_id, NEW.originator_version, stamp,
                sha256(previous || {NEW_EVENT_BYTES}), previous_at);
        RETURN NULL;
    END $$"""

CHAIN_TABLE = """CREATE TABLE IF NOT EXISTS audit.chain (
    position bigint PRIMARY KEY,
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    recorded_at timestamptz NOT NULL,
    hash bytea NOT NULL,
    previous_position bigint
)"""
TRIGGER_DDL = (
    f"DROP TRIGGER IF EXISTS relief_events_chain ON {EVENTS_TABLE}",
    f"CREATE TRIGGER relief_events_chain AFTER INSERT ON {EVENTS_TABLE}"
    " FOR EACH ROW EXECUTE FUNCTION audit.chain_event()",
)


def install(conn: psycopg.Connection[Any]) -> None:
    """Create or upgrade the chain, taking table locks only for what is missing (a process
    starting must not queue the ledger's inserts behind a verifier's long read)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS audit")
    conn.execute(CHAIN_TABLE)
    # Chains written before rows named their predecessor have NULL here (audit_walk: "changed").
    add_missing_column(conn, "audit.chain", "previous_position", "bigint")
    create_missing_index(
        conn,
        "audit.chain_aggregate",
        "CREATE INDEX chain_aggregate ON audit.chain (originator_id, originator_version)",
    )
    conn.execute(CHAIN_FUNCTION)  # no table lock; existing chains get the new body
    if not conn.execute("SELECT 1 FROM pg_trigger WHERE tgname = 'relief_events_chain'").fetchone():
        for ddl in TRIGGER_DDL:
            conn.execute(ddl)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def microseconds(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


#: PostgreSQL's epoch (2000-01-01 UTC) in microseconds since the Unix epoch: a timestamptz in
#: binary form counts microseconds from the former, the event bytes from the latter.
POSTGRES_EPOCH_US = 946_684_800_000_000


def unix_micros(stored: bytes) -> bytes:
    """The recording time's 8 bytes in the event bytes, from a timestamptz in binary form (as
    a binary COPY sends it): integer arithmetic, no datetime."""
    return (int.from_bytes(stored, "big", signed=True) + POSTGRES_EPOCH_US).to_bytes(
        8, "big", signed=True
    )


def event_bytes(
    position: int,
    originator_id: UUID,
    version: int,
    recorded_at: dt.datetime,
    topic: str,
    state: bytes,
) -> bytes:
    """The canonical bytes of one stored event: what the chain and Merkle leaves cover."""
    return (
        position.to_bytes(8, "big", signed=True)
        + originator_id.bytes
        + version.to_bytes(8, "big", signed=True)
        + microseconds(recorded_at).to_bytes(8, "big", signed=True)
        + topic.encode("utf-8")
        + b"\x00"
        + state
    )


def link(
    previous: bytes,
    position: int,
    originator_id: UUID,
    version: int,
    recorded_at: dt.datetime,
    topic: str,
    state: bytes,
) -> bytes:
    """One link of the chain, exactly as the trigger computes it."""
    return hashlib.sha256(
        previous + event_bytes(position, originator_id, version, recorded_at, topic, state)
    ).digest()


def version_at(pool: ConnectionPool, aggregate_id: UUID, moment: Any) -> int | None:
    """The aggregate's version as it stood at ``moment`` (indexed; no history scan)."""
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT max(originator_version) FROM audit.chain"
            " WHERE originator_id = %s AND recorded_at <= %s",
            (aggregate_id, moment),
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else None
