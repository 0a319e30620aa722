"""Retries and hostile input over HTTP: one event per command, 4xx for garbage, nothing
recorded on refusal, no internals in any answer."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.runtime import Runtime
from tests.e2e.http import actor, ok, refused
from tests.factories import resident_id, village
from tests.integration.helpers import events_written

pytestmark = pytest.mark.e2e

CLERK = actor("intake_clerk", "440103", "clerk-1")


def events(runtime: Runtime) -> int:
    """The events the test wrote (the log less the register the database began with)."""
    return events_written(runtime.database_url)


def household_body(name: str = "Chen Hua", division: str | None = None) -> dict[str, Any]:
    place = division or village("440103")
    return {
        "registered_division": place,
        "residence_division": place,
        "members": [{"resident_id": resident_id(), "name": name, "relation": "head"}],
    }


def test_the_same_command_twice_with_one_key_records_once(
    client: TestClient, runtime: Runtime
) -> None:
    key = str(uuid.uuid4())
    body = household_body()
    first = client.post("/households", headers={**CLERK, "Idempotency-Key": key}, json=body)
    ok(first, 201)
    recorded = events(runtime)
    again = client.post("/households", headers={**CLERK, "Idempotency-Key": key}, json=body)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert events(runtime) == recorded
    # The same key for another request is a client error, and records nothing.
    other = household_body()
    refused(
        client.post("/households", headers={**CLERK, "Idempotency-Key": key}, json=other),
        422,
        "idempotency-key-reused",
    )
    # Keys belong to their caller: another clerk's identical key is another command.
    colleague = actor("intake_clerk", "440103", "clerk-2")
    ok(client.post("/households", headers={**colleague, "Idempotency-Key": key}, json=other), 201)
    assert events(runtime) == recorded + 2  # a household and its person
    refused(
        client.post("/households", headers={**CLERK, "Idempotency-Key": "short"}, json=other),
        422,
        "invalid-idempotency-key",
    )


def test_a_refusal_is_kept_too(client: TestClient, runtime: Runtime) -> None:
    """A retried refusal answers the same refusal; it does not turn into a success later."""
    key = str(uuid.uuid4())
    body = household_body(division="990103001001")  # no such province
    first = client.post("/households", headers={**CLERK, "Idempotency-Key": key}, json=body)
    second = client.post("/households", headers={**CLERK, "Idempotency-Key": key}, json=body)
    assert first.status_code == second.status_code == 422
    assert first.json() == second.json()
    assert events(runtime) == 0


def test_concurrent_retries_record_once(client: TestClient, runtime: Runtime) -> None:
    key, body = str(uuid.uuid4()), household_body()
    statuses: list[int] = []

    def send() -> None:
        response = client.post("/households", headers={**CLERK, "Idempotency-Key": key}, json=body)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    assert events(runtime) == 2


def test_bodies_above_the_limit_are_refused_unread(client: TestClient, runtime: Runtime) -> None:
    limit = runtime.settings.max_body_bytes
    huge = household_body(name="A" * 50)
    huge["reason"] = "x" * (limit + 1)
    response = client.post("/households", headers=CLERK, json=huge)
    refused(response, 413, "body-too-large")

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        yield b'{"reason": "'
        for _ in range(limit // 1000 + 2):
            yield b"y" * 1000
        yield b'"}'

    streamed = client.post(
        "/households", headers={**CLERK, "Content-Type": "application/json"}, content=chunks()
    )
    refused(streamed, 413, "body-too-large")
    assert events(runtime) == 0


VALID = resident_id()
WRONG_CHECK_DIGIT = VALID[:17] + ("0" if VALID[17] != "0" else "1")

GARBAGE: list[tuple[str, Any, int, str | None]] = [
    ("malformed JSON", b'{"registered_division": ', 400, None),
    ("not an object", b"[1, 2, 3]", 422, None),
    ("wrong type", {"registered_division": 440103001001}, 422, "registered_division"),
    ("unknown field", {**household_body(), "is_admin": True}, 422, "is_admin"),
    ("invalid division", household_body(division="440103001999x"), 422, "registered_division"),
    (
        "invalid ID number",
        {
            **household_body(),
            "members": [{"resident_id": WRONG_CHECK_DIGIT, "name": "Chen", "relation": "head"}],
        },
        422,
        "members[0].resident_id",
    ),
    ("SQL in a name", household_body(name="Robert'); DROP TABLE relief_events;--"), 422, None),
    ("script in a name", household_body(name="<script>alert(1)</script>"), 422, None),
    ("control characters", household_body(name="Chen\x00Hua"), 422, None),
    ("null bytes in free text", {**household_body(), "reason": "a\x00b"}, 422, "reason"),
]


@pytest.mark.parametrize(("what", "body", "status", "field"), GARBAGE, ids=[g[0] for g in GARBAGE])
def test_garbage_gets_a_4xx_naming_the_field_and_records_nothing(
    client: TestClient, runtime: Runtime, what: str, body: Any, status: int, field: str | None
) -> None:
    if isinstance(body, bytes):
        response = client.post(
            "/households", headers={**CLERK, "Content-Type": "application/json"}, content=body
        )
    else:
        response = client.post("/households", headers=CLERK, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    if field is not None:
        assert field in (problem.get("field") or ""), problem
    for leak in ("Traceback", "psycopg", "SELECT", "INSERT", "relief_events", 'File "'):
        assert leak not in response.text or leak in str(body), (what, response.text)
    assert events(runtime) == 0


def test_sql_and_script_in_free_text_are_inert_and_kept_verbatim(
    client: TestClient, runtime: Runtime
) -> None:
    """Free text (reasons) may quote anything; it is bound as a parameter, never spliced into
    SQL, and served as JSON data, never as markup."""
    text = "'); DROP TABLE relief_events; -- <script>alert(1)</script>"
    body = {**household_body(), "reason": text}
    home = ok(client.post("/households", headers=CLERK, json=body), 201)
    history = ok(
        client.get(
            f"/audit/aggregates/{home['household_id']}/as-of",
            params={"version": 1},
            headers={**actor("auditor", "44", "auditor-1"), "X-Purpose": "check"},
        )
    )
    assert history["kind"] == "Household"
    assert events(runtime) == 2  # the table is still there, with the household and its person
    assert runtime.ledger.get_household(uuid.UUID(home["household_id"])).version == 1


def test_unknown_or_absurd_query_parameters_are_refused(client: TestClient) -> None:
    reader = actor("auditor", "44", "auditor-1")
    refused(
        client.get("/caseload", params={"divison": "4401"}, headers=reader), 422, "invalid-value"
    )
    response = client.get("/caseload", params={"offset": str(2**63)}, headers=reader)
    assert response.status_code == 422 and response.json()["field"] == "offset"


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"])
def test_an_instant_whose_business_day_is_no_date_is_refused(client: TestClient, at: str) -> None:
    """An instant at the calendar's edge whose day in China Standard Time falls outside it is
    a 422 naming the field, on every route that reads one (a 500 before)."""
    reader = actor("auditor", "44", "auditor-1")
    for path in ("/staffing", "/staffing/summary", "/staffing/villages"):
        response = client.get(path, params={"at": at}, headers=reader)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["field"] == "at"
