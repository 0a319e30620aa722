"""Peak memory (RSS) of the API process and of the projection runner process.

On a fresh copy of the dataset, ``relief api`` and ``relief projections run`` (the three
projections, PostgreSQL feed) run as their own processes. The runner first catches up the
dataset's window, then both serve an open-loop mixed load for ``--seconds``: 50 commands/s,
100 dashboard GETs/s, 10/s reads of 200-event cases, 10/s as-of reads of them and 2/s case
histories. The figure is each process's kernel high-water mark (VmHWM) at the end; RSS is also
sampled every 0.5 s (details). Target ≤ 300 MB each at 1M events. No raw baseline.

    .venv/bin/python bench/peak_rss.py [--events N] [--seconds 30]
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
from pathlib import Path
from urllib.parse import quote

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, load, reporting, stores


def case_streams(store: stores.Store, seed: int) -> list[load.Stream]:
    cases = store.meta.case200
    tokens = {
        county: load.token(store.settings, "handling_staff", county, county, f"bench-{county}")
        for _, county in cases
    }
    with store.runtime.pool.connection() as conn:
        spans = {
            case_id: conn.execute(
                "SELECT min(recorded_at), max(recorded_at) FROM audit.chain"
                " WHERE originator_id = %s",
                (case_id,),
            ).fetchone()
            for case_id, _ in cases
        }
    rng = random.Random(seed)

    def headers(county: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[county]}", "X-Purpose": "benchmark"}

    def latest(k: int) -> tuple[str, str, None, dict[str, str]]:
        case_id, county = cases[k % len(cases)]
        return ("GET", f"/cases/{case_id}", None, headers(county))

    def as_of(k: int) -> tuple[str, str, None, dict[str, str]]:
        case_id, county = cases[k % len(cases)]
        first, last = spans[case_id]
        at = first + (last - first) * rng.random()
        return ("GET", f"/cases/{case_id}/as-of?at={quote(at.isoformat())}", None, headers(county))

    def history(k: int) -> tuple[str, str, None, dict[str, str]]:
        case_id, county = cases[k % len(cases)]
        return ("GET", f"/cases/{case_id}/history", None, headers(county))

    return [
        load.Stream("case", 10, latest),
        load.Stream("as_of", 10, as_of),
        load.Stream("history", 2, history),
    ]


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--seconds", type=float, default=30.0)
    args = p.parse_args()
    with stores.fresh_store(args, "peak_rss") as store:
        events = store.head()
        api = stores.start_api(store)
        runner = stores.Service(store, "projections", ["projections", "run"])
        samples: dict[str, list[float]] = {"api": [], "runner": []}
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                with contextlib.suppress(OSError, KeyError):
                    samples["api"].append(api.rss_mb())
                    samples["runner"].append(runner.rss_mb())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        waited = load.wait_projections(store, runner)
        streams = [
            *load.dashboard_streams(store.settings, 100),
            load.command_stream(store.settings, store.meta.targets, 50),
            *case_streams(store, args.seed),
        ]
        common.log(f"runner caught up in {waited:.1f}s; mixed load for {args.seconds:.0f}s")
        served = load.open_loop(api.port, streams, args.seconds)
        load.wait_projections(store, runner)
        stop.set()
        sampler.join(5)
        peaks = {"api": api.peak_rss_mb(), "runner": runner.peak_rss_mb()}
        ends = {"api": api.rss_mb(), "runner": runner.rss_mb()}
        results = []
        for name, what in (("api", "API (relief api)"), ("runner", "projection runner")):
            results.append(
                reporting.Result(
                    key=f"peak_rss_{name}",
                    figure=f"peak memory (RSS) of the {what}",
                    unit="MB",
                    ours=peaks[name],
                    target="≤ 300 MB at 1M events",
                    target_on="ours",
                    target_op="<=",
                    target_value=300.0,
                    details={
                        "rss_at_end_mb": round(ends[name]),
                        "max_sampled_mb": round(max(samples[name], default=0)),
                        "runner_catch_up_s": round(waited, 1),
                        "load": {
                            k: {"rate": v["rate"], "failed": v["failed"]} for k, v in served.items()
                        },
                    },
                    note="VmHWM after the runner caught up the window and a mixed load.",
                )
            )
        reporting.report(args, "bench/peak_rss.py", results, events)


if __name__ == "__main__":
    main()
