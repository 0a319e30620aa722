"""Projection catch-up speed: rebuild each projection from position 0, in events/s, beside a
raw baseline measured in the same run (batched INSERTs of as many rows, 100 per transaction).

    .venv/bin/python bench/projection_catchup.py [--applications 3000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from infra.projection_runner import rebuild
from infra.runtime import Runtime
from infra.settings import Settings
from projections.registry import ALL_PROJECTIONS
from tests.scenario import application, approve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--applications", type=int, default=3000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    server = args.database_url
    data_dir = Path("/tmp") / f"relief-bench-{uuid.uuid4().hex[:6]}"
    if server is None:
        from infra.embedded_postgres import start_embedded_postgres

        server = start_embedded_postgres(Settings().data_dir.parent / "relief-bench")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(server, dbname=name)
    runtime = Runtime.open(Settings(database_url=url, data_dir=data_dir))
    try:
        started = time.perf_counter()
        for n in range(args.applications):
            case = application(runtime.ledger, ("440103", "440104", "440305")[n % 3])
            if n % 2:
                approve(runtime.ledger, case)
        events = runtime.head_position()
        print(
            json.dumps(
                {
                    "written_events": events,
                    "write_events_per_s": round(events / (time.perf_counter() - started)),
                }
            )
        )
        for projection in ALL_PROJECTIONS:
            started = time.perf_counter()
            rebuild(
                runtime.pool,
                runtime.ledger.recorder,
                runtime.ledger.mapper,
                projection,
                batch_size=runtime.settings.projection_batch,
            )
            elapsed = time.perf_counter() - started
            print(
                json.dumps(
                    {
                        "projection": projection.name,
                        "events": events,
                        "seconds": round(elapsed, 2),
                        "events_per_s": round(events / elapsed),
                    }
                )
            )
        with runtime.pool.connection() as conn:
            conn.execute("CREATE TEMP TABLE baseline (id bigint, payload text)")
            started = time.perf_counter()
            for start in range(0, events, 100):
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO baseline VALUES (%s, %s)",
                        [(i, "x" * 200) for i in range(start, start + 100)],
                    )
            elapsed = time.perf_counter() - started
        print(
            json.dumps(
                {
                    "baseline": "raw batched INSERT, 100 rows per transaction",
                    "rows": events,
                    "rows_per_s": round(events / elapsed),
                }
            )
        )
    finally:
        runtime.close()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
