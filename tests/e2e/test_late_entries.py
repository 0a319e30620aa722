"""Late entries over HTTP: contractor staff record work done inside a contract's term after the
term ended, within the late-entry window (30 days by default); access and the domain both judge
by the contract in force when the work was done, and the business day is China Standard Time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from domain.clock import BUSINESS_TZ, SetClock
from infra.runtime import Runtime
from infra.settings import Settings
from tests.e2e.http import actor, apply_at_window, approve_over_http, contracted, ok, refused
from tests.e2e.test_case_story import APPROVER, OFFICER, household
from tests.factories import resident_id

pytestmark = pytest.mark.e2e


@pytest.fixture()
def clock() -> SetClock:
    return SetClock(dt.datetime(2026, 6, 10, 9, 0, tzinfo=BUSINESS_TZ))


@pytest.fixture()
def runtime(settings: Settings, clock: SetClock) -> Iterator[Runtime]:
    opened = Runtime.open(settings, clock=clock)
    yield opened
    opened.close()


def service(start: str, contract_id: str, minutes: int = 45) -> dict[str, Any]:
    begin = dt.datetime.fromisoformat(start)
    return {
        "work_item": "psychological_counselling",
        "contract_id": contract_id,
        "start": start,
        "end": (begin + dt.timedelta(minutes=minutes)).isoformat(),
        "place": "440103001001",
        "reason": "counselling session, entered late",
    }


def approved_case(client: TestClient, worker: dict[str, str], contract_id: str) -> str:
    head = resident_id()
    home = household(client, head)
    case_id: str = apply_at_window(client, OFFICER, home["household_id"], head)["case_id"]
    approve_over_http(
        client,
        case_id,
        officer=OFFICER,
        approver=APPROVER,
        visited_at="2026-06-09T10:00:00+08:00",
        start_date="2026-06-01",
    )
    return case_id


def test_work_inside_the_term_is_entered_late_within_the_window_and_refused_after(
    client: TestClient, clock: SetClock
) -> None:
    code, _, ended = contracted(
        client,
        OFFICER,
        name="Harmony Social Work",
        work_items=["psychological_counselling"],
        service_area=["440103001"],
        start="2026-01-01",
        end="2026-06-30",
    )
    worker = actor("contractor_staff", code, "worker-zhou", scope="440103")
    reading = {**worker, "X-Purpose": "services of the case"}
    case_id = approved_case(client, worker, ended["contract_id"])
    path = f"/cases/{case_id}/services"

    # Twenty days after the term: work of 29 June is entered (it answered 404 before).
    clock.at(dt.date(2026, 7, 20))
    ok(client.get(f"/cases/{case_id}", headers=reading))
    ok(
        client.post(
            path, headers=worker, json=service("2026-06-29T15:00:00+08:00", ended["contract_id"])
        )
    )
    # 06:30 Beijing time on 1 July, sent in UTC: after the term, whatever the offset says.
    problem = refused(
        client.post(
            path, headers=worker, json=service("2026-06-30T22:30:00+00:00", ended["contract_id"])
        ),
        422,
        "outside-contract",
    )
    assert "2026-07-01" in problem["detail"]
    # 23:30 Beijing time on 30 June, sent from New York: inside the term.
    ok(
        client.post(
            path, headers=worker, json=service("2026-06-30T11:30:00-04:00", ended["contract_id"])
        )
    )

    # From the thirty-first day after the term, the ended contract no longer opens the case.
    clock.at(dt.date(2026, 7, 30))
    ok(client.get(f"/cases/{case_id}", headers=reading))  # the 30th day after: still open
    clock.at(dt.date(2026, 7, 31))
    refused(client.get(f"/cases/{case_id}", headers=reading), 404, "not-found")
    refused(
        client.post(
            path, headers=worker, json=service("2026-06-29T16:00:00+08:00", ended["contract_id"])
        ),
        404,
        "not-found",
    )

    # With a new contract in force the case is reachable again, but the old contract's work
    # can no longer be entered: the window has passed (a supervisor's correction can add it).
    ok(
        client.post(
            "/contracts",
            headers=OFFICER,
            json={
                "contractor_id": ended["contractor_id"],
                "purchaser": "440103",
                "work_items": ["psychological_counselling"],
                "service_area": ["440103001"],
                "start": "2026-07-31",
                "end": "2026-12-31",
                "value": "50000",
                "funding_source": "special_relief_funds",
            },
        ),
        201,
    )
    problem = refused(
        client.post(
            path, headers=worker, json=service("2026-06-29T16:00:00+08:00", ended["contract_id"])
        ),
        422,
        "outside-contract",
    )
    assert problem["field"] == "contract_id"
    assert "correction" in problem["detail"]
