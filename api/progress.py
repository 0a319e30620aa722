"""Progress of several long tasks on stderr: bars redrawn in place on a terminal, plain
periodic lines in a log (not a TTY)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Without a terminal, one line per task this often (seconds), and when a task ends.
PLAIN_EVERY_S = 10.0


class MultiProgress:
    """One line per task: name, bar, done/total, rate and time left."""

    def __init__(self, names: list[str], unit: str = "events", out: TextIO | None = None):
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.unit = unit
        self.started = time.monotonic()
        self.state: dict[str, tuple[int, int, str]] = {name: (0, 0, "") for name in names}
        self.drawn = False
        self.printed: dict[str, float] = {}

    def update(self, name: str, done: int, total: int, note: str = "") -> None:
        self.state[name] = (done, total, note)
        if self.tty:
            self._draw()
        else:
            now = time.monotonic()
            if note or now - self.printed.get(name, self.started) >= PLAIN_EVERY_S:
                self.printed[name] = now
                self.out.write(self._line(name) + "\n")
                self.out.flush()

    def _line(self, name: str) -> str:
        done, total, note = self.state[name]
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        share = done / total if total else 0.0
        eta = (total - done) / rate if rate and total > done else 0.0
        bar = "#" * int(share * 30)
        width = max(len(n) for n in self.state)
        return (
            f"{name:<{width}} [{bar:<30}] {done:,}/{total:,} {self.unit} {rate:,.0f}/s"
            f" ETA {eta:,.0f}s {note}"
        ).rstrip()

    def _draw(self) -> None:
        if self.drawn:
            self.out.write(f"\x1b[{len(self.state)}F")  # back to the first line
        self.out.write("".join(f"\x1b[2K{self._line(name)}\n" for name in self.state))
        self.out.flush()
        self.drawn = True


class ProgressBar:
    """One task's progress on stderr: done/total, rate and time left. On a terminal one line
    redrawn in place a few times a second; otherwise (a log, a pipe) a plain line every
    ``PLAIN_EVERY_S`` seconds and one at the end, never carriage-return frames."""

    def __init__(
        self, label: str, total: int, unit: str = "events", out: TextIO | None = None
    ) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.started = time.monotonic()
        self.shown = 0.0 if self.tty else self.started
        self.last: tuple[int, str] | None = None
        self.written: tuple[int, str] | None = None

    def __call__(self, done: int, note: str = "") -> None:
        self.last = (done, note)
        now = time.monotonic()
        every = 0.25 if self.tty else PLAIN_EVERY_S
        if done < self.total and now - self.shown < every:
            return  # a few updates a second on a terminal, not one per record
        self.shown = now
        self._write(done, note)

    def line(self, done: int, note: str = "") -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate and self.total else 0.0
        bar = "#" * int(30 * done / self.total) if self.total else ""
        return (
            f"{self.label} [{bar:<30}] {done}/{self.total} {self.unit} {rate:,.0f}/s "
            f"ETA {eta:,.0f}s {note}"
        ).rstrip()

    def _write(self, done: int, note: str) -> None:
        self.written = (done, note)
        if self.tty:
            self.out.write("\r\x1b[2K" + self.line(done, note))
        else:
            self.out.write(self.line(done, note) + "\n")
        self.out.flush()

    def close(self) -> None:
        """The final count (a log sees where it ended), and the terminal's line ended."""
        if self.last is not None and self.last != self.written:
            self._write(*self.last)
        if self.tty and self.written is not None:
            self.out.write("\n")
            self.out.flush()
