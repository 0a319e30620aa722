"""The division register over HTTP: a command naming a division the register lacks is a 422
naming the field; answers carry names beside codes; the staffing view lists the register's
villages."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from infra.runtime import Runtime
from projections.caseload import CaseloadProjection
from projections.staffing import StaffingProjection
from tests.e2e.http import actor, ok, refused
from tests.factories import resident_id
from tests.integration.helpers import events_written

pytestmark = pytest.mark.e2e

CLERK = actor("intake_clerk", "440103", "clerk-1")
UNKNOWN_VILLAGE = "440103001099"  # well formed, in no register


def household(client: TestClient, village: str, residence: str | None = None) -> dict:  # type: ignore[type-arg]
    return client.post(
        "/households",
        headers=CLERK,
        json={
            "registered_division": village,
            "residence_division": residence or village,
            "members": [{"resident_id": resident_id(), "name": "陈华", "relation": "head"}],
        },
    )  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("registered", "residence", "field"),
    [
        (UNKNOWN_VILLAGE, "440103001001", "registered_division"),
        ("440103001001", UNKNOWN_VILLAGE, "residence_division"),
    ],
)
def test_a_household_in_an_unknown_village_is_a_422_naming_the_field(
    client: TestClient, runtime: Runtime, registered: str, residence: str, field: str
) -> None:
    problem = refused(household(client, registered, residence), 422, "unknown-division")
    assert problem["field"] == field
    assert UNKNOWN_VILLAGE in problem["detail"]
    assert events_written(runtime.database_url) == 0


def test_an_application_at_an_unknown_window_is_a_422(client: TestClient) -> None:
    home = ok(household(client, "440103001001"), 201)
    number = home["members"][0]["resident_id"]
    del number  # masked in the answer: apply with the head's own number below
    head = resident_id()
    home = ok(
        client.post(
            "/households",
            headers=CLERK,
            json={
                "registered_division": "440103001001",
                "residence_division": "440103001001",
                "members": [{"resident_id": head, "name": "陈华", "relation": "head"}],
            },
        ),
        201,
    )
    answer = client.post(
        "/cases",
        headers=CLERK,
        json={
            "household_id": home["household_id"],
            "applicant_id": head,
            "programme": "dibao",
            "window_division": "440103099",
        },
    )
    assert refused(answer, 422, "unknown-division")["field"] == "window_division"


def test_answers_carry_names_beside_codes(client: TestClient, runtime: Runtime) -> None:
    head = resident_id()
    home = ok(
        client.post(
            "/households",
            headers=CLERK,
            json={
                "registered_division": "440103001001",
                "residence_division": "440103001002",
                "members": [{"resident_id": head, "name": "陈华", "relation": "head"}],
            },
        ),
        201,
    )
    assert home["registered_division_name"] == "测试社区440103001001"
    assert home["residence_division_name"] == "测试社区440103001002"
    assert home["county_name"] == "测试区440103"
    case = ok(
        client.post(
            "/cases",
            headers=CLERK,
            json={
                "household_id": home["household_id"],
                "applicant_id": head,
                "programme": "dibao",
                "window_division": "440103001",
            },
        ),
        201,
    )
    assert case["window_division_name"] == "测试街道440103001"
    runtime.projection_runner(CaseloadProjection).catch_up()
    runtime.projection_runner(StaffingProjection).catch_up()
    caseload = ok(client.get("/caseload", params={"division": "440103", "level": "township"}))
    assert {(r["division"], r["name"]) for r in caseload["items"]} == {
        ("440103001", "测试街道440103001")
    }
    villages = ok(
        client.get(
            "/staffing/villages", params={"division": "440103001", "status": "under_staffed"}
        )
    )["items"]
    # every village of the township in the register, though only one has a household
    assert [v["division"] for v in villages] == [
        f"440103001{n:03d}" for n in (1, 2, 3, 4, 5, 101, 201, 299)
    ]
    assert villages[0]["name"] == "测试社区440103001001"
    assert villages[0]["households"] == 0  # applied, not yet a relief household
