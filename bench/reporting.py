"""Results: one row per figure and size in bench/results.json, rendered to bench/results.md."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import math
import os
import platform
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, size_label
from bench.datasets import DatasetMeta


@dataclass
class Result:
    key: str  # stable id of the figure (one script may give several: p50 and p99)
    figure: str
    unit: str  # "events/s", "commands/s", "ms", "s", "MB"
    ours: float
    target: str  # as the issue words it
    target_on: str  # "ratio" (ours / baseline) or "ours"
    target_op: str  # ">=" or "<="
    target_value: float
    events: int = 0
    size: str = ""
    baseline: float | None = None
    baseline_what: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    script: str = ""
    ratio: float | None = None
    met: bool | None = None
    measured_at: str = ""
    code: dict[str, Any] = field(default_factory=dict)

    def finish(self) -> Result:
        if self.baseline:
            self.ratio = self.ours / self.baseline
        value = self.ratio if self.target_on == "ratio" else self.ours
        if self.target_on == "extrapolated":
            value = self.details.get("extrapolated_to_1M")
        if value is not None:
            self.met = (
                value >= self.target_value if self.target_op == ">=" else value <= self.target_value
            )
        self.measured_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.code = code_state()
        return self


def fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"
    if unit == "s":
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:,.0f} {unit}"


def report(args: argparse.Namespace, script: str, results: list[Result], events: int) -> None:
    """Print each figure beside its baseline, ratio and target; record unless profiling."""
    for result in results:
        result.events = events
        result.size = size_label(args.events)
        result.script = script
        result.finish()
        ratio = f"{result.ratio:.3f}" if result.ratio is not None else "—"
        met = {True: "MET", False: "NOT MET", None: "n/a"}[result.met]
        print(
            f"{result.figure} [{result.size}, {events:,} events]:"
            f" ours {fmt(result.ours, result.unit)}"
            f" | baseline {fmt(result.baseline, result.unit)}"
            f"{' (' + result.baseline_what + ')' if result.baseline_what else ''}"
            f" | ratio {ratio} | target {result.target} | {met}"
            f"{' — ' + result.note if result.note else ''}",
            flush=True,
        )
        print("  " + json.dumps({"key": result.key, "details": result.details}), flush=True)
    if args.profile is not None:
        print("(profiled run: figures not recorded)", flush=True)
        return
    record(args.results, results)


def code_state() -> dict[str, Any]:
    """Which code was measured: the commit, and the working tree's changes outside bench/
    (others may be changing the code while benchmarks run)."""
    import hashlib

    def git(*argv: str) -> str:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            return subprocess.run(
                ["git", *argv], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        return ""

    outside = ["--", ".", ":(exclude)bench", ":(exclude)tests/test_bench_scripts.py"]
    diff = git("diff", "HEAD", *outside)
    modified = [line[3:] for line in git("status", "--porcelain", *outside).splitlines()]
    tree = "".join(  # commits of bench results alone keep it
        line + "\n"
        for line in git("ls-tree", "-r", "HEAD").splitlines()
        if not line.split("\t", 1)[-1].startswith(("bench/", "tests/test_bench_scripts.py"))
    )
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "tree": hashlib.sha1(tree.encode()).hexdigest()[:10],
        "modified": modified,
        "diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:10] if diff else None,
    }


def _machine() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import psutil

    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }


def record(path: Path, results: list[Result]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent):
        document = load_results(path)
        fresh = {(r.key, r.size) for r in results}
        kept = [r for r in document["results"] if (r["key"], r["size"]) not in fresh]
        document["results"] = kept + [asdict(r) for r in results]
        document["machine"] = _machine()
        path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
        path.with_suffix(".md").write_text(render_markdown(document))


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on a directory (no lock file left behind)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def record_dataset(path: Path, meta: DatasetMeta) -> None:
    """Note in the results which dataset a size stands for."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent):
        document = load_results(path)
        datasets = document.setdefault("datasets", {})
        datasets[size_label(meta.requested)] = {
            "events": meta.events,
            "households": meta.households,
            "seed": meta.seed,
            "cases_of_200_events": len(meta.case200),
            "catch_up_window": meta.window,
            "build_seconds": meta.build_seconds,
        }
        document["machine"] = _machine()
        path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
        path.with_suffix(".md").write_text(render_markdown(document))


def record_note(path: Path, title: str, text: str) -> None:
    """A section of prose kept with the results (what a run showed, by issue), rendered after
    the tables; recording the same title again replaces it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent):
        document = load_results(path)
        document.setdefault("notes", {})[title] = text.strip()
        path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
        path.with_suffix(".md").write_text(render_markdown(document))


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        with contextlib.suppress(ValueError):
            document: dict[str, Any] = json.loads(path.read_text())
            document.setdefault("results", [])
            return document
    return {"results": []}


#: The order of the issue's table.
ORDER = (
    "http_commands",
    "bulk_import",
    "case_latest_p50",
    "case_latest_p99",
    "case_as_of_p50",
    "case_as_of_p99",
    "projection_catchup_postgres_caseload",
    "projection_catchup_postgres_staffing",
    "projection_catchup_postgres_red_flags",
    "projection_catchup_postgres",
    "projection_catchup_kafka_caseload",
    "projection_catchup_kafka_staffing",
    "projection_catchup_kafka_red_flags",
    "chain_verify",
    "read_latency_caseload",
    "read_latency_staffing",
    "read_latency_alerts",
    "projection_lag_p50",
    "projection_lag_p99",
    "rebuild_all",
    "peak_rss_api",
    "peak_rss_runner",
)


def _sort_key(record_: dict[str, Any]) -> tuple[int, str]:
    key = record_["key"]
    return (ORDER.index(key) if key in ORDER else len(ORDER), key)


def _size_events(label: str) -> float:
    multiplier = {"k": 1e3, "M": 1e6}.get(label[-1:], 1.0)
    with contextlib.suppress(ValueError):
        return float(label.rstrip("kM")) * multiplier
    return 0.0


def render_markdown(document: dict[str, Any]) -> str:
    records = document["results"]
    sizes = sorted({r["size"] for r in records}, key=_size_events)
    machine = document.get("machine", {})
    lines = [
        "# Benchmark results (issue 9)",
        "",
        "Written by `bench/run_all.py` (`make bench`); each row by its script in `bench/`.",
        f"Machine: {machine.get('cpus')} CPUs ({machine.get('cpu')}), "
        f"{machine.get('memory_gb')} GB, Python {machine.get('python')}. "
        "Noisy: compare ratios (ours / baseline, both measured in the same run).",
        "",
    ]
    for size in sizes:
        rows = sorted((r for r in records if r["size"] == size), key=_sort_key)
        events = max((r["events"] for r in rows), default=0)
        codes = sorted(
            {
                f"source tree {r.get('code', {}).get('tree', '?')}"
                + (f" + working-tree diff {d}" if (d := r.get("code", {}).get("diff_sha1")) else "")
                for r in rows
            }
        )
        commits = sorted({r.get("code", {}).get("commit", "?") for r in rows})
        when = sorted(r["measured_at"] for r in rows)
        lines += [
            f"## {size} events (log head {events:,})",
            "",
            f"Measured {when[0]} to {when[-1]} (UTC) on {'; '.join(codes)}"
            + (" (**mixed code: rows not comparable**)" if len(codes) > 1 else "")
            + f" (commits {', '.join(commits)}; the tree hash leaves out bench/).",
            "",
            "| figure | ours | baseline | ratio | target | met? |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            ratio = f"{r['ratio']:.3f}" if r.get("ratio") is not None else "—"
            met = {True: "yes", False: "**no**", None: "n/a"}[r.get("met")]
            if r["target_on"] == "extrapolated" and r.get("met") is not None:
                met += " (extrapolated to 1M)"
            lines.append(
                f"| {r['figure']} | {fmt(r['ours'], r['unit'])} | "
                f"{fmt(r.get('baseline'), r['unit'])} | {ratio} | {r['target']} | {met} |"
            )
        lines.append("")
    if len(sizes) >= 2:
        small, big = sizes[0], sizes[-1]
        lines += [
            f"## From {small} to {big} events",
            "",
            f"| figure | ours {small} | ours {big} | change | ratio {small} | ratio {big} |",
            "|---|---|---|---|---|---|",
        ]
        by = {(r["key"], r["size"]): r for r in records}
        for key in sorted({r["key"] for r in records}, key=lambda k: _sort_key({"key": k})):
            a, b = by.get((key, small)), by.get((key, big))
            if a is None or b is None:
                continue
            change = f"{b['ours'] / a['ours']:.2f}×" if a["ours"] else "—"
            ra = f"{a['ratio']:.3f}" if a.get("ratio") is not None else "—"
            rb = f"{b['ratio']:.3f}" if b.get("ratio") is not None else "—"
            lines.append(
                f"| {a['figure']} | {fmt(a['ours'], a['unit'])} | {fmt(b['ours'], b['unit'])} "
                f"| {change} | {ra} | {rb} |"
            )
        lines.append("")
    for title, text in document.get("notes", {}).items():
        lines += [f"## {title}", "", text, ""]
    datasets = document.get("datasets", {})
    if datasets:
        lines += ["## Datasets", ""]
        for size in sorted(datasets, key=_size_events):
            d = datasets[size]
            lines.append(
                f"- {size}: {d['events']:,} events: a synthetic province of "
                f"{d['households']:,} households (seed {d['seed']}) written through the "
                f"ledger's commands (`relief seed`'s bulk path), {d['cases_of_200_events']} "
                f"cases of 200 events, a signed checkpoint per 1,000 events, projections "
                f"{d['catch_up_window']:,} events behind the head; built once in "
                f"{d['build_seconds']:,.0f} s and copied for each script."
            )
        lines.append("")
    lines += ["## What each baseline is", ""]
    scripts: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(records, key=_sort_key):
        scripts.setdefault(r["script"], [])
        if all(x["key"] != r["key"] for x in scripts[r["script"]]):
            scripts[r["script"]].append(r)
    for script, rows in scripts.items():
        first = rows[0]
        figures = "; ".join(r["figure"] for r in rows)
        what = first.get("baseline_what") or "none (absolute target)"
        note = f" {first['note']}" if first.get("note") else ""
        lines.append(f"- `{script}` ({figures}): baseline: {what}.{note}")
    lines.append("")
    return "\n".join(lines)
