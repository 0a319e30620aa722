"""Stored bytes changed outside the ledger: answered as problems naming what failed, never
as a crash, and never as someone else's data."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from infra.runtime import Runtime
from tests.e2e.http import actor, ok, refused
from tests.factories import resident_id, village
from tests.scenario import application

pytestmark = pytest.mark.e2e

CLERK = actor("intake_clerk", "440103", "clerk-1")


def sql(runtime: Runtime, statement: str, params: tuple[Any, ...] = ()) -> None:
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute(statement, params)


def household_body() -> dict[str, Any]:
    place = village("440103")
    return {
        "registered_division": place,
        "residence_division": place,
        "members": [{"resident_id": resident_id(), "name": "Chen Hua", "relation": "head"}],
    }


def test_a_tampered_event_answers_a_problem_naming_the_record(
    client: TestClient, runtime: Runtime
) -> None:
    case = application(runtime)  # written outside any request: not in the API's cache
    sql(
        runtime,
        "UPDATE relief_events SET state = state || '\\x20'::bytea"
        " WHERE originator_id = %s AND originator_version = 1",
        (case.id,),
    )
    reader = {**actor("handling_staff", "440103", "officer-1", scope="440103"), "X-Purpose": "t"}
    for path in (f"/cases/{case.id}", f"/cases/{case.id}/as-of?version=1"):
        problem = refused(client.get(path, headers=reader), 409, "record-failed-verification")
        assert problem["aggregate_id"] == str(case.id)
        assert str(case.id) in problem["detail"]


def test_a_kept_answer_moved_to_another_key_does_not_open_there(
    client: TestClient, runtime: Runtime
) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    first_body = household_body()
    kept = ok(
        client.post("/households", headers={**CLERK, "Idempotency-Key": first}, json=first_body),
        201,
    )
    other_body = household_body()
    ok(
        client.post("/households", headers={**CLERK, "Idempotency-Key": second}, json=other_body),
        201,
    )
    # the first key's sealed answer copied onto the second key's row (same caller)
    sql(
        runtime,
        "UPDATE relief.idempotency_keys SET response = (SELECT response FROM"
        " relief.idempotency_keys WHERE key = %s) WHERE key = %s",
        (first, second),
    )
    refused(
        client.post("/households", headers={**CLERK, "Idempotency-Key": second}, json=other_body),
        409,
        "kept-answer-failed-verification",
    )
    # the first key's own answer still opens at its own key
    again = client.post("/households", headers={**CLERK, "Idempotency-Key": first}, json=first_body)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == kept
