"""Each bench script (bench/) runs at a tiny size and prints and records its figure.

No timing is asserted here: the figures are measured by ``make bench`` (bench/run_all.py),
never by the test suite. These tests only keep the scripts working.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--events", "3000", "--seed", "3"]

#: script -> (arguments that make it quick, the result keys it records)
SCRIPTS: dict[str, tuple[list[str], list[str]]] = {
    "http_commands": (["--seconds", "1", "--rounds", "1"], ["http_commands"]),
    "bulk_import": (["--lines", "20"], ["bulk_import"]),
    "case_latest": (["--requests", "10"], ["case_latest_p50", "case_latest_p99"]),
    "case_as_of": (["--requests", "10"], ["case_as_of_p50", "case_as_of_p99"]),
    "projection_catchup": (
        [],
        [
            "projection_catchup_postgres_divisions",
            "projection_catchup_postgres_caseload",
            "projection_catchup_postgres_staffing",
            "projection_catchup_postgres_red_flags",
            "projection_catchup_postgres_policies",
            "projection_catchup_postgres_standards",
            "projection_catchup_postgres",
        ],
    ),
    "kafka_catchup": (
        [],
        [
            "projection_catchup_kafka_divisions",
            "projection_catchup_kafka_caseload",
            "projection_catchup_kafka_staffing",
            "projection_catchup_kafka_red_flags",
            "projection_catchup_kafka_policies",
            "projection_catchup_kafka_standards",
        ],
    ),
    "chain_verify": (["--rounds", "1"], ["chain_verify"]),
    "read_latency": (
        ["--seconds", "1", "--idle-seconds", "1", "--get-rate", "15", "--command-rate", "5"],
        [
            "read_latency_caseload",
            "read_latency_staffing",
            "read_latency_alerts",
            "projection_lag_p50",
            "projection_lag_p99",
        ],
    ),
    "dashboard_reads": (
        [
            "--seconds",
            "1",
            "--step-seconds",
            "1",
            "--get-rate",
            "11",
            "--command-rate",
            "5",
            "--rates",
            "11",
            "--alone-requests",
            "3",
        ],
        [
            "dashboard_caseload_province_p99",
            "dashboard_caseload_county_p99",
            "dashboard_staffing_province_p99",
            "dashboard_staffing_county_p99",
            "dashboard_summary_province_p99",
            "dashboard_summary_county_p99",
            "dashboard_villages_province_p99",
            "dashboard_villages_county_p99",
            "dashboard_alerts_province_p99",
            "dashboard_alerts_county_p99",
            "dashboard_staffing_at_province_p99",
            "dashboard_read_capacity",
        ],
    ),
    "rebuild_all": ([], ["rebuild_all"]),
    "peak_rss": (["--seconds", "1"], ["peak_rss_api", "peak_rss_runner"]),
}


@pytest.fixture(scope="module")
def bench_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny dataset for all scripts (the first script builds it)."""
    return tmp_path_factory.mktemp("bench-home")


def run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_script_prints_and_records_its_figure(
    script: str, bench_home: Path, tmp_path: Path
) -> None:
    quick, keys = SCRIPTS[script]
    results = tmp_path / "results.json"
    done = run(
        [
            str(ROOT / "bench" / f"{script}.py"),
            *TINY,
            "--home",
            str(bench_home),
            "--results",
            str(results),
            *quick,
        ]
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    recorded = {r["key"]: r for r in json.loads(results.read_text())["results"]}
    assert set(recorded) == set(keys)
    for key in keys:
        result = recorded[key]
        assert result["figure"] in done.stdout
        # A capacity is 0 when even the lowest rate tried misses its target.
        assert result["ours"] > 0 or key == "dashboard_read_capacity"
        assert result["events"] >= 3000
        assert result["size"] == "3k"
        assert result["met"] in (True, False)
        if result["target_on"] == "ratio":  # a raw baseline measured beside it
            assert result["baseline"] > 0
            assert result["ratio"] == pytest.approx(result["ours"] / result["baseline"])
    table = results.with_suffix(".md").read_text()
    assert "| figure | ours | baseline | ratio | target | met? |" in table
    for key in keys:
        assert recorded[key]["figure"] in table


def test_run_all_writes_the_table(bench_home: Path, tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    done = run(
        [
            str(ROOT / "bench" / "run_all.py"),
            *TINY,
            "--home",
            str(bench_home),
            "--results",
            str(results),
            "--only",
            "chain_verify,bulk_import",
            "--extra",
            "chain_verify:--rounds 1",
            "--extra",
            "bulk_import:--lines 10",
        ]
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads(results.read_text())
    assert {r["key"] for r in document["results"]} == {"chain_verify", "bulk_import"}
    assert document["datasets"]["3k"]["events"] >= 3000
    table = results.with_suffix(".md").read_text()
    assert "## 3k events" in table
    assert "chain verification events/s" in table
    assert "bulk import events/s" in table


def test_the_open_loop_interleaves_its_streams_evenly() -> None:
    """Four streams at 10 requests/s: one request every 25 ms in turn, for the whole run, never
    one of each at the same instant."""
    from bench.load import schedule

    due = list(schedule([10.0] * 4, 1.0))
    assert len(due) == 40
    assert [i for _, i, _ in due] == [0, 1, 2, 3] * 10
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(due)]
    assert min(gaps) == pytest.approx(0.025) and max(gaps) == pytest.approx(0.025)
    assert [k for _, i, k in due if i == 2] == list(range(10))
