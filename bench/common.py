"""What every bench script shares: where things live, the command line, logging, statistics.

Every bench script measures one figure of issue 9 and, in the same run, a raw baseline (the
same work done by the simplest means PostgreSQL or Kafka offer); because these machines are
noisy, the ratio of the two is what we compare. Each script takes a fresh store
(``stores.fresh_store``: a file copy of a cached dataset, ``datasets``), measures, prints
figure, baseline, ratio and target, and records the result (``reporting``) unless
``--profile`` (``profiling``) is given. The HTTP load generators are in ``load``.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOME = Path(os.environ.get("RELIEF_BENCH_HOME", "/tmp/relief-bench"))
DEFAULT_RESULTS = ROOT / "bench" / "results.json"
DEFAULT_EVENTS = 100_000
BIN = Path(sys.executable).parent


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def exit_on_sigterm() -> None:
    """SIGTERM ends the process through SystemExit, so servers it started are stopped."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def parser(description: str | None) -> argparse.ArgumentParser:
    exit_on_sigterm()
    p = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0])
    p.add_argument(
        "--events",
        type=int,
        default=DEFAULT_EVENTS,
        help="history size: events in the dataset (default 100,000; 1,000,000 for the big size)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic province")
    p.add_argument("--home", type=Path, default=DEFAULT_HOME, help="datasets and run directories")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results JSON to update")
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="attach py-spy to the measured process and write its profile to DIR; "
        "profiled figures are printed, not recorded",
    )
    p.add_argument("--keep", action="store_true", help="keep the run directory afterwards")
    p.add_argument(
        "--dataset",
        type=Path,
        help="use this built dataset directory (run_all passes the one it built)",
    )
    return p


def size_label(events: int) -> str:
    if events >= 1_000_000 and events % 1_000_000 == 0:
        return f"{events // 1_000_000}M"
    if events >= 1000 and events % 1000 == 0:
        return f"{events // 1000}k"
    return str(events)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan
