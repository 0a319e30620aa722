"""Small holes found by attacking the API (issue 16, items 7, 8, 10, 11, 12): forged tokens,
money written oddly, a county auditor reading another county's people, control characters in
recorded headers, idempotency keys shared across callers or answered 409 after the answer."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import TokenVerifier, Unauthenticated
from api.safe_writes import IdempotencyStore
from domain.commands.cases import MoveOutMember
from domain.household import Household
from infra.checkpoints import load_or_create_key
from infra.runtime import Runtime
from infra.settings import Settings, SettingsError
from tests.e2e.faults import serving
from tests.e2e.http import actor, contracted, ok, refused
from tests.factories import BY_CLERK, resident_id, village
from tests.integration.helpers import events_written
from tests.scenario import application, approve

pytestmark = pytest.mark.e2e

CLERK = actor("intake_clerk", "440103", "clerk-1", scope="440103")
OFFICER = actor("handling_staff", "440103", "officer-1", scope="440103")


def events(runtime: Runtime) -> int:
    """The events the test wrote (the log less the register the database began with)."""
    return events_written(runtime.database_url)


def household_body(county: str = "440103") -> dict[str, Any]:
    place = village(county)
    return {
        "registered_division": place,
        "residence_division": place,
        "members": [{"resident_id": resident_id(county), "name": "Chen Hua", "relation": "head"}],
    }


# 7. Tokens naming any algorithm, with junk signatures --------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def junk_token(algorithm: str) -> str:
    """A token with plausible claims and a signature of random bytes."""
    now = int(time.time())
    claims = {
        "iss": Settings.jwt_issuer,
        "aud": Settings.jwt_audience,
        "sub": "intruder",
        "role": "supervisor",
        "org": "44",
        "scope": "44",
        "iat": now,
        "exp": now + 600,
    }
    header = _b64(json.dumps({"alg": algorithm, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(os.urandom(64))}"


ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA", "HS256", "none"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_junk_signatures_are_401_also_with_an_idempotency_key(
    client: TestClient, runtime: Runtime, algorithm: str
) -> None:
    forged = {"Authorization": f"Bearer {junk_token(algorithm)}"}
    refused(client.get("/caseload", headers=forged), 401, "unauthenticated")
    keyed = {**forged, "Idempotency-Key": str(uuid.uuid4())}
    refused(
        client.post("/households", headers=keyed, json=household_body()), 401, "unauthenticated"
    )
    assert events(runtime) == 0


@pytest.mark.parametrize("kind", ["rsa", "p256"])
def test_every_key_kind_refuses_junk_of_every_algorithm(
    settings: Settings, tmp_path: Path, kind: str
) -> None:
    private: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    pem = tmp_path / f"{kind}.pem"
    pem.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    verifier = TokenVerifier(settings.with_(jwt_public_key_path=pem))
    for algorithm in ALGORITHMS:
        with pytest.raises(Unauthenticated):
            verifier.verify(junk_token(algorithm))
    now = dt.datetime.now(dt.UTC)
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "officer-9",
        "role": "handling_staff",
        "org": "440103",
        "scope": "440103",
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
    }
    algorithm = "PS256" if kind == "rsa" else "ES256"
    assert verifier.verify(jwt.encode(claims, private, algorithm=algorithm)).actor.id == "officer-9"


def test_a_key_of_an_unsupported_kind_is_refused_at_start(
    settings: Settings, tmp_path: Path
) -> None:
    pem = tmp_path / "p384.pem"
    pem.write_bytes(
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(SettingsError):
        TokenVerifier(settings.with_(jwt_public_key_path=pem))


# 8. Money is plain decimal text ------------------------------------------------------------------

BAD_AMOUNTS = ["1e999999999", "١٢٣", "1E3", "12.345", "-5", " 12", "1,000", "NaN", 960, 960.5]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_amounts_other_than_plain_decimal_text_are_422_naming_the_field(
    client: TestClient, runtime: Runtime, amount: object
) -> None:
    case = application(runtime)
    approve(runtime, case)
    _, _, contract = contracted(
        client,
        OFFICER,
        name="Helping Hands",
        work_items=["household_investigation"],
        service_area=["440103"],
        start="2026-01-01",
        end="2030-12-31",
    )
    contractor_id = contract["contractor_id"]
    fresh = application(runtime, village_="002")
    before = events(runtime)
    period = runtime.services.clock.today().strftime("%Y-%m")
    visit = {
        "visited_at": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat(),
        "place": "440103001002",
        "visitor_id": "officer-1",
    }
    attempts = [
        (f"/cases/{case.id}/payments", {"period": period, "amount": amount}, "amount"),
        (
            "/contracts",
            {
                "contractor_id": contractor_id,
                "purchaser": "440103",
                "work_items": ["household_investigation"],
                "service_area": ["440103"],
                "start": "2026-01-01",
                "end": "2026-12-31",
                "value": amount,
                "funding_source": "special_relief_funds",
            },
            "value",
        ),
        (
            f"/contracts/{contract['contract_id']}/invoices",
            {
                "invoice_number": "INV-1",
                "period_start": "2026-01-01",
                "period_end": "2026-01-31",
                "amount": amount,
            },
            "amount",
        ),
        (
            f"/cases/{fresh.id}/investigation",
            {
                "income_items": [{"source": "wages", "monthly_amount": amount}],
                "assets": [],
                "household_size": 1,
                "home_visit": visit,
            },
            "income_items.0.monthly_amount",
        ),
        (
            f"/cases/{fresh.id}/investigation",
            {
                "income_items": [],
                "assets": [{"kind": "savings", "value": amount}],
                "household_size": 1,
                "home_visit": visit,
            },
            "assets.0.value",
        ),
    ]
    for path, body, field in attempts:
        problem = refused(client.post(path, headers=OFFICER, json=body), 422, "invalid-request")
        assert problem["field"] == field, (path, problem)
    assert events(runtime) == before


def test_plain_amounts_are_taken_at_their_value(client: TestClient, runtime: Runtime) -> None:
    case = application(runtime)
    approve(runtime, case)
    period = runtime.services.clock.today().strftime("%Y-%m")
    paid = client.post(
        f"/cases/{case.id}/payments", headers=OFFICER, json={"period": period, "amount": "899.5"}
    )
    assert ok(paid, 200)["payments"][-1]["amount"] == "899.50"


# 10. A county auditor and another county's people -----------------------------------------------


def test_an_auditor_reads_people_of_their_own_county_only(
    client: TestClient, runtime: Runtime
) -> None:
    load_or_create_key(runtime.settings.audit_key_file)
    cases = runtime.services.cases
    case = application(runtime, "440103")
    home = runtime.ledger.get(Household, case.household_id)
    person = cases.find_person(next(iter(home.members)))
    assert person is not None
    purpose = {"X-Purpose": "audit of the 2026 programme"}
    as_of = f"/audit/aggregates/{person.id}/as-of"
    bundle = f"/audit/bundles/{person.id}"
    for county, seen in (("440305", False), ("440103", True), ("44", True)):
        auditor = {**actor("auditor", county, f"auditor-{county}", scope=county), **purpose}
        answers = [
            client.get(as_of, headers=auditor, params={"version": 1}),
            client.get(bundle, headers=auditor),
        ]
        for answer in answers:
            if seen:
                assert answer.status_code == 200, answer.text
            else:
                problem = refused(answer, 404, "not-found")
                assert str(case.household_id) not in answer.text
                assert person.name not in answer.text and problem["detail"]
    # Moved out of the household: seen where their cases are.
    cases.move_out_member(
        MoveOutMember(
            household_id=case.household_id,
            resident_id=person.resident_id,
            on=runtime.services.clock.today(),
            provenance=BY_CLERK,
        )
    )
    elsewhere = {**actor("auditor", "440305", "auditor-440305", scope="440305"), **purpose}
    refused(client.get(as_of, headers=elsewhere, params={"version": 1}), 404, "not-found")
    here = {**actor("auditor", "440103", "auditor-440103", scope="440103"), **purpose}
    assert client.get(as_of, headers=here, params={"version": 1}).status_code == 200


# 11. Control characters in headers that are recorded ---------------------------------------------


@pytest.mark.parametrize("character", ["\x1b", "\x07", "\x7f", "\x00"], ids=repr)
def test_control_characters_in_recorded_headers_are_refused(
    client: TestClient, runtime: Runtime, character: str
) -> None:
    refused_correlation = client.post(
        "/households",
        headers={**CLERK, "X-Correlation-Id": f"window{character}[2J"},
        json=household_body(),
    )
    assert refused(refused_correlation, 422, "invalid-value")["field"] == "X-Correlation-Id"
    assert events(runtime) == 0
    case = application(runtime)
    reads = f"/cases/{case.id}/history"
    purpose = {**OFFICER, "X-Purpose": f"review{character}"}
    assert refused(client.get(reads, headers=purpose), 422, "invalid-value")["field"] == "X-Purpose"
    auditor = actor("auditor", "44", "auditor-1")
    assert client.get(f"/cases/{case.id}/reads", headers=auditor).json()["items"] == []


# 12. Idempotency keys per whole caller, kept before the answer is sent ---------------------------


def test_the_same_user_name_in_another_county_is_another_caller(
    client: TestClient, runtime: Runtime
) -> None:
    key, body = str(uuid.uuid4()), household_body("440103")
    here = actor("intake_clerk", "440103", "clerk-li", scope="440103")
    there = actor("intake_clerk", "440305", "clerk-li", scope="440305")
    first = client.post("/households", headers={**here, "Idempotency-Key": key}, json=body)
    ok(first, 201)
    recorded = events(runtime)
    # The other county's clerk of the same name gets no replay of this county's answer: the
    # request is judged as theirs (a village outside their scope).
    other = client.post("/households", headers={**there, "Idempotency-Key": key}, json=body)
    assert "idempotent-replayed" not in other.headers
    refused(other, 403, "not-permitted")
    assert first.json()["household_id"] not in other.text
    assert events(runtime) == recorded
    # Nor does the same subject with another role.
    officer = actor("handling_staff", "440103", "clerk-li", scope="440103")
    again = client.post("/households", headers={**officer, "Idempotency-Key": key}, json=body)
    assert "idempotent-replayed" not in again.headers


def test_a_retry_the_moment_the_answer_arrives_is_answered_from_the_kept_answer(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    complete = IdempotencyStore.complete

    def slow_complete(self: IdempotencyStore, *args: Any) -> None:
        time.sleep(1.0)  # keeping the answer takes a while (a busy database)
        complete(self, *args)

    monkeypatch.setattr(IdempotencyStore, "complete", slow_complete)
    key, body = str(uuid.uuid4()), household_body()
    headers = {**CLERK, "Idempotency-Key": key}
    with serving(create_app(runtime)) as base, httpx.Client(base_url=base, timeout=30) as http:
        first = http.post("/households", headers=headers, json=body)
        retry = http.post("/households", headers=headers, json=body)
    assert first.status_code == 201, first.text
    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()


def test_concurrent_first_attempts_and_retries_record_once(runtime: Runtime) -> None:
    key, body = str(uuid.uuid4()), household_body()
    headers = {**CLERK, "Idempotency-Key": key}
    answers: list[httpx.Response] = []
    with serving(create_app(runtime)) as base:

        def send() -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                for _ in range(20):
                    response = http.post("/households", headers=headers, json=body)
                    if response.status_code != 409:
                        answers.append(response)
                        return
                    time.sleep(0.05)

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.json()["household_id"] for a in answers}) == 1
    assert events(runtime) == 2  # the household and its person, once
