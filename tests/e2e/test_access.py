"""Who may do and see what, tried over HTTP: every role against every endpoint, and scope
leaks across prefectures. The expected table is written out here, apart from api/access.py,
so a change to the rules must be made twice to pass: once in the rules, once here."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.access import action_of
from api.app import ROUTERS
from domain.commands.cases import ReceiveApplication
from infra.runtime import Runtime
from tests.e2e.http import actor, contracted, ok, refused
from tests.factories import BY_CLERK, resident_id
from tests.scenario import application, approve, household

pytestmark = pytest.mark.e2e

C, H, K, A = "intake_clerk", "handling_staff", "contractor_staff", "approver"
S, U, I = "supervisor", "auditor", "integration"  # noqa: E741
ROLES = (C, H, K, A, S, U, I)
READERS = {C, H, A, S, U}

#: (method, path) → roles that pass the access rule (the domain may still refuse them).
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("POST", "/households"): {C, H},
    ("GET", "/households/{household_id}"): READERS | {K},
    ("POST", "/households/{household_id}/members"): {C, H},
    ("POST", "/households/{household_id}/move-outs"): {C, H},
    ("POST", "/deaths"): {C, H},
    ("POST", "/cases"): {C, H},
    ("GET", "/cases/{case_id}"): READERS | {K},
    ("GET", "/cases/{case_id}/history"): READERS | {K},
    ("GET", "/cases/{case_id}/as-of"): READERS | {K},
    ("GET", "/cases/{case_id}/decision-view"): READERS | {K},
    ("GET", "/cases/{case_id}/reads"): {S, U},
    ("POST", "/cases/{case_id}/assignment"): {H},
    ("POST", "/cases/{case_id}/investigation"): {C, H, K},
    ("POST", "/cases/{case_id}/recommendation"): {C, H, K},
    ("POST", "/cases/{case_id}/approval"): {A},
    ("POST", "/cases/{case_id}/rejection"): {A},
    ("POST", "/cases/{case_id}/payments"): {H, A},
    ("POST", "/cases/{case_id}/services"): {H, K},
    ("POST", "/cases/{case_id}/reviews"): {H, A},
    ("POST", "/cases/{case_id}/suspension"): {H, A},
    ("POST", "/cases/{case_id}/resumption"): {H, A},
    ("POST", "/cases/{case_id}/closure"): {H, A},
    ("POST", "/cases/{case_id}/corrections"): {H, A},
    ("GET", "/caseload"): READERS | {I},
    ("GET", "/caseload/by-staff"): READERS | {I},
    ("GET", "/caseload/by-contractor"): READERS | {I},
    ("GET", "/caseload/waiting"): READERS | {I},
    ("GET", "/caseload/cross-region"): READERS | {I},
    ("GET", "/staffing"): READERS | {I},
    ("GET", "/staffing/villages"): READERS | {I},
    ("GET", "/staffing/summary"): READERS | {I},
    ("GET", "/staffing/divisions/{code}"): READERS | {I},
    ("GET", "/staffing/policies"): READERS | {I},
    ("POST", "/staffing/policies"): {A, S},
    ("GET", "/standards"): READERS | {I},
    ("POST", "/standards"): {A, S},
    ("GET", "/metrics"): {H, S, U, I},
    ("GET", "/projections"): {H, S, U, I},
    ("POST", "/contractors"): {H},
    ("GET", "/contractors/{contractor_id}"): READERS | {K},
    ("GET", "/contractors/{contractor_id}/history"): READERS | {K},
    ("POST", "/contractors/{contractor_id}/bans"): {A, S},
    ("POST", "/contracts"): {H, A},
    ("GET", "/contracts/{contract_id}"): READERS | {K},
    ("GET", "/contracts/{contract_id}/history"): READERS | {K},
    ("GET", "/contracts/{contract_id}/coverage"): READERS | {K},
    ("POST", "/contracts/{contract_id}/amendments"): {H, A},
    ("POST", "/contracts/{contract_id}/renewals"): {H, A},
    ("POST", "/contracts/{contract_id}/expiry"): {H, A},
    ("POST", "/contracts/{contract_id}/invoices"): {H, A},
    ("POST", "/contracts/{contract_id}/evaluations"): {H, A, S},
    ("POST", "/contracts/{contract_id}/violations"): {A, S},
    ("POST", "/contracts/{contract_id}/penalties"): {A, S},
    ("POST", "/contracts/{contract_id}/termination"): {H, A, S},
    ("POST", "/staff"): {H, A},
    ("GET", "/staff/{staff_id}"): READERS | {K},
    ("GET", "/staff/{staff_id}/history"): READERS | {K},
    ("POST", "/staff/{staff_id}/assignments"): {H, A},
    ("POST", "/staff/{staff_id}/trainings"): {H, A},
    ("POST", "/staff/{staff_id}/ratings"): {H, A},
    ("POST", "/staff/{staff_id}/removal"): {H, A},
    ("POST", "/staff/{staff_id}/sign-ins"): {H, A},
    ("POST", "/staff/{staff_id}/sign-ins/removal"): {H, A},
    ("GET", "/audit/verify"): {S, U},
    ("GET", "/audit/verify/jobs/{job_id}"): {S, U},
    ("GET", "/audit/checkpoints"): {S, U},
    ("GET", "/audit/public-key"): {S, U},
    ("GET", "/audit/bundles/{aggregate_id}"): {S, U},
    ("GET", "/audit/aggregates/{aggregate_id}/as-of"): {S, U},
    ("GET", "/alerts"): {S, U},
    ("GET", "/alerts/rules"): {S, U},
    ("GET", "/alerts/{alert_id}"): {S, U},
    ("POST", "/investigations"): {S},
    ("GET", "/investigations/{investigation_id}"): {S, U},
    ("GET", "/investigations/{investigation_id}/history"): {S, U},
    ("POST", "/investigations/{investigation_id}/notes"): {S},
    ("POST", "/investigations/{investigation_id}/findings"): {S},
    ("POST", "/investigations/{investigation_id}/closure"): {S},
    ("GET", "/contractors/{contractor_id}/dossier"): {S, U},
    # the staff office, or (clerk, contractor staff) the staff member themself only
    ("POST", "/staff/{staff_id}/interests"): {C, H, K, A},
}
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}


def api_routes() -> list[tuple[str, str, APIRoute]]:
    return [
        (method, route.path, route)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods)
    ]


def concrete(path: str) -> str:
    return path.format(
        case_id=uuid.uuid4(),
        household_id=uuid.uuid4(),
        contract_id=uuid.uuid4(),
        contractor_id=uuid.uuid4(),
        staff_id=uuid.uuid4(),
        aggregate_id=uuid.uuid4(),
        alert_id=uuid.uuid4(),
        investigation_id=uuid.uuid4(),
        job_id=uuid.uuid4(),
        code="440103",
    )


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    if method == "GET":
        return client.get(path, headers=headers)
    return client.post(path, headers=headers, json={})


def test_every_endpoint_is_in_the_table_and_declares_its_rule(client: TestClient) -> None:
    routes = api_routes()
    declared = {(m, p) for m, p, _ in routes}
    assert declared == set(EXPECTED) | PUBLIC, "a new endpoint needs a row in EXPECTED"
    for method, path, route in routes:
        if (method, path) in PUBLIC:
            assert action_of(route) is None
        else:
            assert action_of(route) is not None, f"{method} {path} declares no access rule"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_against_each_endpoint(client: TestClient, role: str) -> None:
    headers = actor(role, "440103", f"{role}-1")
    for (method, path), allowed in EXPECTED.items():
        response = call(client, method, concrete(path), headers)
        where = f"{role} {method} {path}: {response.status_code} {response.text[:200]}"
        if role in allowed:
            assert response.status_code not in (401, 403), where
            assert response.status_code < 500, where
        else:
            assert response.status_code == 403, where
            assert response.json()["field"] == "role", where


def test_no_token_no_answer_except_health_and_docs(client: TestClient) -> None:
    anonymous = {"Authorization": ""}
    for method, path in EXPECTED:
        response = call(client, method, concrete(path), anonymous)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json"):
        assert client.get(path, headers=anonymous).status_code in (200, 503), path


# Scope ------------------------------------------------------------------------------------------

GUANGZHOU_OFFICER = actor(H, "440103", "gz-officer", scope="4401")
GUANGZHOU_APPROVER = actor(A, "440103", "gz-approver", scope="440103")


def purpose(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "X-Purpose": "scope test"}


def test_a_guangzhou_officer_sees_nothing_of_shenzhen(client: TestClient, runtime: Runtime) -> None:
    ledger = runtime.ledger
    shenzhen = application(runtime, "440305")
    guangzhou = application(runtime, "440103")
    for case, visible in ((guangzhou, True), (shenzhen, False)):
        response = client.get(f"/cases/{case.id}", headers=purpose(GUANGZHOU_OFFICER))
        assert response.status_code == (200 if visible else 404), response.text
        history = client.get(f"/cases/{case.id}/history", headers=purpose(GUANGZHOU_OFFICER))
        assert history.status_code == (200 if visible else 404)
        household = client.get(f"/households/{case.household_id}", headers=GUANGZHOU_OFFICER)
        assert household.status_code == (200 if visible else 404)
    # Out of scope is indistinguishable from absent: the same problem as an unknown id.
    unknown = client.get(f"/cases/{uuid.uuid4()}", headers=purpose(GUANGZHOU_OFFICER))
    hidden = client.get(f"/cases/{shenzhen.id}", headers=purpose(GUANGZHOU_OFFICER))
    assert (unknown.json()["type"], unknown.json()["title"]) == (
        hidden.json()["type"],
        hidden.json()["title"],
    )
    # Commands on the hidden case change nothing.
    version = ledger.get_case(shenzhen.id).version
    refused(
        client.post(
            f"/cases/{shenzhen.id}/closure",
            headers=GUANGZHOU_OFFICER,
            json={"reason_code": "voluntary"},
        ),
        404,
        "not-found",
    )
    assert ledger.get_case(shenzhen.id).version == version
    # Filters wider than or beside the scope are refused, none means "my scope".
    refused(
        client.get("/caseload", params={"division": "4403"}, headers=GUANGZHOU_OFFICER),
        403,
        "not-permitted",
    )
    refused(
        client.get("/caseload", params={"division": "44"}, headers=GUANGZHOU_OFFICER),
        403,
        "not-permitted",
    )
    refused(
        client.get("/staffing/divisions/440305", headers=GUANGZHOU_OFFICER), 403, "not-permitted"
    )
    refused(
        client.get("/staffing", params={"division": "4403"}, headers=GUANGZHOU_OFFICER),
        403,
        "not-permitted",
    )
    # Writes naming a division elsewhere are refused before anything is recorded.
    head = resident_id(address="440305")
    refused(
        client.post(
            "/households",
            headers=GUANGZHOU_OFFICER,
            json={
                "registered_division": "440305001001",
                "residence_division": "440305001001",
                "members": [{"resident_id": head, "name": "Chen", "relation": "head"}],
            },
        ),
        403,
        "not-permitted",
    )
    assert runtime.services.cases.find_person(head) is None
    # An auditor of Guangzhou cannot read Shenzhen's records as they stood either.
    gz_auditor = purpose(actor(U, "4401", "gz-auditor", scope="4401"))
    refused(
        client.get(
            f"/audit/aggregates/{shenzhen.id}/as-of", params={"version": 1}, headers=gz_auditor
        ),
        404,
        "not-found",
    )
    ok(
        client.get(
            f"/audit/aggregates/{guangzhou.id}/as-of", params={"version": 1}, headers=gz_auditor
        )
    )


def test_a_county_approver_cannot_decide_next_door(client: TestClient, runtime: Runtime) -> None:
    ledger = runtime.ledger
    other_county = application(runtime, "440104")
    refused(
        client.post(
            f"/cases/{other_county.id}/approval",
            headers=GUANGZHOU_APPROVER,
            json={"monthly_amount": "900", "start_date": "2026-07-01", "reasons": "eligible"},
        ),
        404,
        "not-found",
    )
    assert ledger.get_case(other_county.id).version == 1


def contractor_with_contract(client: TestClient, area: str) -> tuple[str, str, str]:
    code, contractor, contract = contracted(
        client,
        actor(H, "440103", "officer-1"),
        name="Sunshine",
        work_items=["household_investigation", "care_and_nursing"],
        service_area=[area],
        start="2020-01-01",
        end="2099-12-31",
        awarded_on="2020-01-01",
    )
    return code, contractor["contractor_id"], contract["contract_id"]


def test_contractor_staff_see_only_their_contracts_areas_and_never_decide_or_pay(
    client: TestClient, runtime: Runtime
) -> None:
    ledger = runtime.ledger
    services = runtime.services
    code, contractor_id, contract_id = contractor_with_contract(client, "440103001")
    _, other_contractor, other_contract = contractor_with_contract(client, "440103002")
    worker = actor(K, code, "worker-1", scope="440103")
    inside = application(runtime, "440103")  # township 440103001
    home = household(runtime, "440103", township="002")  # the other contractor's township
    elsewhere = services.cases.receive_application(
        ReceiveApplication(
            household_id=home.id,
            applicant_id=next(iter(home.members.values())).resident_id,
            programme="dibao",
            window_division="440103002",
            provenance=BY_CLERK,
        )
    )
    ok(client.get(f"/cases/{inside.id}", headers=purpose(worker)))
    refused(client.get(f"/cases/{elsewhere.id}", headers=purpose(worker)), 404, "not-found")
    ok(client.get(f"/contractors/{contractor_id}", headers=worker))
    refused(client.get(f"/contractors/{other_contractor}", headers=worker), 404, "not-found")
    ok(client.get(f"/contracts/{contract_id}", headers=worker))
    refused(client.get(f"/contracts/{other_contract}", headers=worker), 404, "not-found")
    for path, body in (
        ("approval", {"monthly_amount": "900", "start_date": "2026-07-01", "reasons": "x"}),
        ("rejection", {"reasons": "x"}),
        ("payments", {"period": "2026-07", "amount": "900"}),
    ):
        refused(
            client.post(f"/cases/{inside.id}/{path}", headers=worker, json=body),
            403,
            "not-permitted",
        )
    refused(client.get("/caseload", headers=worker), 403, "not-permitted")
    approve(runtime, inside)
    assert ledger.get_case(inside.id).payments == {}


def test_full_id_numbers_only_for_roles_that_need_them_with_a_recorded_purpose(
    client: TestClient, runtime: Runtime
) -> None:
    case = application(runtime, "440103")
    number = runtime.ledger.get_case(case.id).applicant_id
    path = f"/households/{case.household_id}"
    masked = ok(client.get(path, headers=actor(C, "440103", "clerk-9")))
    assert number not in str(masked) and masked["members"][0]["resident_id"].startswith("4401**")
    refused(
        client.get(path, params={"reveal": "true"}, headers=actor(C, "440103", "clerk-9")),
        422,
        "purpose-required",
    )  # no stated purpose
    revealed = ok(
        client.get(path, params={"reveal": "true"}, headers=purpose(actor(C, "440103", "clerk-9")))
    )
    assert revealed["members"][0]["resident_id"] == number
    for role in (K, S, U, I):
        response = client.get(
            path, params={"reveal": "true"}, headers=purpose(actor(role, "440103", "x"))
        )
        assert response.status_code in (403, 404), (role, response.text)
        assert number not in response.text
    with psycopg.connect(runtime.database_url) as conn:
        reads = conn.execute(
            "SELECT actor_id, purpose FROM audit.reads WHERE case_id = %s", (case.household_id,)
        ).fetchall()
    assert reads == [("clerk-9", "scope test")]
