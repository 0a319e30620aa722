"""Embedded PostgreSQL (pgserver) for machines without a configured database.

The data directory survives restarts. pgserver reference-counts the processes using one data
directory in a file and stops the server when the last of them exits; a process that crashed
leaves its pid in that file, so dead pids are pruned first or the server would never stop.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


def _prune_dead_handles(pgdata: Path) -> None:
    handle_file = pgdata / ".handle_pids.json"
    if not handle_file.exists():
        return
    try:
        pids = json.loads(handle_file.read_text() or "[]")
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        log.info("pruning stale pgserver handles %s", sorted(set(pids) - set(alive)))
        handle_file.write_text(json.dumps(alive))


def start_embedded_postgres(data_dir: Path, *, cleanup_mode: str | None = "stop") -> str:
    """Start (or join) the embedded server under ``data_dir/pgdata``; return its URL."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(Path("/tmp") / f"runtime-{os.getuid()}"))
    runtime_dir = Path(os.environ["XDG_RUNTIME_DIR"])
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if runtime_dir.stat().st_uid == os.getuid():
        runtime_dir.chmod(0o700)
    from pgserver.postgres_server import get_server  # late: it creates directories on import

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    if pgdata.exists():
        _prune_dead_handles(pgdata)
    server = get_server(pgdata, cleanup_mode=cleanup_mode)
    url: str = server.get_uri()
    log.info("embedded PostgreSQL at %s (data in %s)", url, pgdata)
    return url
