"""The database fails under load: it is stopped and started again, or an operator ends busy
sessions (what a failover does). Every answer comes fast, a 503 with Retry-After while the
database is away (never a 500 nor a hang); service resumes within seconds of its return without
a restart; projections, relay and checkpointer catch up; nothing is lost or recorded twice."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from api.app import create_app
from infra.embedded_kafka import EmbeddedKafka
from infra.projection_runner import projection_status
from infra.runtime import Runtime, Workers
from infra.settings import Settings
from projections.registry import ALL_PROJECTIONS
from tests.conftest import TEST_DIVISIONS, fresh_database
from tests.e2e.faults import (
    READER,
    RECORDED_ANSWER_LOST,
    Load,
    OwnPostgres,
    answer_json,
    event_count,
    serving,
)
from tests.factories import TOKEN_PUBLIC_PEM
from tests.integration.kafka_tools import read_topic

pytestmark = pytest.mark.e2e

ROLES = ("api", "relay", "checkpointer", *(p.name for p in ALL_PROJECTIONS))


@dataclass
class System:
    postgres: OwnPostgres
    runtime: Runtime
    workers: Workers
    base: str


@pytest.fixture()
def system(tmp_path: Path, kafka_broker: EmbeddedKafka) -> Iterator[System]:
    """``relief run`` in this process (API over HTTP, relay, checkpointer, projections) on a
    PostgreSQL of the test's own."""
    postgres = OwnPostgres(tmp_path)
    trusted = tmp_path / "idp-public.pem"
    trusted.write_bytes(TOKEN_PUBLIC_PEM)
    settings = Settings(
        jwt_public_key_path=trusted,
        database_url=fresh_database(postgres.url),
        data_dir=tmp_path / "data",
        kafka_bootstrap=kafka_broker.bootstrap,
        kafka_topic=f"relief.events.{uuid.uuid4().hex[:8]}",
        kafka_partitions=3,
        db_pool_size=4,
        projection_batch=50,
        checkpoint_events=20,
        checkpoint_seconds=1,
        divisions_file=TEST_DIVISIONS,  # its first start loads the test register
    )
    runtime = Runtime.open(settings)
    workers = Workers(runtime).start()
    try:
        with serving(create_app(runtime)) as base:
            yield System(postgres, runtime, workers, base)
    finally:
        workers.stop()
        runtime.close()
        postgres.close()


def test_the_database_stopped_and_started_under_load(system: System) -> None:
    with Load(system.base) as load:
        wait_for_answers(load, 6)
        system.postgres.stop()
        stopped = time.monotonic()
        time.sleep(7)
        starting = time.monotonic()  # (the server answers before pg_ctl says it is up)
        system.postgres.start()
        returned = time.monotonic()
        time.sleep(6)
    during = [a for a in load.answers if a.started > stopped and a.started + a.seconds < starting]
    assert during and {a.status for a in during} == {503}, summary(during)
    for answer in during:
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"].isdigit()
        assert answer_json(answer)["type"] == "/problems/database-unavailable"
    # Back within seconds of the database (the load runs 6 s more), without a restart.
    succeeded = {
        (a.method, a.path) for a in load.answers if a.started > returned and a.status in (200, 201)
    }
    assert succeeded == {("POST", "/households"), ("POST", "/cases"), ("GET", "/caseload")}, (
        summary([a for a in load.answers if a.started > returned])
    )
    assert_consistent_after(system, load)


def test_sessions_ended_by_an_operator_under_load(system: System) -> None:
    with Load(system.base) as load:
        wait_for_answers(load, 6)
        ended = {role: 0 for role in ROLES}
        for _ in range(3):
            with psycopg.connect(system.postgres.url, autocommit=True) as conn:
                for role in ROLES:
                    rows = conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = %s AND datname = %s",
                        (f"relief-{role}", conninfo_to_dict(system.runtime.database_url)["dbname"]),
                    ).fetchall()
                    ended[role] += len(rows)
            time.sleep(1.0)
        time.sleep(2)
    # Each kind of session could be told apart and ended on its own.
    assert all(count > 0 for count in ended.values()), ended
    assert_consistent_after(system, load)


def wait_for_answers(load: Load, count: int) -> None:
    deadline = time.monotonic() + 30
    while len([a for a in load.answers if a.status in (200, 201)]) < count:
        assert time.monotonic() < deadline, summary(load.answers)
        time.sleep(0.1)


def assert_consistent_after(system: System, load: Load) -> None:
    """No answer was a 500 or a hang; every command was answered once recorded, and recorded
    once; the read models, the Kafka copy and the checkpoints caught up with the log."""
    failed = [
        a
        for a in load.answers
        if a.status not in (200, 201, 503)
        and not (a.status == 409 and answer_json(a)["type"] == RECORDED_ANSWER_LOST)
    ]
    assert failed == []
    assert load.unfinished == []
    url = system.runtime.database_url
    lost = load.recorded_unanswered
    assert event_count(url, "Household.Registered") == len(load.households) + lost.get(
        "/households", 0
    )
    assert event_count(url, "ReliefCase.ApplicationReceived") == len(load.cases) + lost.get(
        "/cases", 0
    )
    assert load.households and load.cases
    assert system.workers.halted == {}

    deadline = time.monotonic() + 60
    while True:
        ready = httpx.get(system.base + "/readyz")
        head = system.runtime.head_position()
        statuses = projection_status(system.runtime.pool, ALL_PROJECTIONS, head)
        if ready.status_code == 200 and all(s.position == head for s in statuses):
            break
        assert time.monotonic() < deadline, (ready.text, statuses)
        time.sleep(0.2)
    assert all(s.last_error is None for s in statuses)
    caseload = httpx.get(
        system.base + "/caseload", headers=READER, params={"division": "44", "level": "province"}
    ).json()["items"]
    assert sum(row["cases"] for row in caseload) == len(load.cases)

    with psycopg.connect(url) as conn:  # (an insert cut off before its commit leaves a gap)
        logged = {row[0] for row in conn.execute("SELECT notification_id FROM relief_events")}
    deadline = time.monotonic() + 30
    while True:  # the Kafka copy: every position at least once (at-least-once delivery)
        positions = {
            e.position
            for _, _, _, e in read_topic(
                system.workers.runtime.kafka_bootstrap or "",
                system.runtime.settings.kafka_topic,
                quiet_s=0.5,
            )
        }
        if positions == logged:
            break
        assert time.monotonic() < deadline, sorted(logged ^ positions)[:20]
    deadline = time.monotonic() + 30
    while True:  # and the checkpointer signs the head again
        with system.runtime.pool.connection() as conn:
            row = conn.execute("SELECT max(position) FROM audit.checkpoints").fetchone()
        if row and row[0] == head:
            break
        assert time.monotonic() < deadline, (row, head)
        time.sleep(0.2)


def summary(answers: list[object]) -> str:
    return "\n".join(str(a)[:300] for a in answers[-40:])
