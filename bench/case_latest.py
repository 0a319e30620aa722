"""Case state at latest: p50 and p99 ms of reading a 200-event case, beside a raw SELECT.

Ours: ``GET /cases/{id}`` (with ``X-Purpose``: the read is recorded) of one of the dataset's
200-event cases, against ``relief api`` on a fresh copy of the dataset, one client, one request
at a time. Baseline, interleaved request by request: the raw SELECT of that case's 200 rows
from ``public.relief_events`` on a psycopg connection over the same socket.

    .venv/bin/python bench/case_latest.py [--events N] [--requests 600]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import case_reads, common


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--requests", type=int, default=600)
    case_reads.measure_case_reads(p.parse_args(), "latest")


if __name__ == "__main__":
    main()
