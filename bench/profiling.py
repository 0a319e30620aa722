"""py-spy attached to a measured process, and a summary of where its samples went."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import BIN


class PySpy:
    """``py-spy record`` attached to a process while a block runs (raw collapsed stacks)."""

    def __init__(self, pid: int, out: Path, *, rate: int = 100) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PySpy:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                str(BIN / "py-spy"),
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--output",
                str(self.out),
                "--nonblocking",
                "--gil",  # what holds the GIL: the CPU work of a Python process
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # attach
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        summary = summarize_profile(self.out)
        self.out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=1))
        print_profile(summary, str(self.out))


def _frame_name(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive shares of samples per function (file, not line) of a raw profile."""
    self_counts: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    if not path.exists():
        return {"samples": 0, "self": [], "inclusive": []}
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            _frame_name(f)
            for f in stack.split(";")
            if f and not f.startswith(("thread", "process"))
        ]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for name in set(frames):
            inclusive[name] = inclusive.get(name, 0) + count

    def ranked(counts: dict[str, int]) -> list[list[Any]]:
        best = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [[name, round(100 * n / total, 1)] for name, n in best]

    return {"samples": total, "self": ranked(self_counts), "inclusive": ranked(inclusive)}


def print_profile(summary: dict[str, Any], label: str) -> None:
    print(f"profile {label}: {summary['samples']} samples", flush=True)
    print("  self %:", flush=True)
    for name, share in summary["self"][:15]:
        print(f"    {share:5.1f}  {name}", flush=True)
    print("  inclusive %:", flush=True)
    for name, share in summary["inclusive"][:25]:
        print(f"    {share:5.1f}  {name}", flush=True)


@contextlib.contextmanager
def maybe_profile(args: argparse.Namespace, pid: int, name: str) -> Iterator[None]:
    if args.profile is None:
        yield
        return
    with PySpy(pid, args.profile / f"{name}.txt"):
        yield
