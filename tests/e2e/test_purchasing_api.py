"""The purchase of relief services over HTTP, from registration to a ban and after it."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from domain.clock import SetClock
from infra.runtime import Runtime
from infra.settings import Settings
from tests.e2e.http import actor, ok, refused
from tests.factories import credit_code

pytestmark = pytest.mark.e2e

TZ = dt.timezone(dt.timedelta(hours=8))


OFFICER = actor("handling_staff", "440103", "officer-9")
SUPERVISOR = actor("supervisor", "4401", "supervisor-2")


@pytest.fixture()
def clock() -> SetClock:
    """The business clock of these stories, set to each step's day."""
    return SetClock(dt.datetime(2026, 1, 10, 9, 0, tzinfo=TZ))


@pytest.fixture()
def runtime(settings: Settings, clock: SetClock) -> Iterator[Runtime]:
    """The runtime (and so the client) on the stories' clock."""
    opened = Runtime.open(settings, clock=clock)
    yield opened
    opened.close()


AWARD = {
    "purchaser": "440103",
    "work_items": ["household_investigation", "psychological_counselling"],
    "service_area": ["440103001", "440103002"],
    "start": "2026-01-01",
    "end": "2026-12-31",
    "value": "100000.00",
    "funding_source": "special_relief_funds",
}


def test_register_award_amend_bill_evaluate_sanction_ban_and_after(
    client: TestClient, runtime: Runtime, clock: SetClock
) -> None:
    code = credit_code("52")
    contractor = ok(
        client.post(
            "/contractors",
            headers=OFFICER,
            json={
                "name": "Sunshine Social Work Centre",
                "contractor_type": "social_organisation",
                "credit_code": code,
                "reason": "tender 2026-01",
            },
        ),
        201,
    )
    cid = contractor["contractor_id"]
    refused(
        client.post(
            "/contractors",
            headers=OFFICER,
            json={
                "name": "Same again",
                "contractor_type": "social_organisation",
                "credit_code": code,
            },
        ),
        409,
        "duplicate",
    )
    refused(
        client.post(
            "/contractors",
            headers=OFFICER,
            json={
                "name": "Bureau",
                "contractor_type": "public_institution",
                "credit_code": credit_code("12"),
                "institution_class": "public_welfare_i",
            },
        ),
        422,
        "contractor-not-eligible",
    )

    refused(
        client.post(
            "/contracts",
            headers=OFFICER,
            json={**AWARD, "contractor_id": cid, "work_items": ["benefit_payment"]},
        ),
        422,
        "not-purchasable",
    )
    refused(
        client.post(
            "/contracts",
            headers=OFFICER,
            json={**AWARD, "contractor_id": cid, "purchaser": "440103001"},
        ),
        422,
        "invalid-purchaser",
    )
    contract = ok(
        client.post(
            "/contracts",
            headers=OFFICER,
            json={**AWARD, "contractor_id": cid, "reason": "won open tender"},
        ),
        201,
    )
    kid = contract["contract_id"]
    assert contract["status"] == "in_force"

    amended = ok(
        client.post(
            f"/contracts/{kid}/amendments",
            headers={**OFFICER, "If-Match": '"1"'},
            json={"value": "120000.00", "reason": "more households"},
        )
    )
    assert amended["terms"]["value"] == "120000.00" and len(amended["terms_history"]) == 2

    for number, amount in (("INV-1", "60000.00"), ("INV-2", "60000.00")):
        ok(
            client.post(
                f"/contracts/{kid}/invoices",
                headers=OFFICER,
                json={
                    "invoice_number": number,
                    "period_start": "2026-01-01",
                    "period_end": "2026-01-09",
                    "amount": amount,
                },
            )
        )
    refused(
        client.post(
            f"/contracts/{kid}/invoices",
            headers=OFFICER,
            json={
                "invoice_number": "INV-3",
                "period_start": "2026-01-01",
                "period_end": "2026-01-09",
                "amount": "0.01",
            },
        ),
        422,
        "billing-above-value",
    )

    worker = actor("contractor_staff", code, "worker-3")
    refused(
        client.post(
            f"/contracts/{kid}/evaluations",
            headers=worker,
            json={"period_start": "2026-01-01", "period_end": "2026-01-09", "score": 100},
        ),
        403,
        "not-permitted",
    )
    ok(
        client.post(
            f"/contracts/{kid}/evaluations",
            headers=OFFICER,
            json={"period_start": "2026-01-01", "period_end": "2026-01-09", "score": "52"},
        )
    )

    covered = ok(
        client.get(
            f"/contracts/{kid}/coverage",
            params={
                "work_item": "household_investigation",
                "division": "440103001005",
                "at": "2026-03-01T10:00:00+08:00",
            },
        )
    )
    assert covered == {"covered": True, "reason": None, "at": "2026-03-01T10:00:00+08:00"}
    outside = ok(
        client.get(
            f"/contracts/{kid}/coverage",
            params={
                "work_item": "care_and_nursing",
                "division": "440103001005",
                "at": "2026-03-01T10:00:00+08:00",
            },
        )
    )
    assert outside["covered"] is False and "care_and_nursing" in outside["reason"]

    history = ok(client.get(f"/contracts/{kid}/history"))["items"]
    ok(
        client.post(
            f"/contracts/{kid}/violations",
            headers=SUPERVISOR,
            json={
                "kind": "falsification",
                "severity": "grave",
                "description": "invoiced home visits that never happened",
                "evidence": [
                    {"position": history[-1]["position"]},
                    {"aggregate_id": kid, "version": 3},
                ],
            },
        )
    )
    ok(
        client.post(
            f"/contracts/{kid}/penalties",
            headers=SUPERVISOR,
            json={"violation": 1, "kind": "fine", "basis": "contract art. 12", "amount": "5000"},
        )
    )
    clock.at(dt.date(2026, 4, 1), 9)
    terminated = ok(
        client.post(
            f"/contracts/{kid}/termination",
            headers=OFFICER,
            json={
                "effective_at": "2026-04-01T00:00:00+08:00",
                "basis": "contract",
                "reason": "falsified records, serious with bad social effect",
            },
        )
    )
    assert terminated["status"] == "terminated"
    after = ok(
        client.get(
            f"/contracts/{kid}/coverage",
            params={
                "work_item": "household_investigation",
                "division": "440103001005",
                "at": "2026-04-02T10:00:00+08:00",
            },
        )
    )
    assert after["covered"] is False and "terminated" in after["reason"]

    banned = ok(
        client.post(
            f"/contractors/{cid}/bans",
            headers=SUPERVISOR,
            json={
                "start": "2026-04-01",
                "end": "2027-03-31",
                "reason": "falsified records",
                "deciding_unit": "440103",
            },
        )
    )
    assert banned["status"] == "banned"
    clock.at(dt.date(2026, 4, 10), 9)
    refused(
        client.post(
            "/contracts",
            headers=OFFICER,
            json={**AWARD, "contractor_id": cid, "start": "2026-05-01"},
        ),
        409,
        "contractor-banned",
    )
    clock.at(dt.date(2027, 3, 31), 9)
    refused(
        client.post(
            "/contracts",
            headers=OFFICER,
            json={**AWARD, "contractor_id": cid, "start": "2027-04-01", "end": "2027-12-31"},
        ),
        409,
        "contractor-banned",
    )
    clock.at(dt.date(2027, 4, 1), 9)
    ok(
        client.post(
            "/contracts",
            headers=OFFICER,
            json={**AWARD, "contractor_id": cid, "start": "2027-04-01", "end": "2027-12-31"},
        ),
        201,
    )

    steps = ok(client.get(f"/contracts/{kid}/history"))["items"]
    assert [s["type"] for s in steps] == [
        "Contract.Awarded",
        "Contract.Amended",
        "Contract.Invoiced",
        "Contract.Invoiced",
        "Contract.Evaluated",
        "Contract.ViolationRecorded",
        "Contract.PenaltyImposed",
        "Contract.Terminated",
    ]
    assert steps[0]["actor"] == {
        "id": "officer-9",
        "role": "handling_staff",
        "organisation": "440103",
    }
    assert steps[0]["reason"] == "won open tender"
    assert steps[1]["reason"] == "more households"
    assert all(s["position"] < t["position"] for s, t in itertools.pairwise(steps))
    contractor_steps = ok(client.get(f"/contractors/{cid}/history"))["items"]
    assert [s["type"] for s in contractor_steps] == [
        "Contractor.Registered",
        "Contractor.WorkTakenOn",
        "Contractor.WorkTakenOn",
        "Contractor.Banned",
        "Contractor.WorkTakenOn",
    ]


def test_staff_of_a_terminated_contract_stop_counting(
    client: TestClient, runtime: Runtime, clock: SetClock
) -> None:
    code = credit_code("91")
    cid = ok(
        client.post(
            "/contractors",
            headers=OFFICER,
            json={"name": "CareCo", "contractor_type": "enterprise", "credit_code": code},
        ),
        201,
    )["contractor_id"]
    kid = ok(client.post("/contracts", headers=OFFICER, json={**AWARD, "contractor_id": cid}), 201)[
        "contract_id"
    ]
    staff = ok(
        client.post(
            "/staff",
            headers=OFFICER,
            json={"name": "Wang Fang", "kind": "village_coordinator", "contract_id": kid},
        ),
        201,
    )
    sid = staff["staff_id"]
    refused(
        client.post(f"/staff/{sid}/assignments", headers=OFFICER, json={"division": "440103001"}),
        422,
        "invalid-value",
    )
    refused(
        client.post(
            f"/staff/{sid}/assignments", headers=OFFICER, json={"division": "440103009001"}
        ),
        422,
        "invalid-value",
    )
    assigned = ok(
        client.post(f"/staff/{sid}/assignments", headers=OFFICER, json={"division": "440103001001"})
    )
    assert assigned["active"] is True
    ok(
        client.post(
            f"/staff/{sid}/trainings",
            headers=OFFICER,
            json={"course": "means testing", "completed_on": "2026-01-09", "hours": 8},
        )
    )
    ok(
        client.post(
            f"/contracts/{kid}/termination",
            headers=OFFICER,
            json={"effective_at": "2026-01-10T08:00:00+08:00", "basis": "law", "reason": "fraud"},
        )
    )
    assert ok(client.get(f"/staff/{sid}"))["active"] is False
    clock.at(dt.date(2026, 1, 11), 9)
    refused(
        client.post(
            "/staff",
            headers=OFFICER,
            json={"name": "Zhao", "kind": "handling_staff", "contract_id": kid},
        ),
        409,
        "invalid-state",
    )
    gov = ok(
        client.post(
            "/staff",
            headers=OFFICER,
            json={"name": "Li Ming", "kind": "handling_staff", "government_unit": "440103001"},
        ),
        201,
    )
    ok(
        client.post(
            f"/staff/{gov['staff_id']}/assignments", headers=OFFICER, json={"division": "440103001"}
        )
    )
    removed = ok(
        client.post(
            f"/staff/{gov['staff_id']}/removal",
            headers=OFFICER,
            json={"on": "2026-01-11", "reason": "weakest performer"},
        )
    )
    assert removed["active"] is False
    history = ok(client.get(f"/staff/{gov['staff_id']}/history"))["items"]
    assert [h["type"] for h in history] == [
        "StaffMember.Hired",
        "StaffMember.Assigned",
        "StaffMember.Removed",
    ]
