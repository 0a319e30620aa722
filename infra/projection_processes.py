"""Running and rebuilding several projections at once, each in a process of its own.

Applying events is CPU work in Python (decoding, folding) plus SQL: one process per projection
uses every core, where threads of one process would share one interpreter lock.

A rebuild builds its projection's new generation while the live runners keep serving the old
ones (of this and every other projection), then switches its own views; a switch locks only its
own registry row, so no other projection's runner ever waits for it.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infra.settings import Settings

if TYPE_CHECKING:
    from infra.projection_runner import TrailingFeedRunner
    from infra.runtime import Runtime
    from projections.base import Projection

#: How often a rebuilding process reports its progress, at most (seconds).
REPORT_EVERY_S = 0.5


@dataclass(frozen=True)
class Progress:
    """Where one projection's rebuild stands."""

    name: str
    done: int  # positions covered
    head: int  # the log's head as last seen
    generation: int | None = None  # set when the rebuild has switched
    error: str | None = None


def _rebuild_process(
    settings: Settings,
    name: str,
    batch_size: int,
    reports: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    from infra.projection_runner import rebuild
    from infra.runtime import Runtime
    from projections.registry import projection_class

    runtime = Runtime.open(settings, init=False, role=f"rebuild-{name}")
    shown = 0.0

    def progress(done: int, head: int) -> None:
        nonlocal shown
        now = time.monotonic()
        if now - shown >= REPORT_EVERY_S:
            shown = now
            reports.put(Progress(name, done, head))

    try:
        generation = rebuild(
            runtime.pool,
            runtime.ledger.recorder,
            runtime.ledger.mapper,
            projection_class(name),
            batch_size=batch_size,
            progress=progress,
            second_stage=lambda schema: _SecondStageProcess(settings, name, schema, batch_size),
        )
        head = runtime.head_position()
        reports.put(Progress(name, head, head, generation=generation))
    except Exception as error:
        reports.put(Progress(name, 0, 0, error=f"{type(error).__name__}: {error}"))
        raise
    finally:
        runtime.close()


class _SecondStageProcess:
    """The second stage of a projection's rebuild (``Projection.rebuild_stages``: red_flags'
    rules behind its facts), in a process of its own: the first stage's process and the
    server kept one core busy between them, the other was idle once the other projections
    were rebuilt."""

    def __init__(self, settings: Settings, name: str, schema: str, batch_size: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.first_done = context.Event()
        self.process = context.Process(
            target=_second_stage_process,
            args=(settings, name, schema, batch_size, self.first_done),
            name=f"rebuild-{name}-stage-2",
        )
        self.process.start()

    def finish(self) -> None:
        self.first_done.set()
        self.process.join()
        if self.process.exitcode != 0:
            raise RuntimeError(
                f"the second stage of the rebuild failed (exit code {self.process.exitcode})"
            )

    def abort(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()


def second_stage_runner(
    runtime: Runtime, projection: type[Projection], schema: str, batch_size: int
) -> TrailingFeedRunner:
    """The runner of a rebuild's second stage (``projection.rebuild_stages()[1]``) following
    the generation ``schema`` the first stage writes, in batches of ``batch_size``."""
    from infra.projection_runner import TrailingFeedRunner

    stages = projection.rebuild_stages()
    assert stages is not None
    return TrailingFeedRunner(
        runtime.pool,
        runtime.ledger.recorder,
        runtime.ledger.mapper,
        stages[1],
        schema=schema,
        batch_size=batch_size,
    )


def _second_stage_process(
    settings: Settings, name: str, schema: str, batch_size: int, first_done: Any
) -> None:
    from infra.runtime import Runtime
    from projections.registry import projection_class

    runtime = Runtime.open(settings, init=False, role=f"rebuild-{name}-2")
    try:
        runner = second_stage_runner(runtime, projection_class(name), schema, batch_size)
        runner.follow(first_done.is_set)
    finally:
        runtime.close()


#: Events per transaction of a rebuild: larger than a live runner's (nobody waits for a
#: rebuild's single events; fewer, larger statements). Measured at 1M events: 99 s with 5,000,
#: 107 s with 1,000.
REBUILD_BATCH = 5000


def rebuild_in_processes(
    settings: Settings,
    names: Sequence[str],
    show: Callable[[Progress], None],
    batch_size: int = REBUILD_BATCH,
) -> dict[str, Progress]:
    """Rebuild the named projections, one process each, all at once; ``show`` gets every
    report. Returns each projection's last report (its generation, or its error)."""
    context = multiprocessing.get_context("spawn")
    reports: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    processes = {
        name: context.Process(
            target=_rebuild_process,
            args=(settings, name, batch_size, reports),
            name=f"rebuild-{name}",
        )
        for name in names
    }
    for process in processes.values():
        process.start()
    last: dict[str, Progress] = {}
    try:
        while any(p.is_alive() for p in processes.values()) or not reports.empty():
            try:
                report = reports.get(timeout=0.2)
            except queue.Empty:
                continue
            last[report.name] = report
            show(report)
    finally:
        for process in processes.values():
            process.join()
    for name, process in processes.items():
        if name not in last or (last[name].generation is None and last[name].error is None):
            last[name] = Progress(name, 0, 0, error=f"exited with code {process.exitcode}")
    return last


def _run_process(settings: Settings, name: str, feed: str) -> None:
    """Keep one projection up to date from ``feed`` until SIGTERM or SIGINT."""
    from infra.faults import supervise
    from infra.projection_runner import ProjectionHalted
    from infra.runtime import Runtime
    from projections.registry import projection_class

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # Sessions named after the projection: an operator can see and end one projection's.
    runtime = Runtime.open(settings, init=False, kafka=feed == "kafka", role=name)
    projection = projection_class(name)
    try:
        runner = (
            runtime.kafka_projection_runner(projection)
            if feed == "kafka"
            else runtime.projection_runner(projection)
        )
        halted = supervise(name, lambda: runner.run_forever(stop), stop, halts=(ProjectionHalted,))
        if halted is not None:
            raise SystemExit(1)
    finally:
        runtime.close()


def run_in_processes(
    settings: Settings, names: Sequence[str], feed: str, stop: threading.Event
) -> dict[str, int | None]:
    """Run the named projections, one process each, until ``stop`` is set (or every process
    has ended: a projection halted on a bad event ends its own process only). Returns each
    process's exit code."""
    context = multiprocessing.get_context("spawn")
    processes = {
        name: context.Process(target=_run_process, args=(settings, name, feed), name=name)
        for name in names
    }
    for process in processes.values():
        process.start()
    try:
        while not stop.wait(0.5) and any(p.is_alive() for p in processes.values()):
            pass
    finally:
        for process in processes.values():
            if process.is_alive() and process.pid is not None:
                process.terminate()  # SIGTERM: the runner finishes its batch and stops
        for process in processes.values():
            process.join()
    return {name: process.exitcode for name, process in processes.items()}
