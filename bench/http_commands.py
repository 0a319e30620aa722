"""Commands/s over HTTP: 4 concurrent clients, 1 event per command, beside raw inserts.

Ours: ``relief api`` (two worker processes by default, one per core, as a deployment runs it;
``--workers``) on a fresh copy of the dataset; 4 client
processes POST ``/cases/{id}/reviews`` (outcome continue: one ``Reviewed`` event) back to back,
each on its own approved cases (disjoint, so no conflicts), with a handling-staff bearer token
of the case's county. Baseline, same run, same table: 4 processes doing by hand what the store
does per command: one transaction with ``SET LOCAL lock_timeout``, ``LOCK TABLE
public.relief_events IN EXCLUSIVE MODE``, ``NOTIFY relief_events``, one INSERT ... RETURNING
of a stored Reviewed event's bytes, commit. The audit-chain trigger fires for both.

    .venv/bin/python bench/http_commands.py [--events N] [--seconds 8] [--rounds 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, load, profiling, reporting, stores


def sample_review(url: str) -> tuple[str, bytes]:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT topic, state FROM public.relief_events WHERE topic LIKE %s"
            " ORDER BY notification_id DESC LIMIT 1",
            ("%Reviewed",),
        ).fetchone()
    assert row is not None, "no Reviewed event to copy"
    return str(row[0]), bytes(row[1])


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--seconds", type=float, default=8.0, help="length of each measured round")
    p.add_argument("--rounds", type=int, default=2, help="rounds of (ours, baseline)")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="API worker processes (RELIEF_WORKERS): one per core, as a deployment runs it",
    )
    args = p.parse_args()
    with stores.fresh_store(args, "http_commands") as store:
        events = store.head()
        api = stores.start_api(store, workers=args.workers)
        requests = load.review_requests(store.settings, store.meta.targets)
        assert len(requests) >= args.clients, "dataset has too few approved cases"
        per_client = [(api.port, requests[i :: args.clients]) for i in range(args.clients)]
        common.log("warm-up")
        load.run_clients(load.command_client, per_client, min(2.0, args.seconds))
        topic, state = sample_review(store.url)
        raw = [(store.url, topic, state)] * args.clients
        ours, base, rounds = [], [], []
        for n in range(args.rounds):
            head0, api0, pg0 = store.head(), api.cpu_seconds(), store.postgres_cpu()
            with profiling.maybe_profile(args, api.pid, f"http_commands_api_round{n}"):
                rate, clients, _ = load.run_clients(load.command_client, per_client, args.seconds)
            api1, pg1 = api.cpu_seconds(), store.postgres_cpu()
            written = store.head() - head0
            done = sum(c["ok"] for c in clients)
            base_rate, raw_clients, _ = load.run_clients(load.raw_insert_client, raw, args.seconds)
            base_done = sum(c["ok"] for c in raw_clients)
            ours.append(rate)
            base.append(base_rate)
            rounds.append(
                {
                    "ours_per_s": round(rate, 1),
                    "baseline_per_s": round(base_rate, 1),
                    "commands": done,
                    "events_written": written,
                    "failed": sum(c["failed"] for c in clients),
                    "statuses": [c["statuses"] for c in clients if c["statuses"]],
                    "api_cpu_ms_per_command": round(1000 * (api1 - api0) / max(done, 1), 2),
                    "postgres_cpu_ms_per_command": round(1000 * (pg1 - pg0) / max(done, 1), 2),
                    "client_cpu_ms_per_command": round(
                        1000 * sum(c["cpu"] for c in clients) / max(done, 1), 2
                    ),
                    "baseline_postgres_cpu_ms_per_insert": round(
                        1000 * sum(c["server_cpu"] for c in raw_clients) / max(base_done, 1), 2
                    ),
                    "baseline_client_cpu_ms_per_insert": round(
                        1000 * sum(c["cpu"] for c in raw_clients) / max(base_done, 1), 2
                    ),
                }
            )
            common.log(f"round {n + 1}: ours {rate:,.0f}/s, baseline {base_rate:,.0f}/s")
        result = reporting.Result(
            key="http_commands",
            figure="commands/s over HTTP, 4 concurrent clients, 1 event per command",
            unit="commands/s",
            ours=common.median(ours),
            baseline=common.median(base),
            baseline_what="raw psycopg INSERT + commit with the store's lock timeout, "
            "LOCK TABLE relief_events IN EXCLUSIVE MODE and NOTIFY, 4 processes "
            "(audit-chain trigger on for both)",
            target="≥ 0.5",
            target_on="ratio",
            target_op=">=",
            target_value=0.5,
            details={
                "rounds": rounds,
                "seconds_per_round": args.seconds,
                "api_workers": args.workers,
            },
            note=f"API is `relief api` alone (no relay/projections in its processes), "
            f"{args.workers} worker process(es); median of rounds.",
        )
        reporting.report(args, "bench/http_commands.py", [result], events)


if __name__ == "__main__":
    main()
