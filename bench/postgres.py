"""Starting and stopping the bench's embedded PostgreSQL servers, one data directory at a time.

pgserver's stop (``pg_ctl -w stop``) can give up after its timeout and kill the postmaster,
whose children then go on for a while holding the data directory's lock and its socket's lock
file; a server started on the same directory meanwhile fails ("lock file already exists").
So a stop here waits until every process of the server is gone, and a start first waits for
any server of the directory that is still stopping.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

#: How long a server may take to stop (a big dataset's shutdown checkpoint is slow).
STOP_TIMEOUT_S = 600.0


def _server_processes(pgdata: Path) -> list[int]:
    """Pids of the postmaster of ``pgdata`` (as its postmaster.pid names it) and its children,
    while any is alive."""
    import psutil

    pid_file = pgdata / "postmaster.pid"
    try:
        postmaster = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    alive = []
    try:
        process = psutil.Process(postmaster)
        if process.status() != psutil.STATUS_ZOMBIE:
            alive.append(postmaster)
    except psutil.Error:
        pass
    for process in psutil.process_iter(["ppid", "status"]):
        if process.info["ppid"] == postmaster and process.info["status"] != psutil.STATUS_ZOMBIE:
            alive.append(process.pid)
    return alive


def wait_until_stopped(pgdata: Path, timeout: float = STOP_TIMEOUT_S) -> None:
    """Return once no process of the server of ``pgdata`` is left."""
    deadline = time.monotonic() + timeout
    while _server_processes(pgdata):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the PostgreSQL server of {pgdata} did not stop")
        time.sleep(0.1)


def start_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded server of ``data_dir``, once an earlier one has stopped;
    its URL."""
    from infra.embedded_postgres import start_embedded_postgres

    pgdata = data_dir / "pgdata"
    try:
        holders = json.loads((pgdata / ".handle_pids.json").read_text() or "[]")
    except (OSError, ValueError):
        holders = []
    if not holders:  # nobody holds a server of it: one still alive is stopping
        wait_until_stopped(pgdata)
    return start_embedded_postgres(data_dir)


def stop_postgres(pgdata: Path) -> None:
    """Stop the server of ``pgdata`` (this process holding its last handle) and wait until
    every process of it has exited."""
    import psycopg
    from pgserver import get_server

    server = get_server(pgdata)
    try:
        # Flush now, under no timeout: the shutdown checkpoint then has nothing left to write.
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error:
        pass
    server.cleanup()  # the last handle: pg_ctl stop
    wait_until_stopped(pgdata)
