"""The HTTP API in-process over a real PostgreSQL: problem+json errors, conflicts, reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.projection_runner import PostgresFeedRunner
from infra.runtime import Runtime
from projections.caseload import CaseloadProjection
from tests.factories import resident_id, village

pytestmark = pytest.mark.e2e

HEADERS = {
    "X-Actor-Id": "clerk-1",
    "X-Actor-Role": "intake_clerk",
    "X-Actor-Organisation": "440103",
}


@pytest.fixture()
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), raise_server_exceptions=False) as test_client:
        yield test_client


def open_body(**overrides: str) -> dict[str, str]:
    body = {"programme": "dibao", "applicant_id": resident_id(), "registered_division": village()}
    body.update(overrides)
    return body


def assert_problem(response, status: int, field: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and problem["type"].startswith("/problems/")
    assert problem["title"]
    if field is not None:
        assert problem["field"] == field, problem
    assert "Traceback" not in response.text and "SELECT" not in response.text
    return problem


def event_count(runtime: Runtime) -> int:
    return runtime.head_position()


@pytest.mark.parametrize(
    ("body", "field", "fault"),
    [
        (open_body(applicant_id="440103198503071235"), "applicant_id", "check-character"),
        (open_body(applicant_id="4401031985"), "applicant_id", "length"),
        (open_body(registered_division="440103001"), "registered_division", "level"),
        (open_body(registered_division="990103001001"), "registered_division", "province"),
    ],
)
def test_invalid_identifiers_are_refused_naming_field_and_fault(
    client: TestClient, runtime: Runtime, body: dict, field: str, fault: str
) -> None:
    problem = assert_problem(client.post("/cases", json=body, headers=HEADERS), 422, field)
    assert problem["fault"] == fault
    assert event_count(runtime) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**open_body(), "programme": "pension"}, "programme"),
        ({**open_body(), "unexpected": 1}, "unexpected"),
        ({"programme": "dibao"}, "applicant_id"),
        ({**open_body(), "applicant_id": 440103198503071234}, "applicant_id"),
    ],
)
def test_schema_violations_are_refused_naming_the_field(
    client: TestClient, runtime: Runtime, body: dict, field: str
) -> None:
    problem = assert_problem(client.post("/cases", json=body, headers=HEADERS), 422)
    assert field in {e["field"] for e in problem["errors"]}
    assert event_count(runtime) == 0


def test_malformed_json_is_a_400(client: TestClient, runtime: Runtime) -> None:
    response = client.post(
        "/cases",
        content=b'{"programme": "dib',
        headers={**HEADERS, "Content-Type": "application/json"},
    )
    assert_problem(response, 400)
    assert event_count(runtime) == 0


def test_a_command_without_an_actor_is_refused(client: TestClient, runtime: Runtime) -> None:
    assert_problem(client.post("/cases", json=open_body()), 401, "X-Actor-Id")
    bad_role = {**HEADERS, "X-Actor-Role": "mayor"}
    assert_problem(client.post("/cases", json=open_body(), headers=bad_role), 422, "X-Actor-Role")
    assert event_count(runtime) == 0


def test_unknown_case_is_404_and_bad_id_is_422(client: TestClient) -> None:
    assert_problem(client.get("/cases/0b5d3b0e-6d55-4a4f-9d7b-6f8f8f0c0c0c"), 404)
    assert_problem(client.get("/cases/not-a-uuid"), 422, "case_id")


def test_get_case_returns_masked_id_and_etag(client: TestClient) -> None:
    applicant = resident_id()
    created = client.post("/cases", json=open_body(applicant_id=applicant), headers=HEADERS)
    case_id = created.json()["case_id"]
    fetched = client.get(f"/cases/{case_id}")
    assert fetched.status_code == 200
    assert fetched.headers["etag"] == '"1"'
    assert applicant not in fetched.text
    assert fetched.json()["applicant_id"].endswith(applicant[-4:])


def test_a_stale_if_match_is_412_and_changes_nothing(client: TestClient, runtime: Runtime) -> None:
    case_id = client.post("/cases", json=open_body(), headers=HEADERS).json()["case_id"]
    before = event_count(runtime)
    response = client.post(
        f"/cases/{case_id}/close",
        json={"reason_code": "death"},
        headers={**HEADERS, "If-Match": '"5"'},
    )
    assert_problem(response, 412, "If-Match")
    assert event_count(runtime) == before


def test_racing_closes_one_wins_the_others_get_409(client: TestClient, runtime: Runtime) -> None:
    for _ in range(5):
        case_id = client.post("/cases", json=open_body(), headers=HEADERS).json()["case_id"]
        barrier = threading.Barrier(4)
        statuses: list[int] = []

        def close(
            case_id: str = case_id,
            barrier: threading.Barrier = barrier,
            statuses: list[int] = statuses,
        ) -> None:
            barrier.wait()
            statuses.append(
                client.post(
                    f"/cases/{case_id}/close", json={"reason_code": "voluntary"}, headers=HEADERS
                ).status_code
            )

        threads = [threading.Thread(target=close) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200, 409, 409, 409]
        assert client.get(f"/cases/{case_id}").json()["version"] == 2


def test_caseload_is_filtered_and_paged(client: TestClient, runtime: Runtime) -> None:
    for county, programme in [
        ("440103", "dibao"),
        ("440103", "tekun"),
        ("440305", "dibao"),
        ("440305", "dibao"),
        ("450102", "temporary"),
    ]:
        response = client.post(
            "/cases",
            headers=HEADERS,
            json=open_body(programme=programme, registered_division=village(county)),
        )
        assert response.status_code == 201
    PostgresFeedRunner(
        runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, CaseloadProjection
    ).catch_up()
    everything = client.get("/caseload").json()
    assert everything["total"] == 4
    guangdong = client.get("/caseload", params={"division": "44"}).json()
    assert [(r["county"], r["programme"], r["open_cases"]) for r in guangdong["items"]] == [
        ("440103", "dibao", 1),
        ("440103", "tekun", 1),
        ("440305", "dibao", 2),
    ]
    page = client.get("/caseload", params={"division": "44", "limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and page["items"][0]["programme"] == "tekun"
    dibao = client.get("/caseload", params={"programme": "dibao"}).json()
    assert {r["county"] for r in dibao["items"]} == {"440103", "440305"}
    assert_problem(client.get("/caseload", params={"division": "4401031"}), 422, "division")
    assert_problem(client.get("/caseload", params={"limit": 0}), 422, "limit")


def test_health_and_readiness(client: TestClient, runtime: Runtime) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    client.post("/cases", json=open_body(), headers=HEADERS)
    # the projection is behind but within the bound: still ready
    ready = client.get("/readyz").json()
    assert ready["ready"] is True
    assert client.get("/projections").json()["items"][0]["lag"] == 1
    runtime.settings = runtime.settings.with_(ready_max_lag=1)
    client.post("/cases", json=open_body(), headers=HEADERS)
    behind = client.get("/readyz")
    assert behind.status_code == 503
    assert behind.json()["checks"]["projection:caseload"] == "lag 2"
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "relief-ledger"
