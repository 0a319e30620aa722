"""Chain verification events/s (``relief audit verify``) beside a raw COPY-out of the log.

Ours: ``verify_chain`` over a fresh copy of the dataset, with the data directory's public key
as the trusted key: every signed checkpoint (one per 1,000 events) is checked, every link and
Merkle root recomputed from the stored bytes. Baseline, same run: ``COPY public.relief_events
TO STDOUT (FORMAT BINARY)`` read to the end by psycopg. Rounds alternate the two.

    .venv/bin/python bench/chain_verify.py [--events N] [--rounds 2]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, profiling, reporting, stores


def copy_out(url: str) -> tuple[int, int, float]:
    """(rows, bytes, seconds) of a binary COPY of the events table to this process."""
    import psycopg

    with psycopg.connect(url) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM public.relief_events").fetchone()  # type: ignore[misc]
        size = 0
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY public.relief_events TO STDOUT (FORMAT BINARY)") as copy,
        ):
            for block in copy:
                size += len(block)
        return int(rows), size, time.perf_counter() - started


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    from infra.audit_chain import verify_chain
    from infra.checkpoints import load_public_key

    with stores.fresh_store(args, "chain_verify") as store:
        runtime = store.runtime
        events = store.head()
        trusted = load_public_key(runtime.settings.audit_key_file)
        with runtime.pool.connection() as conn:
            (checkpoints,) = conn.execute("SELECT count(*) FROM audit.checkpoints").fetchone()  # type: ignore[misc]
        ours, base, rounds = [], [], []
        for n in range(args.rounds):
            started = time.perf_counter()
            with profiling.maybe_profile(args, os.getpid(), f"chain_verify_round{n}"):
                report = verify_chain(runtime.pool, trusted_key=trusted)
            seconds = time.perf_counter() - started
            assert report.intact and report.checked == events, report
            rows, size, copy_s = copy_out(store.url)
            ours.append(report.checked / seconds)
            base.append(rows / copy_s)
            rounds.append(
                {"verify_s": round(seconds, 2), "copy_s": round(copy_s, 2), "copy_mb": size >> 20}
            )
            common.log(f"round {n + 1}: verify {ours[-1]:,.0f}/s, COPY {base[-1]:,.0f}/s")
        result = reporting.Result(
            key="chain_verify",
            figure="chain verification events/s",
            unit="events/s",
            ours=common.median(ours),
            baseline=common.median(base),
            baseline_what="raw binary COPY-out of public.relief_events to the client",
            target="≥ 0.5",
            target_on="ratio",
            target_op=">=",
            target_value=0.5,
            details={"rounds": rounds, "checkpoints": checkpoints},
            note="With a signed checkpoint every 1,000 events (Merkle roots recomputed).",
        )
        reporting.report(args, "bench/chain_verify.py", [result], events)


if __name__ == "__main__":
    main()
