"""A fresh store per bench (its own embedded PostgreSQL on a copy of a dataset) and the
system's processes run against it, as deployed (``relief api``, ``relief projections run``)."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import BIN, ROOT, log
from bench.datasets import DatasetMeta, ensure_dataset
from bench.postgres import start_postgres, stop_postgres


class Store:
    """A private copy of a dataset on its own embedded PostgreSQL."""

    def __init__(self, run_dir: Path, meta: DatasetMeta) -> None:
        from infra.settings import Settings

        self.run_dir = run_dir
        self.meta = meta
        self.data_dir = run_dir / "data"
        self.url = start_postgres(self.data_dir)
        self.settings = Settings(
            database_url=self.url,
            data_dir=self.data_dir,
            kafka_topic="relief.events",
        )
        self._runtime: Any = None
        self.services: list[Service] = []

    @property
    def runtime(self) -> Any:
        if self._runtime is None:
            from infra.runtime import Runtime

            self._runtime = Runtime.open(self.settings)
        return self._runtime

    def head(self) -> int:
        import psycopg

        with psycopg.connect(self.url) as conn:
            row = conn.execute("SELECT max(notification_id) FROM public.relief_events").fetchone()
        return int(row[0] or 0) if row else 0

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RELIEF_DATABASE_URL": self.url,
            "RELIEF_DATA_DIR": str(self.data_dir),
        }
        env.update(extra)
        return env

    def postmaster_pid(self) -> int | None:
        pid_file = self.data_dir / "pgdata" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(pid_file.read_text().split()[0])
        return None

    def postgres_cpu(self) -> float:
        """CPU seconds used so far by the PostgreSQL server and its live backends."""
        import psutil

        pid = self.postmaster_pid()
        if pid is None:
            return 0.0
        total = 0.0
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    total += times.user + times.system
        return total

    def close(self) -> None:
        for service in reversed(self.services):
            service.stop()
        if self._runtime is not None:
            self._runtime.close()
        stop_postgres(self.data_dir / "pgdata")


@contextlib.contextmanager
def fresh_store(args: argparse.Namespace, name: str) -> Iterator[Store]:
    if getattr(args, "dataset", None):
        source, meta = args.dataset, DatasetMeta.load(args.dataset / "meta.json")
    else:
        source, meta = ensure_dataset(args.home, args.events, args.seed)
    run_dir = args.home / "runs" / f"{name}-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run(["cp", "-a", str(source / "data"), str(run_dir / "data")], check=True)
    # The copy's pages written out before the services start, not by the kernel's writeback
    # 30 s later (up to 2.4 GB at 1M), inside the measured phase, beside every command's
    # COMMIT: the harness's own setup, not the system under test.
    os.sync()
    pgdata = run_dir / "data" / "pgdata"
    (pgdata / ".handle_pids.json").write_text("[]")
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    store = Store(run_dir, meta)
    took = time.perf_counter() - started
    log(f"fresh store {run_dir} ({meta.events:,} events) ready in {took:.1f}s")
    try:
        yield store
    finally:
        store.close()
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """A ``relief`` subcommand run as its own process (as deployed), logging to a file."""

    def __init__(self, store: Store, name: str, argv: list[str], **env: str) -> None:
        self.name = name
        self.log_path = store.run_dir / f"{name}.log"
        self.port = int(env["RELIEF_HTTP_PORT"]) if "RELIEF_HTTP_PORT" in env else None
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                [str(BIN / "relief"), *argv],
                env=store.env(**env),
                cwd=store.run_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        store.services.append(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_http(self, timeout: float = 180.0) -> None:
        assert self.port is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer on port {self.port}")

    def rss_mb(self) -> float:
        return proc_status_kb(self.pid, "VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        """The kernel's high-water mark of this process's resident set (VmHWM)."""
        return proc_status_kb(self.pid, "VmHWM") / 1024

    def cpu_seconds(self) -> float:
        import psutil

        total = 0.0
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(self.pid)
            for each in [process, *process.children(recursive=True)]:  # API workers too
                with contextlib.suppress(psutil.Error):
                    t = each.cpu_times()
                    total += float(t.user + t.system)
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_api(store: Store, name: str = "api", *, workers: int = 1) -> Service:
    """``relief api`` on a free port; ``workers`` processes (RELIEF_WORKERS) behind it."""
    api = Service(
        store, name, ["api"], RELIEF_HTTP_PORT=str(free_port()), RELIEF_WORKERS=str(workers)
    )
    api.wait_http()
    return api


def proc_status_kb(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)
