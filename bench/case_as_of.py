"""Case state as_of a random instant: p50 and p99 ms for a 200-event case, beside a raw SELECT.

Ours: ``GET /cases/{id}/as-of?at=T`` with T drawn uniformly between the case's first and last
recording time (the chain's time index finds the version; the case is loaded up to it),
against ``relief api`` on a fresh copy of the dataset, one request at a time. Baseline,
interleaved request by request: the raw SELECT of that case's 200 rows.

    .venv/bin/python bench/case_as_of.py [--events N] [--requests 600]
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
    case_reads.measure_case_reads(p.parse_args(), "as_of")


if __name__ == "__main__":
    main()
