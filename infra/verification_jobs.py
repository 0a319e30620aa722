"""Verifications of the whole log run as jobs, not inside a request: at 1M events one takes
longer than any request may, and a request that waited for it would hold a worker, a database
session and its statement timeout. A job is recorded in ``audit.verification_jobs`` (so any
API process answers its status), run in a thread of the process that started it, and its
report kept; at most one runs at a time per database (a second request joins the running one).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

JOBS_DDL = (
    """CREATE TABLE IF NOT EXISTS audit.verification_jobs (
        id uuid PRIMARY KEY,
        requested_by text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        report jsonb,
        error text
    )""",
)
#: A job not finished after this long belongs to a process that stopped: another may start.
STALE = "1 hour"


def job(pool: ConnectionPool, job_id: uuid.UUID) -> dict[str, Any] | None:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT id, requested_by, started_at, finished_at, report, error"
            " FROM audit.verification_jobs WHERE id = %s",
            (job_id,),
        ).fetchone()
    if row is None:
        return None
    status = "failed" if row[5] else ("done" if row[3] else "running")
    return {
        "job": str(row[0]),
        "status": status,
        "requested_by": row[1],
        "started_at": row[2].isoformat(),
        "finished_at": row[3].isoformat() if row[3] else None,
        "report": row[4],
        "error": row[5],
    }


def start_or_join(
    pool: ConnectionPool, requested_by: str, run: Callable[[], dict[str, Any]]
) -> uuid.UUID:
    """The running verification's id, or a new one started now (in a thread here)."""
    with pool.connection() as conn, conn.transaction():
        conn.execute("LOCK TABLE audit.verification_jobs IN EXCLUSIVE MODE")
        row = conn.execute(
            "SELECT id FROM audit.verification_jobs WHERE finished_at IS NULL"
            f" AND started_at > now() - interval '{STALE}' ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            return uuid.UUID(str(row[0]))
        job_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO audit.verification_jobs (id, requested_by) VALUES (%s, %s)",
            (job_id, requested_by),
        )
    threading.Thread(
        target=_run, args=(pool, job_id, run), name=f"verification-{job_id}", daemon=True
    ).start()
    return job_id


def _run(pool: ConnectionPool, job_id: uuid.UUID, run: Callable[[], dict[str, Any]]) -> None:
    try:
        report, error = run(), None
    except Exception as failure:  # recorded for whoever asks; the log says more
        log.exception("verification %s failed", job_id)
        report, error = None, f"{type(failure).__name__}: {failure}"
    with pool.connection() as conn:
        conn.execute(
            "UPDATE audit.verification_jobs SET finished_at = now(), report = %s, error = %s"
            " WHERE id = %s",
            (json.dumps(report) if report is not None else None, error, job_id),
        )
