"""Connection settings for the event store (eventsourcing env) and our own pools (psycopg)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from infra.sealing import LEGACY_SEALS_UNTIL

#: The library's AES-GCM cipher (``cryptography`` package), sealing each event to its place.
CIPHER_TOPIC = "infra.sealing:PlaceBoundCipher"
MAPPER_TOPIC = "infra.sealing:PlaceBoundMapper"
RECORDER_TOPIC = "infra.sealing:PositionedRecorder"


def store_env(
    database_url: str,
    *,
    identity_key: bytes | None = None,
    cipher_key: str | None = None,
    legacy_seals_until: int = 0,
    aggregate_cache: int = 0,
    create_table: bool = False,
    pool_size: int = 8,
) -> dict[str, str]:
    """eventsourcing's PostgreSQL settings from a libpq URL.

    ``create_table`` is off except inside the schema step, which runs under an advisory lock:
    the library's own CREATE TABLE fails ("tuple concurrently updated") when two processes
    construct the application at once.
    """
    params = conninfo_to_dict(database_url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname") or params.get("user") or "postgres"),
        "POSTGRES_HOST": str(params.get("host") or "localhost"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_LOCK_TIMEOUT": "10",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",  # keep the table lock: ids commit in order
        "CREATE_TABLE": "y" if create_table else "n",
        "MAPPER_TOPIC": MAPPER_TOPIC,
        "APPLICATION_RECORDER_TOPIC": RECORDER_TOPIC,
    }
    if identity_key is not None:
        env["IDENTITY_KEY"] = identity_key.hex()
    if aggregate_cache:
        # Recently used aggregates stay in memory; each load still reads the events recorded
        # since (fast-forward), so other processes' writes are seen, and hands out a copy.
        env["AGGREGATE_CACHE_MAXSIZE"] = str(aggregate_cache)
        env["AGGREGATE_CACHE_FASTFORWARD"] = "y"
    if cipher_key is not None:
        # Stored event state is AES-GCM encrypted: ID numbers, names and incomes never sit
        # in clear in the table, its backups or the Kafka topic (the relay ships stored bytes);
        # each seal is bound to its place, and events up to ``legacy_seals_until`` may carry the
        # seal of the version before binding (infra/sealing.py).
        env["CIPHER_TOPIC"] = CIPHER_TOPIC
        env["CIPHER_KEY"] = cipher_key
        env[LEGACY_SEALS_UNTIL] = str(legacy_seals_until)
    return env


def open_pool(database_url: str, *, size: int = 8, name: str = "relief") -> ConnectionPool:
    """A psycopg pool for every SQL statement of our own (read models, relay, audit)."""
    pool = ConnectionPool(
        database_url,
        min_size=1,
        max_size=size,
        name=name,
        open=False,
        kwargs={"application_name": name},
    )
    pool.open(wait=True, timeout=30)
    return pool


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
