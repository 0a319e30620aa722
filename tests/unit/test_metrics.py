"""api/metrics.py: bounded labels, and a scrape that answers while the database is down."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from psycopg_pool import ConnectionPool

from api.metrics import Metrics, problem_type


@pytest.mark.parametrize(
    ("body", "label"),
    [
        (json.dumps({"type": "/problems/check-character", "status": 422}).encode(), None),
        (json.dumps({"type": "/problems/http-404"}).encode(), None),
        (json.dumps({"type": "https://evil.example/" + "x" * 500}).encode(), "other"),
        (json.dumps({"type": "/problems/" + "a" * 200}).encode(), "other"),
        (json.dumps({"status": 422}).encode(), "other"),
        (json.dumps(["not", "an", "object"]).encode(), "other"),
        (b'{"type": "/problems/cut', "other"),  # cut off at the buffer's limit
    ],
)
def test_problem_types_are_bounded_labels(body: bytes, label: str | None) -> None:
    expected = json.loads(body)["type"] if label is None else label
    assert problem_type(body) == expected


@pytest.fixture()
def unreachable_pool() -> Iterator[ConnectionPool]:
    # a real pool whose database does not answer (nothing listens on port 1)
    pool = ConnectionPool(
        "host=127.0.0.1 port=1 connect_timeout=2 dbname=none",
        min_size=0,
        max_size=2,
        open=False,
        timeout=1,
        reconnect_timeout=1,
    )
    pool.open(wait=False)
    yield pool
    pool.close()


def test_with_the_database_down_the_scrape_answers_and_says_so(
    unreachable_pool: ConnectionPool,
) -> None:
    metrics = Metrics(unreachable_pool)
    text = generate_latest(metrics.registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert [s.value for s in families["relief_database_up"].samples] == [0]
    assert [s.value for s in families["relief_db_pool_max"].samples] == [2]
    assert "relief_projection_lag_events" not in families  # left out, not made up
    assert "relief_relay_position" not in families


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.requests.labels("GET", "/cases/{case_id}", "200").inc()
    assert b"relief_http_requests_total{" not in generate_latest(second.registry)
    assert b"relief_http_requests_total{" in generate_latest(first.registry)


def test_a_scrape_names_the_worker_process_that_answered_it() -> None:
    text = generate_latest(Metrics().registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert [(s.labels, s.value) for s in families["relief_api_process"].samples] == [
        ({"pid": str(os.getpid())}, 1)
    ]
    assert families["process_cpu_seconds"].samples[0].value > 0


def test_group_commit_counts_its_groups_and_inserts() -> None:
    from infra.group_commit import Groups

    def write(group: list) -> None:  # type: ignore[type-arg]
        for each in group:
            each.positions = [1]

    groups = Groups(write)
    metrics = Metrics()
    metrics.watch_group_commit(groups)
    groups.insert([])
    groups.insert([])
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for s in family.samples
    }
    assert samples["relief_group_commit_groups_total"] == 2
    assert samples["relief_group_commit_inserts_total"] == 2
