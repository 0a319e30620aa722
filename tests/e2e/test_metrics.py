"""GET /metrics: Prometheus exposition through prometheus_client, parsed as Prometheus would."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from infra.relay import KafkaRelay
from infra.runtime import Runtime
from tests.e2e.test_http_api import HEADERS, household_body
from tests.e2e.test_staffing_api import catch_up

pytestmark = pytest.mark.e2e


def scrape(client: TestClient) -> dict[str, list[Sample]]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


def test_a_scrape_counts_requests_refusals_and_reads_the_state(
    client: TestClient, runtime: Runtime
) -> None:
    created = client.post("/households", json=household_body(), headers=HEADERS)
    assert created.status_code == 201, created.text
    refused = client.post("/households", json=household_body("440103198503071235"), headers=HEADERS)
    assert refused.status_code == 422, refused.text
    problem_type = refused.json()["type"]
    household_id = created.json()["household_id"]
    assert client.get(f"/households/{household_id}").status_code == 200
    catch_up(runtime)
    runtime.checkpointer().run_once()  # the log signed, as the running checkpointer does
    # the relay's stored position, as a relay makes it on start (no broker needed for that)
    relay = KafkaRelay(
        runtime.pool,
        runtime.ledger.recorder,
        bootstrap="unused:9092",
        topic="t",
        partitions=1,
        source="test",
    )
    assert relay.load_state().position == 0
    families = scrape(client)

    requests = families["relief_http_requests"]
    assert value(requests, "relief_http_requests_total", route="/households", status="201") == 1
    assert value(requests, "relief_http_requests_total", route="/households", status="422") == 1
    # the route template, not the path: no household ID in any label
    by_id = "/households/{household_id}"
    assert value(requests, "relief_http_requests_total", route=by_id, status="200") == 1
    assert not any(household_id in str(s.labels) for f in families.values() for s in f)
    latency = families["relief_http_request_duration_seconds"]
    assert (
        value(
            latency,
            "relief_http_request_duration_seconds_count",
            method="POST",
            route="/households",
            status="201",
        )
        == 1
    )
    refusals = families["relief_commands_refused"]
    assert value(refusals, "relief_commands_refused_total", type=problem_type, status="422") == 1
    assert all(s.labels["status"] != "201" for s in refusals)

    head = runtime.head_position()
    assert value(families["relief_database_up"], "relief_database_up") == 1
    assert value(families["relief_log_head"], "relief_log_head") == head
    lag = families["relief_projection_lag_events"]
    assert value(lag, "relief_projection_lag_events", projection="caseload") == 0
    assert value(families["relief_relay_position"], "relief_relay_position", relay="kafka") == 0
    assert value(families["relief_relay_lag_events"], "relief_relay_lag_events") == head
    assert value(families["relief_audit_unsigned_events"], "relief_audit_unsigned_events") == 0
    age = value(
        families["relief_audit_checkpoint_age_seconds"], "relief_audit_checkpoint_age_seconds"
    )
    assert age >= 0
    pool = runtime.pool.get_stats()
    assert value(families["relief_db_pool_max"], "relief_db_pool_max") == pool["pool_max"]
    assert value(families["relief_db_pool_size"], "relief_db_pool_size") >= 1
    assert value(families["relief_db_requests_num"], "relief_db_requests_num_total") > 0


def test_the_unsigned_tail_grows_with_events_after_the_newest_checkpoint(
    client: TestClient, runtime: Runtime
) -> None:
    runtime.checkpointer().run_once()
    assert client.post("/households", json=household_body(), headers=HEADERS).status_code == 201
    families = scrape(client)
    tail = value(families["relief_audit_unsigned_events"], "relief_audit_unsigned_events")
    assert tail >= 1  # the household's events, at least one


def test_a_scrape_without_a_token_is_401(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
