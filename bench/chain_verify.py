"""Chain verification events/s (``relief audit verify``) beside a parsed binary COPY of the log.

Ours: ``verify_log`` over a fresh copy of the dataset as ``relief audit verify`` runs it: the
data directory's public key as the trusted key, its cipher key (seals opened where no chained
checkpoint vouches for them: none here, every range is signed), the default number of worker
processes (one per CPU; ranges between checkpoints in parallel), every signed checkpoint (one
per 1,000 events) checked, every link and Merkle root recomputed. Baseline, same run:
``COPY public.relief_events TO STDOUT (FORMAT BINARY)`` with the row types set, every row
parsed into Python values by psycopg, in one process. Rounds alternate the two. Details give
one process's verification too, and the peak RSS of the verifying processes (≤ 300 MB at 1M).

    .venv/bin/python bench/chain_verify.py [--events N] [--rounds 3]
"""

from __future__ import annotations

import base64
import os
import resource
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, profiling, reporting, stores

ROW_TYPES = ["uuid", "int8", "text", "bytea", "int8"]  # the columns of relief_events, in order


def parsed_copy(url: str) -> tuple[int, float]:
    """(rows, seconds) of a binary COPY of the events table, every row parsed by psycopg."""
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        columns = [
            row[0]
            for row in conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid ="
                " 'public.relief_events'::regclass AND attnum > 0 AND NOT attisdropped"
                " ORDER BY attnum"
            )
        ]
        assert columns == ["uuid", "bigint", "text", "bytea", "bigint"], columns
        rows = 0
        started = time.perf_counter()
        with cursor.copy("COPY public.relief_events TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(ROW_TYPES)
            for _row in copy.rows():
                rows += 1
        return rows, time.perf_counter() - started


def _peak_mb(who: int) -> int:
    return round(resource.getrusage(who).ru_maxrss / 1024)  # Linux: kilobytes


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    from infra.audit_verify import default_workers, verify_log
    from infra.checkpoints import load_public_key
    from infra.schema import init_schema
    from projections.registry import ALL_PROJECTIONS

    with stores.fresh_store(args, "chain_verify") as store:
        # No Runtime here: this process stays single-threaded, as `relief audit verify` is.
        init_schema(store.url, ALL_PROJECTIONS)
        settings = store.settings
        events = store.head()
        trusted = load_public_key(settings.audit_key_file)
        cipher = settings.existing_cipher_key()
        assert cipher is not None, "the dataset has no cipher key"
        options = {"cipher_key": base64.b64decode(cipher), "trusted_key": trusted}
        workers = default_workers()
        common.log(f"{threading.active_count()} thread(s); {workers} worker process(es)")
        ours, base, single, rounds = [], [], [], []
        report = None
        for n in range(args.rounds):
            started = time.perf_counter()
            with profiling.maybe_profile(args, os.getpid(), f"chain_verify_round{n}"):
                report = verify_log(store.url, workers=workers, **options)
            seconds = time.perf_counter() - started
            assert report.intact and report.checked == events, report
            assert report.signed_up_to == events, report
            rows, copy_s = parsed_copy(store.url)
            started = time.perf_counter()
            verify_log(store.url, workers=1, **options)
            one_s = time.perf_counter() - started
            ours.append(report.checked / seconds)
            base.append(rows / copy_s)
            single.append(report.checked / one_s)
            rounds.append(
                {
                    "verify_s": round(seconds, 2),
                    "copy_s": round(copy_s, 2),
                    "one_s": round(one_s, 2),
                }
            )
            common.log(
                f"round {n + 1}: verify {ours[-1]:,.0f}/s ({workers} processes),"
                f" {single[-1]:,.0f}/s (one); parsed COPY {base[-1]:,.0f}/s"
            )
        assert report is not None
        result = reporting.Result(
            key="chain_verify",
            figure="chain verification events/s",
            unit="events/s",
            ours=common.median(ours),
            baseline=common.median(base),
            baseline_what="binary COPY of public.relief_events parsed by psycopg (types set)",
            target="≥ 0.5",
            target_on="ratio",
            target_op=">=",
            target_value=0.5,
            details={
                "rounds": rounds,
                "checkpoints": report.checkpoints,
                "workers": workers,
                "one_process_events_per_s": round(common.median(single)),
                "legacy_events": report.legacy_events,
                "seals_opened": report.seals_opened,
                # Kernel high-water marks: this process (it also ran the baseline) and the
                # largest worker process it waited for (target ≤ 300 MB at 1M events).
                "peak_rss_mb": {
                    "verifier_and_bench": _peak_mb(resource.RUSAGE_SELF),
                    "largest_worker": _peak_mb(resource.RUSAGE_CHILDREN),
                },
            },
            note="Links and Merkle roots recomputed; a checkpoint per 1,000 events, all checked.",
        )
        reporting.report(args, "bench/chain_verify.py", [result], events)


if __name__ == "__main__":
    main()
