"""Rebuild of all projections: wall seconds to rebuild caseload, staffing and red_flags.

On a fresh copy of the dataset, ``relief projections rebuild`` rebuilds every projection, a
process each, all at once (``--sequential``: one projection after another, each by
``relief projections rebuild NAME``). Each builds a new generation from position 0 while the
old one serves, then switches. Reports wall time (and when each projection went live, from the
command's progress lines) and the peak RSS. Target: ≤ 90 s at 1M events; below 1M the time is
also extrapolated linearly to 1M. No raw baseline (absolute target).

    .venv/bin/python bench/rebuild_all.py [--events N] [--sequential]
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, profiling, reporting, stores

#: Target at 1M events (issue 13).
TARGET_S = 90.0


def run(store: stores.Store, argv: list[str], profile: Path | None) -> tuple[float, int]:
    """Run one ``relief`` command to its end: (wall seconds, peak RSS in MB of it and the
    processes it waited for)."""
    started = time.perf_counter()
    service = stores.Service(store, "rebuild-" + "-".join(argv[2:] or ["all"]), argv)
    spy = None
    if profile is not None:
        spy = profiling.PySpy(service.pid, profile / f"{service.name}.txt").__enter__()
    _, status, usage = os.wait4(service.pid, 0)
    wall = time.perf_counter() - started
    service.process.returncode = os.waitstatus_to_exitcode(status)
    if spy is not None:
        spy.__exit__()
    assert service.process.returncode == 0, service.log_path.read_text()[-3000:]
    return wall, round(usage.ru_maxrss / 1024)


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--sequential", action="store_true")
    args = p.parse_args()
    from projections.registry import ALL_PROJECTIONS

    names = [projection.name for projection in ALL_PROJECTIONS]
    with stores.fresh_store(args, "rebuild_all") as store:
        events = store.head()
        per: dict[str, float] = {}
        peak = 0
        started = time.perf_counter()
        if args.sequential:
            for name in names:
                per[name], rss = run(store, ["projections", "rebuild", name], args.profile)
                peak = max(peak, rss)
        else:
            _, peak = run(store, ["projections", "rebuild"], args.profile)
        wall = time.perf_counter() - started
        log = (store.run_dir / "rebuild-all.log").read_text() if not args.sequential else ""
        for name in names:
            # the plain progress line: "<name> [###] ... generation N is live after S s"
            live = re.findall(rf"^{name} .*is live after ([\d.]+) s", log, re.M)
            if live:
                per[name] = float(live[-1])
        common.log(f"rebuilt in {wall:.1f}s: {per}")
    extrapolated = wall * 1_000_000 / events
    big = events >= 950_000
    result = reporting.Result(
        key="rebuild_all",
        figure="rebuild of all projections (1M events target)",
        unit="s",
        ours=wall,
        target=f"≤ {TARGET_S:.0f} s at 1M events",
        target_on="ours" if big else "extrapolated",
        target_op="<=",
        target_value=TARGET_S,
        details={
            "mode": "sequential" if args.sequential else "parallel processes",
            "seconds_per_projection": per,
            "peak_rss_mb": peak,
            "extrapolated_to_1M": round(extrapolated, 1),
        },
        note=(
            "`relief projections rebuild NAME` per projection, one after another."
            if args.sequential
            else "`relief projections rebuild`: every projection at once, a process each."
        )
        + ("" if big else f" Below 1M: linear extrapolation to 1M ≈ {extrapolated:,.0f} s."),
    )
    reporting.report(args, "bench/rebuild_all.py", [result], events)


if __name__ == "__main__":
    main()
