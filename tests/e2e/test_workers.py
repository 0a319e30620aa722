"""Several API processes over one database: each keeps its own aggregate cache, and a write
through one is seen by the next read through any other (``relief api --workers N``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.embedded_kafka import free_loopback_port
from infra.runtime import Runtime
from tests.factories import token
from tests.scenario import application, approve

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def api_process(runtime: Runtime, port: int, workers: int) -> subprocess.Popen[str]:
    settings = runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELIEF_")}
    env.update(
        {
            "RELIEF_DATABASE_URL": runtime.database_url,
            "RELIEF_DATA_DIR": str(settings.data_dir),
            "RELIEF_JWT_PUBLIC_KEY": str(settings.jwt_public_key_path),
            "RELIEF_CIPHER_KEY": settings.cipher_key(),
            "RELIEF_IDENTITY_KEY": settings.identity_key().hex(),
            "RELIEF_DB_POOL_SIZE": "2",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "api", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("RELIEF_TEST_API_LOG", os.devnull), "a"),
        text=True,
    )


def wait_ready(base: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the API process ended"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} did not start")


@pytest.fixture()
def two_apis(runtime: Runtime) -> Iterator[tuple[str, str]]:
    """One API of two worker processes, and another of one: three caches in all."""
    ports = [free_loopback_port(), free_loopback_port()]
    processes = [api_process(runtime, ports[0], 2), api_process(runtime, ports[1], 1)]
    try:
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for base, process in zip(bases, processes, strict=True):
            wait_ready(base, process)
        yield bases[0], bases[1]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_a_write_through_one_worker_is_seen_by_every_other(
    runtime: Runtime, two_apis: tuple[str, str]
) -> None:
    case = application(runtime)
    approve(runtime, runtime.ledger.get_case(case.id))
    county = case.county.code
    headers = {
        "Authorization": f"Bearer {token('handling_staff', county, 'officer-w', county)}",
        "X-Purpose": "test",
    }
    workers, single = two_apis
    path = f"/cases/{case.id}"

    def versions(base: str, n: int) -> set[int]:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            seen = set()
            for _ in range(n):  # new connections: spread over the workers of that API
                answer = client.get(path, headers={"Connection": "close"})
                assert answer.status_code == 200, answer.text
                seen.add(answer.json()["version"])
            return seen

    before = versions(workers, 12) | versions(single, 4)  # every cache holds the case now
    assert len(before) == 1
    (version,) = before
    for writer, reader in ((single, workers), (workers, single), (workers, workers)):
        answer = httpx.post(
            f"{writer}{path}/reviews",
            json={"outcome": "continue", "notes": "seen everywhere?"},
            headers=headers,
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        version += 1
        assert answer.json()["version"] == version
        assert versions(reader, 12) == {version}
