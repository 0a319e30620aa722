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


class ReadRecord:
    """One read of a case's personal data, to be recorded (committed) before its answer is
    sent. ``written`` once committed: by ``record_read``, or in the same statement as the
    load that reads the case (``insert_cte``, infra/ledger.py), so the record costs no round
    trip of its own."""

    __slots__ = ("actor", "case_id", "endpoint", "purpose", "written")

    def __init__(self, case_id: UUID, actor: Actor, purpose: str, endpoint: str) -> None:
        self.case_id, self.actor, self.purpose, self.endpoint = case_id, actor, purpose, endpoint
        self.written = False

    def params(self) -> dict[str, Any]:
        actor = self.actor
        return {
            "read_case": self.case_id,
            "read_actor": actor.id,
            "read_role": actor.role.value,
            "read_organisation": actor.organisation,
            "read_purpose": self.purpose,
            "read_endpoint": self.endpoint,
        }


#: The record as a data-modifying CTE of another statement (named parameters ``params()``):
#: PostgreSQL runs it exactly once whether or not the statement reads it, in the statement's
#: transaction, so in autocommit the record is committed when the statement's rows arrive.
READ_INSERT_CTE = (
    "recorded AS (INSERT INTO audit.reads (case_id, actor_id, actor_role, actor_organisation,"
    " purpose, endpoint) VALUES (%(read_case)s, %(read_actor)s, %(read_role)s,"
    " %(read_organisation)s, %(read_purpose)s, %(read_endpoint)s))"
)


def record_read(
    pool: ConnectionPool, case_id: UUID, actor: Actor, purpose: str, endpoint: str
) -> None:
    """Recorded and committed before the caller goes on (the answer waits for it, so a read
    never goes unrecorded): one round trip in autocommit, a prepared statement."""
    write_read(pool, ReadRecord(case_id, actor, purpose, endpoint))


def write_read(pool: ConnectionPool, record: ReadRecord) -> None:
    """``record`` on its own statement, committed (autocommit) before returning."""
    with pool.connection() as conn:
        conn.autocommit = True
        try:
            conn.execute(
                "INSERT INTO audit.reads (case_id, actor_id, actor_role, actor_organisation,"
                " purpose, endpoint) VALUES (%(read_case)s, %(read_actor)s, %(read_role)s,"
                " %(read_organisation)s, %(read_purpose)s, %(read_endpoint)s)",
                record.params(),
                prepare=True,
            )
        finally:
            conn.autocommit = False
    record.written = True


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
