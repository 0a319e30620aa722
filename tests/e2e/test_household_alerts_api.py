"""The household rule over HTTP: a member moves out (POST /households/{id}/move-outs) after the
means test, the case is paid on without a review, and supervision in scope sees the alert
naming where the person went; outside the scope it is hidden, and other roles are refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from domain.clock import BUSINESS_TZ, SetClock
from infra.runtime import Runtime
from infra.settings import Settings
from projections.red_flags.projection import RedFlagsProjection
from tests.e2e.http import actor, apply_at_window, approve_over_http, ok, refused
from tests.factories import resident_id

pytestmark = pytest.mark.e2e

CLERK = actor("intake_clerk", "440103", "clerk-1", scope="440103")
OFFICER = actor("handling_staff", "440103", "officer-li", scope="440103")
APPROVER = actor("approver", "440103", "approver-wang", scope="440103")
SUPERVISOR = actor("supervisor", "4401", "supervisor-gz", scope="4401")
ELSEWHERE = actor("supervisor", "4403", "supervisor-sz", scope="4403")


@pytest.fixture()
def clock() -> SetClock:
    return SetClock(dt.datetime(2026, 1, 5, 9, tzinfo=BUSINESS_TZ))


@pytest.fixture()
def runtime(settings: Settings, clock: SetClock) -> Iterator[Runtime]:
    opened = Runtime.open(settings, clock=clock)
    yield opened
    opened.close()


def test_a_household_that_shrank_paid_on_is_flagged_for_supervision_in_scope(
    client: TestClient, runtime: Runtime, clock: SetClock
) -> None:
    head, child = resident_id(), resident_id(born="20000101")
    home = ok(
        client.post(
            "/households",
            headers=CLERK,
            json={
                "registered_division": "440103001001",
                "residence_division": "440103001001",
                "members": [
                    {"resident_id": head, "name": "Chen Hua", "relation": "head"},
                    {"resident_id": child, "name": "Chen Xiao", "relation": "child"},
                ],
            },
        ),
        201,
    )
    case_id = apply_at_window(client, CLERK, home["household_id"], head)["case_id"]
    approve_over_http(
        client,
        case_id,
        officer=OFFICER,
        approver=APPROVER,
        visited_at="2026-01-04T10:00:00+08:00",
        start_date="2026-02-01",
    )
    clock.at(dt.date(2026, 2, 10))
    ok(
        client.post(
            f"/households/{home['household_id']}/move-outs",
            headers=CLERK,
            json={"resident_id": child, "on": "2026-02-10"},
        )
    )
    for month in (2, 3, 4):
        clock.at(dt.date(2026, month, 5))
        ok(
            client.post(
                f"/cases/{case_id}/payments",
                headers=OFFICER,
                json={"period": f"2026-{month:02d}", "amount": "960"},
            )
        )
    runtime.projection_runner(RedFlagsProjection).catch_up()

    params = {"rule": "household_shrank_unreviewed"}
    found = ok(client.get("/alerts", params=params, headers=SUPERVISOR))["items"]
    assert [a["subject_id"] for a in found] == [case_id]
    assert "moved out on 2026-02-10" in found[0]["reason"] and "2026-04" in found[0]["reason"]
    assert child not in found[0]["reason"]  # people are named by blind index only
    assert ok(client.get("/alerts", params=params, headers=ELSEWHERE))["items"] == []
    refused(client.get(f"/alerts/{found[0]['alert_id']}", headers=ELSEWHERE), 404, "not-found")
    refused(client.get("/alerts", params=params, headers=OFFICER), 403, "not-permitted")
