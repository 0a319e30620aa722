"""The HTTP API in-process over a real PostgreSQL: problem+json errors, conflicts, reads."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from infra.runtime import Runtime
from projections.caseload import CaseloadProjection
from tests.e2e.http import actor, reader
from tests.factories import resident_id, token, village
from tests.integration.helpers import events_written, register_head

pytestmark = pytest.mark.e2e

HEADERS = actor("intake_clerk", "440103", "clerk-1")


def approver(county: str = "440103") -> dict[str, str]:
    return actor("approver", county, "approver-1")


def household_body(head: str | None = None, division: str | None = None) -> dict[str, Any]:
    code = division or village()
    return {
        "registered_division": code,
        "residence_division": code,
        "members": [{"resident_id": head or resident_id(), "name": "Chen Hua", "relation": "head"}],
    }


def application(
    client: TestClient, county: str = "440103", programme: str = "dibao", head: str | None = None
) -> dict[str, Any]:
    number = head or resident_id()
    clerk = actor("intake_clerk", county, "clerk-1", scope=county[:2])
    home = client.post("/households", headers=clerk, json=household_body(number, village(county)))
    assert home.status_code == 201, home.text
    case = client.post(
        "/cases",
        headers=clerk,
        json={
            "household_id": home.json()["household_id"],
            "applicant_id": number,
            "programme": programme,
            "window_division": f"{county}001",
        },
    )
    assert case.status_code == 201, case.text
    return case.json()


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
    """The events the test wrote (the log less the register the database began with)."""
    return events_written(runtime.database_url)


@pytest.mark.parametrize(
    ("head", "division", "field", "fault"),
    [
        ("440103198503071235", None, "members[0].resident_id", "check-character"),
        ("4401031985", None, "members[0].resident_id", "length"),
        (None, "440103001", "registered_division", "level"),
        (None, "990103001001", "registered_division", "province"),
    ],
)
def test_invalid_identifiers_are_refused_naming_field_and_fault(
    client: TestClient,
    runtime: Runtime,
    head: str | None,
    division: str | None,
    field: str,
    fault: str,
) -> None:
    response = client.post("/households", json=household_body(head, division), headers=HEADERS)
    problem = assert_problem(response, 422, field)
    assert problem["fault"] == fault
    assert event_count(runtime) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**household_body(), "unexpected": 1}, "unexpected"),
        ({"registered_division": "440103001001"}, "residence_division"),
        (
            {
                **household_body(),
                "members": [{"resident_id": 440103198503071234, "name": "A", "relation": "head"}],
            },
            "members.0.resident_id",
        ),
        ({**household_body(), "members": []}, "members"),
    ],
)
def test_schema_violations_are_refused_naming_the_field(
    client: TestClient, runtime: Runtime, body: dict, field: str
) -> None:
    problem = assert_problem(client.post("/households", json=body, headers=HEADERS), 422)
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


def test_a_command_without_a_valid_token_is_refused(client: TestClient, runtime: Runtime) -> None:
    response = client.post("/households", json=household_body(), headers={"Authorization": ""})
    assert_problem(response, 401, "Authorization")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    now = dt.datetime.now(dt.UTC)
    for bad in (
        "not-a-jwt",
        token("mayor", "440103", "x"),  # no such role
        token("system", "440103", "x"),  # never issued to callers
        token("intake_clerk", "440103", "x", scope="4"),  # scope is no division prefix
        token("intake_clerk", "440103", "x", exp=now - dt.timedelta(hours=1)),
        token("intake_clerk", "440103", "x", aud="another-system"),
        token("intake_clerk", "440103", "x", iss="someone-else"),
        # signed by a key the ledger does not trust
        jwt.encode(
            {
                "sub": "x",
                "role": "approver",
                "org": "440103",
                "scope": "44",
                "iss": "relief-ledger-dev",
                "aud": "relief-ledger",
                "iat": now,
                "exp": now + dt.timedelta(hours=1),
            },
            Ed25519PrivateKey.generate(),
            algorithm="EdDSA",
        ),
        # an HMAC token "signed" with the public key: algorithm confusion
        jwt.encode({"sub": "x"}, "secret", algorithm="HS256"),
    ):
        response = client.post(
            "/households", json=household_body(), headers={"Authorization": f"Bearer {bad}"}
        )
        assert_problem(response, 401, "Authorization")
        assert "Traceback" not in response.text
    assert event_count(runtime) == 0


def test_unknown_case_is_404_and_bad_id_is_422(client: TestClient) -> None:
    assert_problem(client.get("/cases/0b5d3b0e-6d55-4a4f-9d7b-6f8f8f0c0c0c", headers=reader()), 404)
    assert_problem(client.get("/cases/not-a-uuid", headers=reader()), 422, "case_id")


def test_a_second_active_application_names_the_existing_case(
    client: TestClient, runtime: Runtime
) -> None:
    number = resident_id()
    first = application(client, head=number)
    before = event_count(runtime)
    again = client.post(
        "/cases",
        headers=HEADERS,
        json={
            "household_id": first["household_id"],
            "applicant_id": number,
            "programme": "dibao",
            "window_division": "440305001",
        },
    )
    problem = assert_problem(again, 409, "applicant_id")
    assert problem["type"] == "/problems/duplicate-active-case"
    assert problem["existing_case_id"] == first["case_id"]
    assert first["case_id"] in problem["detail"]
    assert event_count(runtime) == before
    other_programme = client.post(
        "/cases",
        headers=HEADERS,
        json={
            "household_id": first["household_id"],
            "applicant_id": number,
            "programme": "temporary",
            "window_division": "440103001",
        },
    )
    assert other_programme.status_code == 201


def test_get_case_returns_masked_id_and_etag(client: TestClient) -> None:
    number = resident_id()
    case_id = application(client, head=number)["case_id"]
    fetched = client.get(f"/cases/{case_id}", headers=reader())
    assert fetched.status_code == 200
    assert fetched.headers["etag"] == '"1"'
    assert number not in fetched.text
    assert fetched.json()["applicant_id"].endswith(number[-4:])
    history = client.get(f"/cases/{case_id}/history", headers=reader()).json()["items"]
    assert number not in str(history)


def test_a_stale_if_match_is_412_and_changes_nothing(client: TestClient, runtime: Runtime) -> None:
    case_id = application(client)["case_id"]
    before = event_count(runtime)
    response = client.post(
        f"/cases/{case_id}/closure",
        json={"reason_code": "voluntary"},
        headers={**approver(), "If-Match": '"5"'},
    )
    assert_problem(response, 412, "If-Match")
    assert event_count(runtime) == before


def test_racing_closures_one_wins_the_others_get_409(client: TestClient) -> None:
    for _ in range(5):
        case_id = application(client)["case_id"]
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
                    f"/cases/{case_id}/closure",
                    json={"reason_code": "voluntary"},
                    headers=approver(),
                ).status_code
            )

        threads = [threading.Thread(target=close) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200, 409, 409, 409]
        assert client.get(f"/cases/{case_id}", headers=reader()).json()["version"] == 2


def test_caseload_rolls_up_filters_and_pages(client: TestClient, runtime: Runtime) -> None:
    for county, programme in [
        ("440103", "dibao"),
        ("440103", "tekun"),
        ("440305", "dibao"),
        ("440305", "dibao"),
        ("450102", "temporary"),
    ]:
        application(client, county, programme)
    runtime.projection_runner(CaseloadProjection).catch_up()
    everything = client.get("/caseload").json()  # a Guangdong auditor: Guangdong only
    assert everything["total"] == 3
    guangdong = client.get("/caseload", params={"division": "44"}).json()
    assert [
        (r["division"], r["programme"], r["status"], r["cases"]) for r in guangdong["items"]
    ] == [
        ("440103", "dibao", "received", 1),
        ("440103", "tekun", "received", 1),
        ("440305", "dibao", "received", 2),
    ]
    assert all(r["households"] == r["cases"] for r in guangdong["items"])  # one case each
    by_province = client.get("/caseload", params={"level": "province"}).json()["items"]
    assert {(r["division"], r["programme"]): r["cases"] for r in by_province} == {
        ("44", "dibao"): 3,
        ("44", "tekun"): 1,
    }
    guangxi = actor("auditor", "45", "auditor-gx", scope="45")
    by_province = client.get("/caseload", params={"level": "province"}, headers=guangxi).json()
    assert [(r["division"], r["cases"]) for r in by_province["items"]] == [("45", 1)]
    assert_problem(client.get("/caseload", params={"division": "45"}), 403, "division")
    guangzhou = actor("auditor", "4401", "auditor-gz", scope="4401")
    assert_problem(client.get("/caseload", params={"division": "44"}, headers=guangzhou), 403)
    gz = client.get("/caseload", headers=guangzhou).json()["items"]
    assert {r["division"] for r in gz} == {"440103"}
    villages = client.get("/caseload", params={"division": "440305", "level": "village"})
    assert villages.json()["items"][0]["division"] == "440305001001"
    page = client.get("/caseload", params={"division": "44", "limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and page["items"][0]["programme"] == "tekun"
    dibao = client.get("/caseload", params={"programme": "dibao"}).json()
    assert {r["division"] for r in dibao["items"]} == {"440103", "440305"}
    assert client.get("/caseload", params={"status": "approved"}).json()["items"] == []
    assert_problem(client.get("/caseload", params={"division": "4401031"}), 422, "division")
    assert_problem(client.get("/caseload", params={"limit": 0}), 422, "limit")
    assert_problem(client.get("/caseload", params={"level": "street"}), 422, "level")


def test_health_and_readiness(client: TestClient, runtime: Runtime) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    application(client)
    # the projection is behind but within the bound: still ready
    ready = client.get("/readyz").json()
    assert ready["ready"] is True
    items = client.get("/projections").json()["items"]
    lag = next(item["lag"] for item in items if item["name"] == "caseload")
    # the caseload projection has not run since the register: it lags by the application
    assert lag == runtime.head_position() - register_head(runtime.database_url) > 0
    runtime.settings = runtime.settings.with_(ready_max_lag=1)
    behind = client.get("/readyz")
    assert behind.status_code == 503
    assert behind.json()["checks"]["projection:caseload"] == f"lag {lag}"
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "relief-ledger"
