"""Rebuild of all projections: wall seconds to rebuild caseload, staffing and red_flags.

On a fresh copy of the dataset, ``relief projections rebuild NAME`` runs for every projection,
as its own process, all three at once (the fastest the shipped commands allow on this
machine; ``--sequential`` runs them one after another). Each builds a new generation from
position 0 while the old one serves, then switches. Reports wall time and each process's peak
RSS. Target: ≤ 3 min at 1M events; below 1M the time is also extrapolated linearly to 1M.
No raw baseline (absolute target).

    .venv/bin/python bench/rebuild_all.py [--events N] [--sequential]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--sequential", action="store_true")
    args = p.parse_args()
    from projections.registry import ALL_PROJECTIONS

    with common.fresh_store(args, "rebuild_all") as store:
        events = store.head()
        per: dict[str, dict[str, Any]] = {}
        started = time.perf_counter()
        pending: dict[int, tuple[str, float, common.Service]] = {}
        names = [p.name for p in ALL_PROJECTIONS]
        profiles = []

        def launch(name: str) -> None:
            service = common.Service(store, f"rebuild-{name}", ["projections", "rebuild", name])
            pending[service.pid] = (name, time.perf_counter(), service)
            if args.profile is not None:
                spy = common.PySpy(service.pid, args.profile / f"rebuild_{name}.txt")
                spy.__enter__()
                profiles.append(spy)

        queue = list(names)
        for name in queue if not args.sequential else queue[:1]:
            launch(name)
        queue = [] if not args.sequential else queue[1:]
        while pending:
            pid, status, usage = os.wait4(-1, 0)
            if pid not in pending:
                continue
            name, began, service = pending.pop(pid)
            service.process.returncode = os.waitstatus_to_exitcode(status)
            assert service.process.returncode == 0, service.log_path.read_text()[-2000:]
            per[name] = {
                "seconds": round(time.perf_counter() - began, 1),
                "peak_rss_mb": round(usage.ru_maxrss / 1024),
                "events_per_s": round(events / (time.perf_counter() - began)),
            }
            common.log(f"{name} rebuilt: {per[name]}")
            if queue:
                launch(queue.pop(0))
        wall = time.perf_counter() - started
        for spy in profiles:
            spy.__exit__()
        extrapolated = wall * 1_000_000 / events
        big = events >= 950_000
        result = common.Result(
            key="rebuild_all",
            figure="rebuild of all projections (1M events target)",
            unit="s",
            ours=wall,
            target="≤ 3 min at 1M events",
            target_on="ours" if big else "extrapolated",
            target_op="<=",
            target_value=180.0,
            details={
                "mode": "sequential" if args.sequential else "parallel processes",
                "projections": per,
                "extrapolated_to_1M": round(extrapolated, 1),
            },
            note="`relief projections rebuild NAME` per projection, "
            + ("one after another." if args.sequential else "three processes at once.")
            + ("" if big else f" Below 1M: linear extrapolation to 1M ≈ {extrapolated:,.0f} s."),
        )
        common.report(args, "bench/rebuild_all.py", [result], events)


if __name__ == "__main__":
    main()
