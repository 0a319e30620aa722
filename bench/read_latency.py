"""GET /caseload, /staffing, /alerts p99 ms at 100 req/s while 50 commands/s run; and the
projection lag (commit to applied by every projection) p50 and p99 in seconds meanwhile.

On a fresh copy of the dataset, ``relief api`` and ``relief projections run`` run as their own
processes (as README's production layout); the runner first catches up the dataset's window.
Then, open loop for ``--seconds``: 100 GET/s in all (a third each on /caseload, /staffing and
/alerts, as a province-wide supervisor, default parameters) and 50 commands/s (one-event
reviews on approved cases, county handling staff); the projections follow the commands live.
Latency is from each request's scheduled send time to its answer. No raw baseline (absolute
target); the same GETs with no command load are measured first for context (details).

    .venv/bin/python bench/read_latency.py [--events N] [--seconds 20]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, load, profiling, reporting, stores


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--seconds", type=float, default=20.0, help="length of the loaded phase")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="GETs without commands")
    p.add_argument("--get-rate", type=float, default=100.0)
    p.add_argument("--command-rate", type=float, default=50.0)
    args = p.parse_args()
    with stores.fresh_store(args, "read_latency") as store:
        events = store.head()
        api = stores.start_api(store)
        runner = stores.Service(store, "projections", ["projections", "run"])
        waited = load.wait_projections(store, runner)
        common.log(f"projections caught up the window in {waited:.1f}s")
        reads = load.dashboard_streams(store.settings, args.get_rate)
        commands = load.command_stream(store.settings, store.meta.targets, args.command_rate)
        load.open_loop(api.port, reads, min(2.0, args.idle_seconds))  # warm-up
        idle = load.open_loop(api.port, reads, args.idle_seconds)
        capacity = load.closed_loop(api.port, reads, min(5.0, args.idle_seconds))
        common.log(f"capacity for the GET mix alone: {capacity:,.0f} requests/s")
        common.log(f"idle: { ({k: v['p99_ms'] for k, v in idle.items()}) }")
        with (
            load.LagSampler(store) as lag,
            load.ProjectionDelay(store) as delay,
            profiling.maybe_profile(args, api.pid, "read_latency_api"),
        ):
            loaded = load.open_loop(api.port, [*reads, commands], args.seconds)
        common.log(f"loaded: { ({k: v['p99_ms'] for k, v in loaded.items()}) }")
        results = []
        for name in ("caseload", "staffing", "alerts"):
            got = loaded[name]
            assert got["failed"] == 0, got
            results.append(
                reporting.Result(
                    key=f"read_latency_{name}",
                    figure=f"GET /{name} p99 at 100 req/s of reads while 50 commands/s run",
                    unit="ms",
                    ours=got["p99_ms"],
                    target="≤ 20 ms",
                    target_on="ours",
                    target_op="<=",
                    target_value=20.0,
                    details={
                        "loaded": got,
                        "idle": idle[name],
                        "commands": loaded["commands"],
                        "max_projection_lag_events": max(lag.lags, default=0),
                        "get_mix_capacity_per_s": round(capacity, 1),
                        "seconds": args.seconds,
                    },
                    note="Province-wide supervisor, default parameters; latency from the "
                    "scheduled send time; the API's capacity for the GET mix alone in details.",
                )
            )
        details = {
            "samples": len(delay.delays),
            "max_s": round(max(delay.delays, default=0.0), 3),
            "commands": loaded["commands"],
            "seconds": args.seconds,
        }
        for q in (50, 99):
            results.append(
                reporting.Result(
                    key=f"projection_lag_p{q}",
                    figure=f"projection lag p{q} while 100 req/s of reads and 50 commands/s run",
                    unit="s",
                    ours=common.percentile(delay.delays, q),
                    target="≤ 1 s",
                    target_on="ours",
                    target_op="<=",
                    target_value=1.0,
                    details=details,
                    note="From an event's commit to every projection having applied it "
                    "(`relief projections run`, a process each), sampled every 20 ms.",
                )
            )
        reporting.report(args, "bench/read_latency.py", results, events)


if __name__ == "__main__":
    main()
