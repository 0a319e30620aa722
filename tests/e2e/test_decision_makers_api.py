"""Every decision-maker is a staff record, over HTTP: a sign-in (the token's subject) is linked
to a staff record by a staff manager (POST /staff/{id}/sign-ins), the API records the record's
id as the actor of what that sign-in does (the subject kept beside it), a caller linked to no
active staff record of the county may not investigate, recommend or decide, and the
conflict-of-interest rule sees an approver who lives in the applicant's household."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.runtime import Runtime
from projections.red_flags.projection import RedFlagsProjection
from tests.e2e.http import actor, apply_at_window, count_hand_offs, hired, ok, refused
from tests.factories import resident_id

pytestmark = pytest.mark.e2e

CLERK = actor("intake_clerk", "440103", "clerk-1")
MANAGER = actor("handling_staff", "440103", "hr-zhou")
OFFICER = actor("handling_staff", "440103", "officer-li")
SUPERVISOR = actor("supervisor", "4401", "supervisor-gz")


def hire(client: TestClient, kind: str, division: str, **extra: Any) -> str:
    staff = ok(
        client.post(
            "/staff",
            headers=MANAGER,
            json={"name": "Wang Fang", "kind": kind, "government_unit": "440103", **extra},
        ),
        201,
    )
    ok(
        client.post(
            f"/staff/{staff['staff_id']}/assignments", headers=MANAGER, json={"division": division}
        )
    )
    return str(staff["staff_id"])


def link(client: TestClient, staff_id: str, subject: str) -> Any:
    return client.post(f"/staff/{staff_id}/sign-ins", headers=MANAGER, json={"subject": subject})


def recommended_case(client: TestClient, members: list[dict[str, str]] | None = None) -> str:
    head = resident_id()
    people = [{"resident_id": head, "name": "Chen Hua", "relation": "head"}, *(members or [])]
    home = ok(
        client.post(
            "/households",
            headers=CLERK,
            json={
                "registered_division": "440103001001",
                "residence_division": "440103001001",
                "members": people,
            },
        ),
        201,
    )
    case_id: str = apply_at_window(client, CLERK, home["household_id"], head)["case_id"]
    hired(client, OFFICER)
    ok(
        client.post(
            f"/cases/{case_id}/investigation",
            headers=OFFICER,
            json={
                "income_items": [{"source": "casual work", "monthly_amount": "500"}],
                "assets": [],
                "household_size": len(people),
                "home_visit": {
                    "visited_at": "2026-01-04T10:00:00+08:00",
                    "place": "440103001001",
                    "visitor_id": "officer-li",
                },
            },
        )
    )
    ok(
        client.post(
            f"/cases/{case_id}/recommendation",
            headers=OFFICER,
            json={"recommendation": "approve", "monthly_amount": "960", "reasons": "below"},
        )
    )
    return case_id


def approve(client: TestClient, case_id: str, headers: dict[str, str]) -> Any:
    return client.post(
        f"/cases/{case_id}/approval",
        headers=headers,
        json={"monthly_amount": "960", "start_date": "2026-02-01", "reasons": "below the line"},
    )


def test_an_approver_with_no_staff_record_is_refused_and_a_linked_one_decides_as_the_record(
    client: TestClient,
) -> None:
    case_id = recommended_case(client)
    approver = actor("approver", "440103", "wang.fang@mz")
    unmapped = refused(approve(client, case_id, approver), 403, "not-a-staff-member")
    assert unmapped["field"] == "actor.id" and "wang.fang@mz" in unmapped["detail"]
    rejection = client.post(
        f"/cases/{case_id}/rejection", headers=approver, json={"reasons": "above the line"}
    )
    refused(rejection, 403, "not-a-staff-member")

    staff_id = hire(client, "approver", "440103")
    linked = ok(link(client, staff_id, "wang.fang@mz"))
    assert [s["subject"] for s in linked["sign_ins"]] == ["wang.fang@mz"]
    assert linked["kind"] == "approver"

    decided = ok(approve(client, case_id, approver))
    assert decided["status"] == "approved"
    history = ok(
        client.get(f"/cases/{case_id}/history", headers={**OFFICER, "X-Purpose": "audit"})
    )["items"]
    approved = next(e for e in history if e["type"] == "ReliefCase.Approved")
    assert approved["actor"] == {
        "id": staff_id,
        "role": "approver",
        "organisation": "440103",
        "subject": "wang.fang@mz",
    }
    staff_history = ok(client.get(f"/staff/{staff_id}/history", headers=MANAGER))["items"]
    assert "StaffMember.SignInLinked" in [e["type"] for e in staff_history]


def test_investigators_and_approvers_are_staff_of_the_county_and_of_their_kind(
    client: TestClient,
) -> None:
    case_id = recommended_case(client)
    # An approver's sign-in linked to a handling staff record: a record of another kind.
    officer_record = hire(client, "handling_staff", "440103001")
    ok(link(client, officer_record, "officer-as-approver"))
    wrong_kind = refused(
        approve(client, case_id, actor("approver", "440103", "officer-as-approver")),
        403,
        "not-a-staff-member",
    )
    assert "handling_staff" in wrong_kind["detail"]
    # Another county's approver record, signed in as an approver of this county.
    elsewhere = ok(
        client.post(
            "/staff",
            headers=actor("handling_staff", "440104", "hr-tianhe"),
            json={"name": "Lin", "kind": "approver", "government_unit": "440104"},
        ),
        201,
    )
    ok(
        client.post(
            f"/staff/{elsewhere['staff_id']}/assignments",
            headers=actor("handling_staff", "440104", "hr-tianhe"),
            json={"division": "440104"},
        )
    )
    ok(link(client, elsewhere["staff_id"], "lin@tianhe"))
    refused(
        approve(client, case_id, actor("approver", "440103", "lin@tianhe")),
        403,
        "not-a-staff-member",
    )
    # An investigator with no staff record may not investigate either.
    other = recommended_case(client)
    stranger = actor("handling_staff", "440103", "temp-worker")
    refused(
        client.post(
            f"/cases/{other}/recommendation",
            headers=stranger,
            json={"recommendation": "reject", "reasons": "above"},
        ),
        403,
        "not-a-staff-member",
    )


def test_a_sign_in_belongs_to_one_active_record_and_links_are_refused_naming_the_field(
    client: TestClient,
) -> None:
    first = hire(client, "approver", "440103")
    second = hire(client, "approver", "440103")
    ok(link(client, first, "wang.fang@mz"))
    taken = refused(link(client, second, "wang.fang@mz"), 409, "duplicate")
    assert taken["field"] == "subject" and first in taken["detail"]
    empty = client.post(f"/staff/{second}/sign-ins", headers=MANAGER, json={"subject": ""})
    assert empty.status_code == 422 and empty.json()["field"] == "subject"
    unknown = client.post(
        f"/staff/{second}/sign-ins", headers=MANAGER, json={"subject": "x", "role": "approver"}
    )
    assert unknown.status_code == 422
    refused(
        client.post(
            f"/staff/{second}/sign-ins",
            headers=actor("contractor_staff", "52440103MA0000000X", "x"),
            json={"subject": "y"},
        ),
        403,
        "not-permitted",
    )

    # Unlinked, the sign-in is free: the approver is refused until it is linked again.
    case_id = recommended_case(client)
    ok(
        client.post(
            f"/staff/{first}/sign-ins/removal", headers=MANAGER, json={"subject": "wang.fang@mz"}
        )
    )
    refused(
        approve(client, case_id, actor("approver", "440103", "wang.fang@mz")),
        403,
        "not-a-staff-member",
    )
    ok(link(client, second, "wang.fang@mz"))
    # The first record is removed: its old sign-in no longer blocks; the second decides.
    ok(
        client.post(
            f"/staff/{first}/removal",
            headers=MANAGER,
            json={"on": "2026-01-05", "reason": "retired"},
        )
    )
    decided = ok(approve(client, case_id, actor("approver", "440103", "wang.fang@mz")))
    assert decided["decision"]["by"] == second


def test_an_approver_living_in_the_applicants_household_is_in_conflict_by_sign_in(
    client: TestClient, runtime: Runtime
) -> None:
    spouse = resident_id()
    case_id = recommended_case(
        client, [{"resident_id": spouse, "name": "Wang Fang", "relation": "spouse"}]
    )
    staff_id = hire(client, "approver", "440103", resident_id=spouse)
    ok(link(client, staff_id, "wang.fang@mz"))
    ok(approve(client, case_id, actor("approver", "440103", "wang.fang@mz")))
    runtime.projection_runner(RedFlagsProjection).catch_up()

    found = ok(client.get("/alerts", params={"rule": "conflict_of_interest"}, headers=SUPERVISOR))[
        "items"
    ]
    assert [(a["subject_kind"], a["subject_id"]) for a in found] == [("staff", staff_id)]
    assert spouse not in str(found)


def test_a_command_checks_access_and_finds_its_actor_on_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command's case and the caller's sign-in are read on the event loop, in one statement
    (``ReliefLedger.load_on_loop``), where its access is checked and its actor found: the
    command hands off to a worker thread once, to record its event; a caller outside the
    case's scope is refused without any."""
    case_id = recommended_case(client)
    staff_id = hire(client, "approver", "440103")
    ok(link(client, staff_id, "wang.fang@mz"))
    hand_offs = count_hand_offs(monkeypatch)
    elsewhere = actor("approver", "440104", "approver@tianhe", scope="440104")
    refused(approve(client, case_id, elsewhere), 404, "not-found")
    assert hand_offs == []
    decided = ok(approve(client, case_id, actor("approver", "440103", "wang.fang@mz")))
    assert decided["status"] == "approved" and len(hand_offs) == 1
    monkeypatch.undo()
    history = ok(
        client.get(f"/cases/{case_id}/history", headers={**OFFICER, "X-Purpose": "audit"})
    )["items"]
    approved = next(e for e in history if e["type"] == "ReliefCase.Approved")
    assert approved["actor"]["id"] == staff_id
