"""Run every bench script at one size and write the results table (``make bench``).

    .venv/bin/python bench/run_all.py                     # default size, ~100k events
    .venv/bin/python bench/run_all.py --events 1000000    # the big size (all figures)
    .venv/bin/python bench/run_all.py --events 1000000 --only rebuild_all,peak_rss

Each script runs as its own process against its own fresh copy of the size's dataset (built
first, once, and cached under $RELIEF_BENCH_HOME). Results accumulate, one row per figure and
size, in bench/results.json and bench/results.md (markdown table: figure | ours | baseline |
ratio | target | met?, and how each figure changes from the smallest to the largest size).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, datasets, reporting

#: script -> extra arguments at the default durations
SCRIPTS: dict[str, list[str]] = {
    "http_commands": [],
    "bulk_import": [],
    "case_latest": [],
    "case_as_of": [],
    "projection_catchup": [],
    "kafka_catchup": [],
    "chain_verify": [],
    "read_latency": [],
    "dashboard_reads": [],
    "rebuild_all": [],
    "peak_rss": [],
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--events", type=int, default=common.DEFAULT_EVENTS)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--home", type=Path, default=common.DEFAULT_HOME)
    p.add_argument("--results", type=Path, default=common.DEFAULT_RESULTS)
    p.add_argument("--only", help="comma-separated scripts to run (default: all)")
    p.add_argument("--skip", default="", help="comma-separated scripts to leave out")
    p.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="SCRIPT:ARGS",
        help="extra arguments for one script, e.g. 'http_commands:--seconds 4'",
    )
    args = p.parse_args()
    common.exit_on_sigterm()
    chosen = [s.strip() for s in args.only.split(",")] if args.only else list(SCRIPTS)
    unknown = set(chosen) - set(SCRIPTS)
    if unknown:
        p.error(f"unknown scripts {sorted(unknown)}; known: {', '.join(SCRIPTS)}")
    skipped = {s.strip() for s in args.skip.split(",") if s.strip()}
    extra: dict[str, list[str]] = {}
    for item in args.extra:
        name, _, rest = item.partition(":")
        extra.setdefault(name, []).extend(rest.split())
    started = time.perf_counter()
    common.log(f"dataset of ~{args.events:,} events")
    dataset, meta = datasets.ensure_dataset(args.home, args.events, args.seed)
    reporting.record_dataset(args.results, meta)
    failed = []
    timings = {}
    for name in chosen:
        if name in skipped:
            continue
        argv = [
            sys.executable,
            str(common.ROOT / "bench" / f"{name}.py"),
            "--events",
            str(args.events),
            "--seed",
            str(args.seed),
            "--home",
            str(args.home),
            "--results",
            str(args.results),
            "--dataset",
            str(dataset),
            *SCRIPTS[name],
            *extra.get(name, []),
        ]
        common.log(f"== {name}")
        t0 = time.perf_counter()
        child = subprocess.Popen(
            argv, cwd=common.ROOT, env={**os.environ, "PYTHONPATH": str(common.ROOT)}
        )
        try:
            code = child.wait()
        except BaseException:  # Ctrl-C or SIGTERM: the script stops its servers, then we go
            child.terminate()
            child.wait(60)
            raise
        timings[name] = round(time.perf_counter() - t0)
        if code != 0:
            failed.append(name)
            common.log(f"{name} FAILED (exit {code})")
    total = time.perf_counter() - started
    common.log(f"done in {total / 60:.1f} min: {timings}")
    print(f"results: {args.results} and {args.results.with_suffix('.md')}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
