"""Storage of the read audit: who read which case's personal data, when and why."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from domain.provenance import Actor

READS_DDL = (
    """CREATE TABLE IF NOT EXISTS audit.reads (
        id bigserial PRIMARY KEY,
        case_id uuid NOT NULL,
        actor_id text NOT NULL,
        actor_role text NOT NULL,
        actor_organisation text NOT NULL,
        purpose text NOT NULL,
        endpoint text NOT NULL,
        read_at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX IF NOT EXISTS reads_case ON audit.reads (case_id, read_at)",
)


def record_read(
    pool: ConnectionPool, case_id: UUID, actor: Actor, purpose: str, endpoint: str
) -> None:
    """Recorded and committed before the caller goes on (the answer waits for it, so a read
    never goes unrecorded): one round trip in autocommit, a prepared statement."""
    with pool.connection() as conn:
        conn.autocommit = True
        try:
            conn.execute(
                "INSERT INTO audit.reads (case_id, actor_id, actor_role, actor_organisation,"
                " purpose, endpoint) VALUES (%s, %s, %s, %s, %s, %s)",
                (case_id, actor.id, actor.role.value, actor.organisation, purpose, endpoint),
                prepare=True,
            )
        finally:
            conn.autocommit = False


def reads_of(pool: ConnectionPool, case_id: UUID, limit: int = 1000) -> list[dict[str, Any]]:
    """The newest ``limit`` reads of the case, newest first."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT read_at, actor_id, actor_role, actor_organisation, purpose, endpoint"
            " FROM audit.reads WHERE case_id = %s ORDER BY read_at DESC, id DESC LIMIT %s",
            (case_id, limit),
        ).fetchall()
    return [
        {
            "read_at": r[0].isoformat(),
            "actor": {"id": r[1], "role": r[2], "organisation": r[3]},
            "purpose": r[4],
            "endpoint": r[5],
        }
        for r in rows
    ]
