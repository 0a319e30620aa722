"""Projection catch-up events/s from the PostgreSQL feed, beside raw batched INSERTs.

The dataset's projections stand ``window`` events (10,000 at the default and 1M sizes) behind
the head of a log of ``--events`` events: a runner that fell behind. Ours: the three
projections (caseload, staffing, red_flags) catch up as ``relief projections run`` runs them,
one ``PostgresFeedRunner`` thread each in one process, ``RELIEF_PROJECTION_BATCH`` (1,000)
events per transaction; events/s = window / wall time until all three reached the head.

Baseline, same run: the same rows (read from the log 1,000 at a time) INSERTed into a plain
table of the same columns, 100 rows per transaction (executemany).

    .venv/bin/python bench/projection_catchup.py [--events N]
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common


def raw_batched_insert(url: str, start: int) -> tuple[int, float]:
    """Copy the log's rows after ``start`` into a plain table, 100 per transaction."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE bench_raw_rows (notification_id bigint, originator_id uuid,"
            " originator_version bigint, topic text, state bytea)"
        )
        conn.commit()
        rows_done = 0
        position = start
        started = time.perf_counter()
        while True:
            rows = conn.execute(
                "SELECT notification_id, originator_id, originator_version, topic, state"
                " FROM public.relief_events WHERE notification_id > %s"
                " ORDER BY notification_id LIMIT 1000",
                (position,),
            ).fetchall()
            conn.commit()
            if not rows:
                break
            for chunk in range(0, len(rows), 100):
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO bench_raw_rows VALUES (%s, %s, %s, %s, %s)",
                        rows[chunk : chunk + 100],
                    )
            rows_done += len(rows)
            position = rows[-1][0]
        return rows_done, time.perf_counter() - started


def main() -> None:
    p = common.parser(__doc__)
    args = p.parse_args()
    from projections.registry import ALL_PROJECTIONS

    with common.fresh_store(args, "projection_catchup") as store:
        runtime = store.runtime
        events = store.head()
        start = store.meta.window_start
        window = events - start
        per: dict[str, dict[str, Any]] = {}

        def catch_up(projection: Any) -> None:
            runner = runtime.projection_runner(projection)
            t0 = time.perf_counter()
            covered = runner.catch_up()
            per[projection.name] = {"events": covered, "seconds": time.perf_counter() - t0}

        common.log(f"catching up {window:,} events, three projections")
        threads = [threading.Thread(target=catch_up, args=(p,)) for p in ALL_PROJECTIONS]
        started = time.perf_counter()
        with common.maybe_profile(args, os.getpid(), "projection_catchup_postgres"):
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        wall = time.perf_counter() - started
        for name, item in per.items():
            assert item["events"] == window, (name, item, window)
            item["events_per_s"] = round(item["events"] / item["seconds"])
            item["seconds"] = round(item["seconds"], 2)
        common.log("baseline: raw batched INSERT")
        rows, seconds = raw_batched_insert(store.url, start)
        assert rows == window
        result = common.Result(
            key="projection_catchup_postgres",
            figure="projection catch-up events/s, PostgreSQL feed",
            unit="events/s",
            ours=window / wall,
            baseline=rows / seconds,
            baseline_what="raw batched INSERT of the same rows into a plain table, "
            "100 per transaction",
            target="≥ 0.4",
            target_on="ratio",
            target_op=">=",
            target_value=0.4,
            details={"window": window, "wall_s": round(wall, 2), "projections": per},
            note="Ours = all three projections caught up (threads of one process, as "
            "`relief projections run`); per-projection rates in details.",
        )
        common.report(args, "bench/projection_catchup.py", [result], events)


if __name__ == "__main__":
    main()
