"""Projection catch-up events/s from the PostgreSQL feed, beside raw batched INSERTs.

The dataset's projections stand ``window`` events (10,000 at the default and 1M sizes) behind
the head of a log of ``--events`` events: a runner that fell behind. Ours, each on a fresh copy:
every projection alone, then all six together as ``relief projections run`` runs them (a
process each), with the runners' batch settings: ``RELIEF_PROJECTION_BATCH`` (1,000) events in
the first transaction, then up to ``RELIEF_PROJECTION_CATCH_UP_BATCH`` (5,000) while behind;
events/s = window / wall time until the projection(s) reached the head, from the moment the
(already started and imported) runner processes are released. A runner that reached the head
stays up until the others have too, as under ``relief projections run``: until 2026-12-01 each
exited at once, and five exits (about 0.6 CPU seconds in all) ran beside red_flags' catch-up on
this 2-core machine: all six at 1M caught up at 8.5-8.7k events/s, held 11.1-12.9k (two runs
each, one copy of the dataset).

Baseline, same run: the same rows (read from the log 1,000 at a time) INSERTed into a plain
table of the same columns, 100 rows per transaction (executemany).

Each figure is the median of ``--repeats`` runs (3), each on a fresh copy; the baseline is
measured on every copy, just before ours, and each figure's baseline is the median of those
measured on its own copies (the same minutes of the machine's). Until 2026-12-01 it was the
median over every copy of the run, which a machine that slowed down during the run (baselines
of 46.7k rows/s at its start, 23.9k at its end, in the 1M run of that day) set against
figures measured at another speed: red_flags alone measured 0.41-0.43 of the baseline of each
of its copies and 0.327 of that median. The details keep every baseline and that ratio too.
One 10k window is under a second of work: in single runs, red_flags alone measured 0.30 to
0.43 of the baseline on the same tree, and the baseline itself 42k to 51k rows/s.

    .venv/bin/python bench/projection_catchup.py [--events N]
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, profiling, reporting, stores


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


def catch_up_process(
    settings: Any, name: str, ready: Any, go: Any, done: Any, finished: Any
) -> None:
    """One projection's runner in a process of its own: ready, then released, then caught up;
    it stays up (as under ``relief projections run``) until every runner has caught up."""
    from infra.runtime import Runtime
    from projections.registry import projection_class

    runtime = Runtime.open(settings, init=False, role=name)
    runner = runtime.projection_runner(projection_class(name))
    ready.put(name)
    go.wait()
    started = time.perf_counter()
    covered = runner.catch_up()
    done.put((name, covered, time.perf_counter() - started))
    # A runner that exited here would spend its exit (closing its pool, tearing down an
    # interpreter: a tenth of a CPU second each) beside the runners still catching up.
    finished.wait()
    runtime.close()


def catch_up(
    store: stores.Store, names: list[str], profile: Path | None
) -> tuple[float, dict[str, dict[str, Any]]]:
    """Wall seconds for ``names`` to catch up the window, a process each; per-process rates."""
    context = multiprocessing.get_context("spawn")
    ready, go, done = context.Queue(), context.Event(), context.Queue()
    finished = context.Event()
    settings = store.settings.with_(database_url=store.url)
    processes = [
        context.Process(target=catch_up_process, args=(settings, name, ready, go, done, finished))
        for name in names
    ]
    for process in processes:
        process.start()
    # The processes import and connect before the clock starts: on a loaded machine six of
    # them take longer than any fixed pause, and their imports would be counted as catch-up.
    for _ in names:
        ready.get(timeout=600)
    time.sleep(0.5)  # let the last one reach its wait
    spies = [
        profiling.PySpy(p.pid, profile / f"projection_catchup_{n}.txt").__enter__()
        for p, n in zip(processes, names, strict=True)
        if profile is not None
    ]
    started = time.perf_counter()
    go.set()
    per: dict[str, dict[str, Any]] = {}
    for _ in names:
        name, covered, seconds = done.get(timeout=3600)
        per[name] = {
            "events": covered,
            "seconds": round(seconds, 2),
            "events_per_s": round(covered / seconds),
        }
    wall = time.perf_counter() - started
    finished.set()
    for process in processes:
        process.join()
    for spy in spies:
        spy.__exit__()
    return wall, per


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument(
        "--repeats", type=int, default=3, help="runs of each figure, each on a fresh copy"
    )
    args = p.parse_args()
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    from projections.registry import ALL_PROJECTIONS

    names = [projection.name for projection in ALL_PROJECTIONS]
    baselines: list[float] = []  # rows/s, one per copy
    paired: dict[str, list[float]] = {}  # the baselines of each figure's own copies
    measured: dict[str, list[tuple[float, dict[str, dict[str, Any]]]]] = {}
    events = window = 0
    for repeat in range(args.repeats):
        for run in [[name] for name in names] + [names]:
            label = "+".join(run)
            with stores.fresh_store(args, f"projection_catchup_{label}") as store:
                events = store.head()
                start = store.meta.window_start
                window = events - start
                rows, seconds = raw_batched_insert(store.url, start)
                assert rows == window
                baselines.append(rows / seconds)
                paired.setdefault(label, []).append(rows / seconds)
                common.log(f"catching up {window:,} events: {label} (run {repeat + 1})")
                wall, per = catch_up(store, run, args.profile)
            for name, item in per.items():
                assert item["events"] == window, (name, item, window)
            measured.setdefault(label, []).append((window / wall, per))
            common.log(f"{label}: {window / wall:,.0f} events/s, baseline {baselines[-1]:,.0f}")
    every_copy = statistics.median(baselines)
    runs = {
        "baselines_rows_per_s": [round(b) for b in baselines],
        "baseline_of_every_copy": round(every_copy),
        "repeats": args.repeats,
        "window": window,
    }

    def paired_details(label: str, ours: float) -> dict[str, Any]:
        return {
            "baselines_of_its_copies": [round(b) for b in paired[label]],
            "ratio_to_every_copy_baseline": round(ours / every_copy, 3),
        }

    alone = {name: statistics.median(r for r, _ in measured[name]) for name in names}
    results = [
        reporting.Result(
            key=f"projection_catchup_postgres_{name}",
            figure=f"projection catch-up events/s, PostgreSQL feed, {name} alone",
            unit="events/s",
            ours=alone[name],
            baseline=statistics.median(paired[name]),
            baseline_what="raw batched INSERT of the same rows into a plain table, "
            "100 per transaction",
            target="≥ 0.4",
            target_on="ratio",
            target_op=">=",
            target_value=0.4,
            details={
                **runs,
                **paired_details(name, alone[name]),
                "events_per_s": [round(r) for r, _ in measured[name]],
            },
            note=f"One runner process alone catching up the window; the median of "
            f"{args.repeats} runs, each on a fresh copy, and of the baselines measured on "
            "those copies just before.",
        )
        for name in names
    ]
    label = "+".join(names)
    together = measured[label]
    together_ours = statistics.median(r for r, _ in together)
    results.append(
        reporting.Result(
            key="projection_catchup_postgres",
            figure="projection catch-up events/s, PostgreSQL feed, all six together "
            "(divisions, policies, caseload, staffing, standards, red_flags)",
            unit="events/s",
            ours=together_ours,
            baseline=statistics.median(paired[label]),
            baseline_what="raw batched INSERT of the same rows into a plain table, "
            "100 per transaction",
            target="≥ 0.25",
            target_on="ratio",
            target_op=">=",
            target_value=0.25,
            details={
                **runs,
                **paired_details(label, together_ours),
                "events_per_s": [round(r) for r, _ in together],
                "projections": [per for _, per in together],
                "alone_events_per_s": {k: round(v) for k, v in alone.items()},
                "cpus": os.cpu_count(),
            },
            note="All six at once, a process each (as `relief projections run`); each "
            f"projection alone in its own rows. Medians of {args.repeats} runs (above).",
        )
    )
    reporting.report(args, "bench/projection_catchup.py", results, int(events))


if __name__ == "__main__":
    main()
