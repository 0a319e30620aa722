"""The whole life of a relief case over HTTP, as the issue tells it."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.runtime import Runtime
from tests.e2e.http import (
    actor,
    apply_at_window,
    contracted,
    hired,
    ok,
    reader,
    refused,
    staff_id_of,
    subject,
)
from tests.factories import resident_id, token

pytestmark = pytest.mark.e2e
TZ = dt.timezone(dt.timedelta(hours=8))


CLERK_ELSEWHERE = actor("intake_clerk", "440305", "clerk-shenzhen", "walk-in-778")
OFFICER = actor("handling_staff", "440103", "officer-li")
APPROVER = actor("approver", "440103", "approver-wang")


@pytest.fixture()
def client(runtime: Runtime) -> Iterator[TestClient]:
    now = dt.datetime(2026, 6, 15, 9, 0, tzinfo=TZ)
    runtime.ledger.now = lambda: now  # type: ignore[method-assign]
    default = {"Authorization": f"Bearer {token('auditor', '44', 'auditor-default')}"}
    with TestClient(
        create_app(runtime), raise_server_exceptions=False, headers=default
    ) as test_client:
        hired(test_client, APPROVER)  # the county's approver is a staff record, linked by subject
        yield test_client


def purchased_investigators(client: TestClient) -> tuple[dict[str, str], str, str]:
    """A contractor with a contract for investigation and counselling in township 440103001."""
    code, _, contract = contracted(
        client,
        OFFICER,
        name="Harmony Social Work",
        work_items=["household_investigation", "psychological_counselling"],
        service_area=["440103001"],
        start="2026-01-01",
        end="2026-12-31",
        value="200000",
    )
    staff = ok(
        client.post(
            "/staff",
            headers=OFFICER,
            json={
                "name": "Zhou Min",
                "kind": "handling_staff",
                "contract_id": contract["contract_id"],
            },
        ),
        201,
    )
    ok(
        client.post(
            f"/staff/{staff['staff_id']}/assignments",
            headers=OFFICER,
            json={"division": "440103001"},
        )
    )
    worker = actor("contractor_staff", code, str(staff["staff_id"]))
    return worker, contract["contract_id"], staff["staff_id"]


def household(client: TestClient, head: str) -> dict[str, Any]:
    return ok(
        client.post(
            "/households",
            headers=OFFICER,
            json={
                "registered_division": "440103001001",
                "residence_division": "440305001001",
                "members": [
                    {"resident_id": head, "name": "Huang Lan", "relation": "head"},
                    {
                        "resident_id": resident_id(born="20120304"),
                        "name": "Huang Xiao",
                        "relation": "child",
                    },
                ],
            },
        ),
        201,
    )


def investigate(client: TestClient, case_id: str, worker: dict[str, str], contract_id: str) -> None:
    ok(
        client.post(
            f"/cases/{case_id}/investigation",
            headers=worker,
            json={
                "income_items": [{"source": "casual work", "monthly_amount": "500"}],
                "assets": [{"kind": "savings", "value": "1200"}],
                "household_size": 2,
                "home_visit": {
                    "visited_at": "2026-06-10T10:00:00+08:00",
                    "place": "440103001001",
                    "visitor_id": subject(worker),
                },
                "contract_id": contract_id,
                "reason": "home visit with the village coordinator",
            },
        )
    )
    ok(
        client.post(
            f"/cases/{case_id}/recommendation",
            headers=worker,
            json={
                "recommendation": "approve",
                "monthly_amount": "960",
                "reasons": "income 250 per person, below the 1,100 line",
                "contract_id": contract_id,
            },
        )
    )


def investigated_case(client: TestClient, worker: dict[str, str], contract_id: str) -> str:
    """A local dibao application, investigated and recommended by the contractor's worker."""
    head = resident_id()
    home = household(client, head)
    case_id: str = apply_at_window(client, OFFICER, home["household_id"], head)["case_id"]
    investigate(client, case_id, worker, contract_id)
    return case_id


def test_cross_region_application_to_closure_after_death(client: TestClient) -> None:
    worker, contract_id, staff_id = purchased_investigators(client)
    head = resident_id()
    home = household(client, head)

    case = ok(
        client.post(
            "/cases",
            headers=CLERK_ELSEWHERE,
            json={
                "household_id": home["household_id"],
                "applicant_id": head,
                "programme": "dibao",
                "window_division": "440305001",
                "reason": "lives and works in Shenzhen",
            },
        ),
        201,
    )
    case_id = case["case_id"]
    assert case["cross_region"] is True and case["county"] == "440103"
    assert case["received_county"] == "440305"

    ok(
        client.post(
            f"/cases/{case_id}/assignment",
            headers=OFFICER,
            json={"staff_id": staff_id, "reason": "contracted investigators"},
        )
    )
    refused(
        client.post(
            f"/cases/{case_id}/approval",
            headers=APPROVER,
            json={"monthly_amount": "960", "start_date": "2026-03-01", "reasons": "too early"},
        ),
        409,
        "invalid-state",
    )
    investigate(client, case_id, worker, contract_id)
    refused(
        client.post(
            f"/cases/{case_id}/approval",
            headers=worker,
            json={"monthly_amount": "960", "start_date": "2026-03-01", "reasons": "I decide"},
        ),
        403,
        "not-permitted",
    )
    approver_who_visited = actor("approver", "440103", subject(worker))
    refused(
        client.post(
            f"/cases/{case_id}/approval",
            headers=approver_who_visited,
            json={"monthly_amount": "960", "start_date": "2026-03-01", "reasons": "r"},
        ),
        422,
        "separation-of-duties",
    )
    approved = ok(
        client.post(
            f"/cases/{case_id}/approval",
            headers=APPROVER,
            json={
                "monthly_amount": "960",
                "start_date": "2026-03-01",
                "reasons": "means test below the dibao line",
            },
        )
    )
    assert approved["status"] == "approved"

    refused(
        client.post(
            f"/cases/{case_id}/payments",
            headers=worker,
            json={"period": "2026-03", "amount": "960"},
        ),
        403,
        "not-permitted",
    )
    for period in ("2026-03", "2026-04", "2026-05"):
        ok(
            client.post(
                f"/cases/{case_id}/payments",
                headers=OFFICER,
                json={"period": period, "amount": "960"},
            )
        )

    ok(
        client.post(
            f"/cases/{case_id}/services",
            headers=worker,
            json={
                "work_item": "psychological_counselling",
                "contract_id": contract_id,
                "start": "2026-06-12T14:00:00+08:00",
                "end": "2026-06-12T15:00:00+08:00",
                "place": "440103001001",
            },
        )
    )
    refused(
        client.post(
            f"/cases/{case_id}/services",
            headers=worker,
            json={
                "work_item": "care_and_nursing",
                "contract_id": contract_id,
                "start": "2026-06-12T16:00:00+08:00",
                "end": "2026-06-12T17:00:00+08:00",
                "place": "440103001001",
            },
        ),
        422,
        "outside-contract",
    )

    person = ok(
        client.post(
            "/deaths",
            headers=OFFICER,
            json={"resident_id": head, "date_of_death": "2026-06-13", "reason": "hospital notice"},
        )
    )
    assert person["died_on"] == "2026-06-13" and head not in str(person)
    refused(
        client.post(
            "/deaths", headers=OFFICER, json={"resident_id": head, "date_of_death": "2026-06-13"}
        ),
        409,
        "invalid-state",
    )
    refused(
        client.post(
            f"/cases/{case_id}/payments",
            headers=OFFICER,
            json={"period": "2026-07", "amount": "960"},
        ),
        422,
        "beneficiary-deceased",
    )
    closed = ok(
        client.post(
            f"/cases/{case_id}/closure",
            headers=APPROVER,
            json={"reason_code": "death", "reason": "beneficiary died on 2026-06-13"},
        )
    )
    assert closed["status"] == "closed" and closed["died_on"] == "2026-06-13"
    assert [p["period"] for p in closed["payments"]] == ["2026-03", "2026-04", "2026-05"]

    history = ok(client.get(f"/cases/{case_id}/history", headers=reader()))["items"]
    steps = [(h["type"].split(".")[1], h["actor"]["id"]) for h in history]
    assert steps == [
        ("ApplicationReceived", "clerk-shenzhen"),
        ("Transferred", "clerk-shenzhen"),
        ("Assigned", "officer-li"),
        ("Investigated", subject(worker)),
        ("Recommended", subject(worker)),
        ("Approved", staff_id_of(client, APPROVER)),
        ("PaymentRecorded", "officer-li"),
        ("PaymentRecorded", "officer-li"),
        ("PaymentRecorded", "officer-li"),
        ("ServiceRecorded", subject(worker)),
        ("BeneficiaryDied", "officer-li"),
        ("Closed", staff_id_of(client, APPROVER)),
    ]
    assert history[0]["reason"] == "lives and works in Shenzhen"
    assert history[0]["correlation_id"] == "walk-in-778"
    assert history[1]["payload"] == {"from_county": "440305", "to_county": "440103"}
    assert history[3]["payload"]["contract_id"] == contract_id
    assert history[3]["reason"] == "home visit with the village coordinator"
    assert history[5]["reason"] == "means test below the dibao line"
    assert history[5]["actor"]["subject"] == "approver-wang"  # who signed in, for audits
    assert history[-1]["reason"] == "beneficiary died on 2026-06-13"
    assert head not in str(history)

    household_after = ok(client.get(f"/households/{home['household_id']}"))
    assert [m["status"] for m in household_after["members"]] == ["deceased", "present"]


def test_a_correction_is_a_new_event_and_the_original_stays(client: TestClient) -> None:
    worker, contract_id, _staff = purchased_investigators(client)
    case_id = investigated_case(client, worker, contract_id)
    ok(
        client.post(
            f"/cases/{case_id}/approval",
            headers=APPROVER,
            json={"monthly_amount": "960", "start_date": "2026-03-01", "reasons": "r"},
        )
    )
    paid = ok(
        client.post(
            f"/cases/{case_id}/payments",
            headers=OFFICER,
            json={"period": "2026-03", "amount": "960"},
        )
    )
    corrected = ok(
        client.post(
            f"/cases/{case_id}/corrections",
            headers=OFFICER,
            json={
                "corrects_version": paid["version"],
                "changes": {"amount": "480"},
                "reason": "half month: approved from mid-March",
            },
        )
    )
    assert corrected["payments"][0]["amount"] == "480.00"
    history = ok(client.get(f"/cases/{case_id}/history", headers=reader()))["items"]
    original = next(h for h in history if h["version"] == paid["version"])
    assert original["payload"]["amount"] == "960.00"  # still there, unaltered
    assert history[-1]["payload"]["corrects_version"] == paid["version"]
    assert history[-1]["reason"] == "half month: approved from mid-March"


def test_two_approvals_racing_exactly_one_wins(client: TestClient) -> None:
    worker, contract_id, _ = purchased_investigators(client)
    for _ in range(4):
        case_id = investigated_case(client, worker, contract_id)
        barrier = threading.Barrier(2)
        results: list[int] = []

        def approve(
            who: str,
            case_id: str = case_id,
            barrier: threading.Barrier = barrier,
            results: list[int] = results,
        ) -> None:
            barrier.wait()
            results.append(
                client.post(
                    f"/cases/{case_id}/approval",
                    headers=actor("approver", "440103", who),
                    json={"monthly_amount": "960", "start_date": "2026-03-01", "reasons": "r"},
                ).status_code
            )

        for who in ("a1", "a2"):
            hired(client, actor("approver", "440103", who))
        threads = [threading.Thread(target=approve, args=(who,)) for who in ("a1", "a2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [200, 409]
        history = ok(client.get(f"/cases/{case_id}/history", headers=reader()))["items"]
        assert sum(h["type"] == "ReliefCase.Approved" for h in history) == 1
