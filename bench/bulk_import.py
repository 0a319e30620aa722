"""Bulk import events/s (``relief import``'s code path) beside a raw COPY of the same rows.

Ours: a legacy export (tools/synthetic/legacy.py, ``--lines`` cases) imported line by line
through the application services over a ``BulkLedger``, exactly as ``relief import FILE`` does
(parse, validate, one unit per line, ~500 events per transaction), into a fresh copy of the
dataset. Events/s = events written / wall time of the import.

Baseline, same run, same table: the rows the import wrote (their topic and encrypted state
bytes, under new aggregate ids) COPYed into ``public.relief_events`` in one transaction that
takes the store's table lock and NOTIFY. The audit-chain trigger fires per row for both. A
second baseline (details) COPYs them in transactions of 500 rows, the BulkLedger's size.

    .venv/bin/python bench/bulk_import.py [--events N] [--lines 2000]
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, profiling, reporting, stores


def raw_copy(url: str, rows: list[tuple[Any, ...]], chunk: int) -> float:
    """COPY rows (new aggregate ids) into the events table, ``chunk`` rows per transaction,
    each under the store's lock and NOTIFY; returns seconds."""
    import psycopg

    fresh: dict[Any, uuid.UUID] = {}
    renamed = [(fresh.setdefault(r[0], uuid.uuid4()), r[1], r[2], r[3]) for r in rows]
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for start in range(0, len(renamed), chunk):
            with conn.transaction(), conn.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '10s'")
                cursor.execute("LOCK TABLE public.relief_events IN EXCLUSIVE MODE")
                cursor.execute("NOTIFY relief_events")
                with cursor.copy(
                    "COPY public.relief_events (originator_id, originator_version, topic, state)"
                    " FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["uuid", "int8", "text", "bytea"])
                    for row in renamed[start : start + chunk]:
                        copy.write_row(row)
        return time.perf_counter() - started


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--lines", type=int, default=2000, help="legacy cases to import")
    args = p.parse_args()
    from domain.clock import SetClock
    from infra.legacy_import import import_lines
    from tools.synthetic.legacy import legacy_lines

    with stores.fresh_store(args, "bulk_import") as store:
        runtime = store.runtime
        events = store.head()
        source = store.run_dir / "legacy.jsonl"
        with source.open("w", encoding="utf-8") as out:
            for line in legacy_lines(args.lines, seed=1000 + args.seed):
                out.write(line + "\n")
        head0 = runtime.head_position()
        common.log(f"importing {args.lines:,} legacy cases")
        started = time.perf_counter()
        with profiling.maybe_profile(args, os.getpid(), "bulk_import"):
            bulk = runtime.bulk(SetClock(runtime.services.clock.now()))
            with source.open(encoding="utf-8") as lines:
                imported = import_lines(bulk, lines)
        elapsed = time.perf_counter() - started
        bulk.close()
        ours = imported.events / elapsed
        with runtime.pool.connection() as conn:
            rows = conn.execute(
                "SELECT originator_id, originator_version, topic, state FROM public.relief_events"
                " WHERE notification_id > %s ORDER BY notification_id",
                (head0,),
            ).fetchall()
        assert len(rows) == imported.events, (len(rows), imported.events)
        common.log(f"ours {ours:,.0f} events/s; raw COPY of the same {len(rows):,} rows")
        one = raw_copy(store.url, rows, len(rows))
        chunked = raw_copy(store.url, rows, 500)
        result = reporting.Result(
            key="bulk_import",
            figure="bulk import events/s",
            unit="events/s",
            ours=ours,
            baseline=len(rows) / one,
            baseline_what="raw COPY of the same rows (new ids) into relief_events, one "
            "transaction with the store's table lock and NOTIFY (audit-chain trigger on for both)",
            target="≥ 0.25",
            target_on="ratio",
            target_op=">=",
            target_value=0.25,
            details={
                "lines": args.lines,
                "imported": imported.imported,
                "rejected": len(imported.rejects),
                "events": imported.events,
                "seconds": round(elapsed, 2),
                "copy_one_transaction_s": round(one, 2),
                "copy_500_per_transaction_per_s": round(len(rows) / chunked),
            },
            note="The import path of `relief import` (parse + validate + domain commands).",
        )
        reporting.report(args, "bench/bulk_import.py", [result], events)


if __name__ == "__main__":
    main()
