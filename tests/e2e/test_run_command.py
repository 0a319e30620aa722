"""The README's run command on the embedded defaults, driven over HTTP as a client would."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from infra.embedded_kafka import free_loopback_port
from tests.conftest import TEST_DIVISIONS
from tests.factories import resident_id, village
from tests.integration.kafka_tools import read_raw, read_topic

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def relief_env(data_dir: Path, port: int = 8000) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELIEF_")}
    env.update(
        {
            "RELIEF_DATA_DIR": str(data_dir),
            # the small test register: the first start's load of Guangdong's takes ~15 s
            "RELIEF_DIVISIONS_FILE": str(TEST_DIVISIONS),
            "RELIEF_HTTP_PORT": str(port),
            "RELIEF_CHECKPOINT_EVENTS": "1",
        }
    )
    return env


def minted(running: dict[str, str], sub: str, role: str, org: str, scope: str) -> dict[str, str]:
    """Headers with a token from ``relief auth token``, as the README tells a developer."""
    result = subprocess.run(
        [
            *(sys.executable, "-m", "api.cli", "auth", "token"),
            *("--sub", sub, "--role", role, "--org", org, "--scope", scope),
        ],
        env=relief_env(Path(running["data_dir"])),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return {"Authorization": f"Bearer {result.stdout.strip()}"}


@pytest.fixture()
def running(tmp_path: Path) -> Iterator[dict[str, str]]:
    port = free_loopback_port()
    env = relief_env(tmp_path / "data", port)
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    info: dict[str, str] = {"base": f"http://127.0.0.1:{port}", "data_dir": str(tmp_path / "data")}
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while time.monotonic() < deadline and not {"db", "kafka", "serving"} <= info.keys():
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if m := re.search(r"serving (http://\S+)", line):
            info["serving"] = m.group(1)
        # stderr shares the pipe: a log line of another thread may run on after the value
        if m := re.search(r"database: (.+?)(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ |$)", line):
            info["db"] = m.group(1).strip()
        if m := re.search(r"kafka: +(\S+) topic (\S+)", line):
            info["kafka"], info["topic"] = m.group(1), m.group(2)
    assert {"db", "kafka", "serving"} <= info.keys(), "".join(lines)
    for _ in range(100):
        try:
            if httpx.get(info["base"] + "/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    try:
        yield info
    finally:
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        assert process.returncode == 0
        time.sleep(0.5)
        # Clean stop: the broker and the embedded PostgreSQL went with it.
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not list((tmp_path / "data" / "pgdata").glob("postmaster.pid"))


def test_a_case_opened_over_http_reaches_the_log_kafka_and_the_caseload(
    running: dict[str, str],
) -> None:
    base = running["base"]
    clerk = minted(running, "clerk-7", "intake_clerk", "440103", "44")
    HEADERS = {**clerk, "X-Correlation-Id": "walk-in-2026-0001"}
    reader = minted(running, "dashboard", "integration", "dashboards", "4403")
    auditor = minted(running, "auditor-1", "auditor", "44", "44")
    assert httpx.get(base + "/caseload").status_code == 401
    applicant = resident_id(address="440305")
    division = village("440305", "002", "003")
    home = httpx.post(
        base + "/households",
        headers=HEADERS,
        json={
            "registered_division": division,
            "residence_division": division,
            "members": [{"resident_id": applicant, "name": "Liang Mei", "relation": "head"}],
        },
    )
    assert home.status_code == 201, home.text
    opened = httpx.post(
        base + "/cases",
        headers=HEADERS,
        json={
            "household_id": home.json()["household_id"],
            "applicant_id": applicant,
            "programme": "dibao",
            "window_division": "440305002",
            "reason": "application at the township window",
        },
    )
    assert opened.status_code == 201, opened.text
    case = opened.json()
    assert opened.headers["location"] == f"/cases/{case['case_id']}"
    assert opened.headers["etag"] == '"1"'
    assert case["applicant_id"] == applicant[:4] + "*" * 10 + applicant[-4:]

    started = time.monotonic()
    while True:  # the caseload follows within a second
        rows = httpx.get(base + "/caseload", headers=reader, params={"division": "440305"}).json()[
            "items"
        ]
        if rows == [
            {
                "division": "440305",
                "name": "测试区440305",
                "programme": "dibao",
                "status": "received",
                "cases": 1,
                "households": 1,
            }
        ]:
            break
        assert time.monotonic() - started < 1.0, rows
        time.sleep(0.02)

    approver = minted(running, "approver-3", "approver", "440305", "440305")
    closed = httpx.post(
        base + f"/cases/{case['case_id']}/closure",
        headers={**approver, "If-Match": '"1"'},
        json={"reason_code": "voluntary", "reason": "withdrawn by the applicant"},
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    again = httpx.post(
        base + f"/cases/{case['case_id']}/closure",
        headers=approver,
        json={"reason_code": "voluntary"},
    )
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")

    deadline = time.monotonic() + 5
    while httpx.get(
        base + "/caseload", headers=reader, params={"division": "440305", "status": "received"}
    ).json()["items"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    with psycopg.connect(running["db"]) as conn:
        stored = conn.execute(
            "SELECT notification_id, topic, state FROM relief_events WHERE originator_id = %s"
            " ORDER BY originator_version",
            (case["case_id"],),
        ).fetchall()
    assert [row[1].rsplit(".", 1)[1] for row in stored] == ["ApplicationReceived", "Closed"]
    assert b"clerk-7" not in bytes(stored[0][2])  # sealed at rest
    history = httpx.get(
        base + f"/cases/{case['case_id']}/history",
        headers={**approver, "X-Purpose": "check the walk-through"},
    )
    assert history.status_code == 200, history.text
    opened = history.json()["items"][0]
    assert (opened["actor"], opened["reason"], opened["correlation_id"]) == (
        {"id": "clerk-7", "role": "intake_clerk", "organisation": "440103"},
        "application at the township window",
        "walk-in-2026-0001",
    )

    deadline = time.monotonic() + 20
    while True:
        events = [
            e
            for _, _, _, e in read_topic(running["kafka"], running["topic"], quiet_s=0.5)
            if str(e.originator_id) == case["case_id"]
        ]
        if len(events) >= 2:
            break
        assert time.monotonic() < deadline, events
    assert [(e.originator_version, e.position) for e in events] == [
        (1, stored[0][0]),
        (2, stored[1][0]),
    ]

    projections = httpx.get(base + "/projections", headers=reader).json()["items"]
    assert projections[0]["name"] == "divisions"  # the register first: the others name by it
    caseload = next(p for p in projections if p["name"] == "caseload")
    assert caseload["lag"] == 0

    # The checkpointer signed the head and published it on the checkpoints topic.
    deadline = time.monotonic() + 20
    while True:
        published = [
            json.loads(v)
            for v in read_raw(
                running["kafka"], running["topic"] + ".checkpoints", quiet_s=0.5, timeout_s=5
            )
        ]
        positions = [c["data"]["position"] for c in published]
        if positions and max(positions) >= stored[-1][0]:
            break
        assert time.monotonic() < deadline, positions
    assert published[0]["type"] == "relief.audit.checkpoint"
    public_key = httpx.get(base + "/audit/public-key", headers=auditor).json()["public_key"]
    assert {c["data"]["public_key"] for c in published} == {public_key}
    assert httpx.get(base + "/audit/verify", headers=auditor).json()["intact"] is True
