"""Staff records name their person over HTTP: the resident ID is taken at hire, kept only as its
blind index (never shown, never in the history), and a declaration must be the same person."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.e2e.http import actor, ok, refused
from tests.factories import resident_id

pytestmark = pytest.mark.e2e

OFFICER = actor("handling_staff", "440103", "officer-9", scope="440103")


def test_a_staff_record_is_hired_as_a_person_and_declares_as_the_same_one(
    client: TestClient,
) -> None:
    own = resident_id()
    staff = ok(
        client.post(
            "/staff",
            headers=OFFICER,
            json={
                "name": "Deng Li",
                "kind": "handling_staff",
                "government_unit": "440103",
                "resident_id": own,
            },
        ),
        201,
    )
    sid = staff["staff_id"]
    assert own not in str(staff)
    history = ok(client.get(f"/staff/{sid}/history", headers=OFFICER))["items"]
    assert own not in str(history) and own[:6] + "*" not in str(history)
    hired = next(e for e in history if e["type"] == "StaffMember.Hired")
    assert hired["payload"]["person_id"]  # the blind index, not the number

    # The declaration names the same person; another ID is refused naming the field.
    ok(client.post(f"/staff/{sid}/interests", headers=OFFICER, json={"resident_id": own}))
    other = refused(
        client.post(
            f"/staff/{sid}/interests", headers=OFFICER, json={"resident_id": resident_id()}
        ),
        422,
        "invalid-value",
    )
    assert other["field"] == "resident_id"

    # A malformed ID at hire is refused naming the field, and nothing is hired.
    bad = refused(
        client.post(
            "/staff",
            headers=OFFICER,
            json={
                "name": "Deng Li",
                "kind": "handling_staff",
                "government_unit": "440103",
                "resident_id": "440103198503071235",
            },
        ),
        422,
        "invalid-identifier",
    )
    assert bad["field"] == "resident_id"
