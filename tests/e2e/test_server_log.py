"""Resident ID numbers never reach the server log in clear (issue 16, item 9): the real
``relief api`` serves requests whose path and query hold ID numbers, and its whole output is
scanned; the access log keeps its format, with the numbers masked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from domain.identifiers import mask_resident_id
from infra.embedded_kafka import free_loopback_port
from infra.settings import Settings
from tests.e2e.http import actor
from tests.factories import resident_id

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_id_numbers_are_masked_in_the_access_log_and_the_log_stays_well_formed(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_loopback_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELIEF_")}
    env.update(
        {
            "RELIEF_DATABASE_URL": str(settings.database_url),
            "RELIEF_DATA_DIR": str(settings.data_dir),
            "RELIEF_JWT_PUBLIC_KEY": str(settings.jwt_public_key_path),
            "RELIEF_HTTP_PORT": str(port),
        }
    )
    log_file = tmp_path / "server.log"
    with log_file.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "api"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, log_file.read_text()
                time.sleep(0.1)
            number = resident_id("440103")
            officer = actor("handling_staff", "440103", "officer-1")
            answers = [
                httpx.get(f"{base}/households/{number}", headers=officer),
                httpx.get(f"{base}/caseload", headers=officer, params={"division": number}),
                httpx.get(f"{base}/people/{number}"),
            ]
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(30)
    statuses = [a.status_code for a in answers]
    assert statuses == [422, 422, 404], [a.text for a in answers]
    text = log_file.read_text()
    assert number not in text, text
    assert "Logging error" not in text and "Traceback" not in text, text
    masked = mask_resident_id(number)
    # uvicorn's access lines, formatted as usual: client, method, path (masked), status.
    assert f'"GET /households/{masked} HTTP/1.1" 422' in text, text
    assert f"/caseload?division={masked} HTTP/1.1" in text, text
    assert f'"GET /people/{masked} HTTP/1.1" 404' in text, text
