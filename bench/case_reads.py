"""Reading one 200-event case over HTTP beside the raw SELECT of its rows (case_latest.py,
case_as_of.py)."""

from __future__ import annotations

import argparse
import json
import statistics
import time

from bench.common import log, percentile
from bench.datasets import CASE_EVENTS
from bench.load import Http, token
from bench.profiling import maybe_profile
from bench.reporting import Result, report
from bench.stores import fresh_store, start_api
from domain.case import ReliefCase

RAW_CASE_SELECT = (
    "SELECT originator_id, originator_version, topic, state FROM public.relief_events"
    " WHERE originator_id = %s ORDER BY originator_version"
)


def measure_case_reads(args: argparse.Namespace, mode: str) -> None:
    """p50 and p99 of reading a 200-event case over HTTP (``latest``: GET /cases/{id};
    ``as_of``: GET /cases/{id}/as-of?at=<a random instant of its history>), each request
    followed by the raw SELECT of the case's 200 rows on its own connection (interleaved, so
    both see the same noise). The ledger's own read in this process is timed too (details)."""
    import random
    from urllib.parse import quote
    from uuid import UUID

    import psycopg

    from infra.audit_chain import version_at

    with fresh_store(args, f"case_{mode}") as store:
        events = store.head()
        runtime = store.runtime
        # What the ledger's saves would have left had the dataset's events been written with
        # snapshots on (RELIEF_SNAPSHOT_INTERVAL, default 50): snapshots at each multiple.
        interval = store.settings.snapshot_interval
        snapshots = runtime.ledger.take_snapshots(interval) if interval else 0
        log(f"{snapshots} snapshots taken (every {interval} events)")
        api = start_api(store)
        cases = store.meta.case200
        tokens = {
            county: token(store.settings, "handling_staff", county, county, f"bench-{county}")
            for _, county in cases
        }
        spans = {}
        with runtime.pool.connection() as conn:
            for case_id, _ in cases:
                row = conn.execute(
                    "SELECT min(recorded_at), max(recorded_at), count(*) FROM audit.chain"
                    " WHERE originator_id = %s",
                    (case_id,),
                ).fetchone()
                assert row is not None and row[2] == CASE_EVENTS, row
                spans[case_id] = (row[0], row[1])
        rng = random.Random(args.seed)
        client = Http(api.port)
        raw = psycopg.connect(store.url, autocommit=True)
        ours: list[float] = []
        base: list[float] = []
        ledger_ms: list[float] = []
        versions: list[int] = []

        def one(measure: bool) -> None:
            case_id, county = rng.choice(cases)
            headers = {"Authorization": f"Bearer {tokens[county]}", "X-Purpose": "benchmark"}
            at = None
            if mode == "as_of":
                first, last = spans[case_id]
                at = first + (last - first) * rng.random()
                path = f"/cases/{case_id}/as-of?at={quote(at.isoformat())}"
            else:
                path = f"/cases/{case_id}"
            t0 = time.perf_counter()
            status, body = client.request("GET", path, headers=headers)
            t1 = time.perf_counter()
            assert status == 200, (status, body[:300])
            rows = raw.execute(RAW_CASE_SELECT, (UUID(case_id),)).fetchall()
            t2 = time.perf_counter()
            assert len(rows) == CASE_EVENTS
            if at is not None:
                version = version_at(runtime.pool, UUID(case_id), at)
                runtime.ledger.get(ReliefCase, UUID(case_id), version=version)
            else:
                case = runtime.ledger.get(ReliefCase, UUID(case_id))
                version = case.version
            t3 = time.perf_counter()
            if measure:
                ours.append(1000 * (t1 - t0))
                base.append(1000 * (t2 - t1))
                ledger_ms.append(1000 * (t3 - t2))
                versions.append(int(json.loads(body).get("version", version or 0)))

        for _ in range(min(30, args.requests)):
            one(False)
        log(f"{args.requests} reads ({mode})")
        with maybe_profile(args, api.pid, f"case_{mode}_api"):
            for _ in range(args.requests):
                one(True)
        raw.close()
        title = "case state at latest" if mode == "latest" else "case state as_of a random instant"
        limit = 3.0 if mode == "latest" else 4.0
        results = []
        for q in (50, 99):
            results.append(
                Result(
                    key=f"case_{mode}_p{q}",
                    figure=f"{title}, 200-event case, p{q}",
                    unit="ms",
                    ours=percentile(ours, q),
                    baseline=percentile(base, q),
                    baseline_what="raw SELECT of the case's 200 rows (psycopg, same socket)",
                    target=f"≤ {limit:g}×",
                    target_on="ratio",
                    target_op="<=",
                    target_value=limit,
                    details={
                        "requests": args.requests,
                        "ledger_in_process_ms": round(percentile(ledger_ms, q), 2),
                        "mean_version_returned": round(statistics.mean(versions), 1),
                        "snapshot_interval": interval,
                        "snapshots_taken_before": snapshots,
                    },
                    note="Ours is the HTTP GET as a client sees it (token check, recorded "
                    "read, load, JSON); details give the ledger's load alone.",
                )
            )
        report(args, f"bench/case_{mode}.py", results, events)
