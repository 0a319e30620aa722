"""Test tools for database faults: a PostgreSQL the test may stop and start, the system served
over real HTTP, and clients that keep sending commands and reads through it."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from psycopg.conninfo import conninfo_to_dict

from infra.embedded_kafka import free_loopback_port
from tests.e2e.http import actor
from tests.factories import resident_id, village


class OwnPostgres:
    """An embedded PostgreSQL of one test, which it may stop (fast shutdown: sessions are
    ended, as in a failover) and start again on the same socket."""

    def __init__(self, base: Path) -> None:
        from pgserver import get_server

        self.pgdata = base / "pgdata"
        self.server = get_server(self.pgdata, cleanup_mode="delete")
        self.url: str = self.server.get_uri()
        self.socket_dir = str(conninfo_to_dict(self.url)["host"])
        self.running = True

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        # pgserver runs the server as its own system user when the tests run as root
        pg_ctl(list(args), pgdata=self.pgdata, user=self.server.system_user, timeout=60)

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")
        self.running = False

    def start(self) -> None:
        log = str(self.pgdata / "log")
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log, "start")
        self.running = True

    def close(self) -> None:
        if self.running:  # pgserver knows the first server process only
            with suppress(Exception):
                self.stop()
        self.server.cleanup()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port, in a thread; yields its base URL."""
    port = free_loopback_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


@dataclass
class Answer:
    method: str
    path: str
    status: int | None  # None: no answer within the client's timeout, or the connection broke
    started: float
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


RECORDED_ANSWER_LOST = "/problems/recorded-answer-lost"
CLERK = actor("intake_clerk", "440103", "clerk-faults")
READER = actor("integration", "dashboards", "dashboard-faults")


class Load:
    """Clients sending commands (a household, then its case) and caseload reads without pause.

    Each command is sent until it is answered other than 503, always with its own
    Idempotency-Key; the answers are kept for the test to judge. ``timeout_s`` is how long a
    client waits for one answer: a longer wait counts as a hang.
    """

    def __init__(self, base: str, *, writers: int = 3, timeout_s: float = 15.0) -> None:
        self.base, self.writers, self.timeout_s = base, writers, timeout_s
        self.answers: list[Answer] = []
        self.households: dict[str, str] = {}  # Idempotency-Key -> household id
        self.cases: dict[str, str] = {}  # Idempotency-Key -> case id
        self.unfinished: list[str] = []
        #: Commands recorded whose answer the outage took (409 recorded-answer-lost): path
        #: -> how many.
        self.recorded_unanswered: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(writers)
        ] + [threading.Thread(target=self._read, daemon=True)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)

    def _send(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> Answer:
        started = time.monotonic()
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError:
            answer = Answer(method, path, None, started, time.monotonic() - started)
        else:
            answer = Answer(
                method,
                path,
                response.status_code,
                started,
                time.monotonic() - started,
                dict(response.headers),
                response.text,
            )
        with self._lock:
            self.answers.append(answer)
        return answer

    def command(self, client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[str, Answer]:
        """Send until answered (a 503 or a broken connection is sent again, with the key)."""
        key = str(uuid.uuid4())
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            answer = self._send(
                client, "POST", path, json=body, headers={**CLERK, "Idempotency-Key": key}
            )
            if answer.status == 409 and answer_json(answer)["type"] == RECORDED_ANSWER_LOST:
                with self._lock:
                    self.recorded_unanswered[path] = self.recorded_unanswered.get(path, 0) + 1
                return key, answer
            if answer.status not in (None, 503):
                return key, answer
            time.sleep(0.2)
        with self._lock:
            self.unfinished.append(f"POST {path} {key}")
        return key, answer

    def _write(self, n: int) -> None:
        client = httpx.Client(base_url=self.base, timeout=self.timeout_s)
        place = village("440103", f"{n + 1:03d}", "001")
        while not self._stop.is_set():
            person = resident_id("440103")
            key, answer = self.command(
                client,
                "/households",
                {
                    "registered_division": place,
                    "residence_division": place,
                    "members": [{"resident_id": person, "name": "Chen Hua", "relation": "head"}],
                },
            )
            if answer.status != 201:
                return
            household = answer_json(answer)["household_id"]
            with self._lock:
                self.households[key] = household
            key, answer = self.command(
                client,
                "/cases",
                {
                    "household_id": household,
                    "applicant_id": person,
                    "programme": "dibao",
                    "window_division": place[:9],
                    "reason": "application at the township window",
                },
            )
            if answer.status != 201:
                return
            with self._lock:
                self.cases[key] = answer_json(answer)["case_id"]

    def _read(self) -> None:
        client = httpx.Client(base_url=self.base, timeout=self.timeout_s)
        while not self._stop.is_set():
            self._send(client, "GET", "/caseload", headers=READER, params={"division": "44"})
            time.sleep(0.05)


def answer_json(answer: Answer) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer.body)
    return body


def event_count(database_url: str, topic_suffix: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM relief_events WHERE topic LIKE %s", (f"%{topic_suffix}",)
        ).fetchone()
    assert row is not None
    return int(row[0])
