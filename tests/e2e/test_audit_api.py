"""Auditors over HTTP and the command line: verify the chain, read a case as it stood."""

from __future__ import annotations

import json
import time
import uuid

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.cli import main
from domain.commands.cases import CloseCase
from domain.commands.purchasing import BanContractor, RegisterContractor
from infra.runtime import Runtime
from tests.e2e.http import actor, ok, reader, refused
from tests.factories import approver
from tests.scenario import application, approve

pytestmark = pytest.mark.e2e


def test_verify_and_as_of_over_http(client: TestClient, runtime: Runtime) -> None:
    case = application(runtime)
    approve(runtime, case)
    approved_at = (
        runtime.services.clock.now()
    )  # after the approval was recorded, before the closure
    runtime.services.cases.close_case(
        CloseCase(case_id=case.id, reason_code="voluntary", provenance=approver())
    )
    from infra.checkpoints import load_or_create_key, sign_checkpoint
    from infra.sealing import seal_of

    unsigned = ok(client.get("/audit/verify"))
    assert unsigned["intact"] and unsigned["signed_up_to"] == 0
    assert unsigned["unsigned_events"] == runtime.head_position()
    key_file = runtime.settings.audit_key_file
    sign_checkpoint(runtime.pool, load_or_create_key(key_file), seal_of(runtime.ledger))
    key = ok(client.get("/audit/public-key"))
    assert key["algorithm"] == "Ed25519" and len(key["public_key"]) == 64
    [held] = ok(client.get("/audit/checkpoints"))["items"]
    assert (held["sequence"], held["position"]) == (1, runtime.head_position())
    assert held["public_key"] == key["public_key"] and len(held["signature"]) == 128
    assert ok(client.get("/audit/checkpoints", params={"after": 1}))["items"] == []
    report = ok(client.get("/audit/verify"))
    assert report["ok"] and report["intact"]
    assert report["intact_up_to"] == report["signed_up_to"] == runtime.head_position()
    assert (report["unsigned_events"], report["seals_checked"]) == (0, True)
    then = ok(
        client.get(
            f"/cases/{case.id}/as-of", headers=reader(), params={"at": approved_at.isoformat()}
        )
    )
    assert then["status"] == "approved" and then["as_of"] == approved_at.isoformat()
    assert ok(client.get(f"/cases/{case.id}/as-of", headers=reader(), params={"version": 1}))[
        "status"
    ] == ("received")
    refused(client.get(f"/cases/{case.id}/as-of", headers=reader()), 422, "invalid-value")
    refused(
        client.get(f"/cases/{case.id}/as-of", headers=reader(), params={"version": 99}),
        404,
        "not-found",
    )
    refused(
        client.get(
            f"/cases/{case.id}/as-of", headers=reader(), params={"at": "2000-01-01T00:00:00+08:00"}
        ),
        404,
        "not-found",
    )

    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE relief_events SET state = state || '\\x20'::bytea WHERE notification_id = 2"
        )
    broken = ok(client.get("/audit/verify"))
    assert not broken["intact"] and not broken["ok"]
    assert (broken["first_break"]["kind"], broken["first_break"]["position"]) == ("changed", 2)


def test_the_cli_verifies_and_fails_on_a_broken_chain(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    application(runtime)
    head = runtime.head_position()
    monkeypatch.setenv("RELIEF_DATABASE_URL", runtime.database_url)
    monkeypatch.setenv("RELIEF_DATA_DIR", str(runtime.settings.data_dir))
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert f"intact up to position {head}" in out
    assert f"NOT SIGNED: no checkpoint; {head} events are not signed" in out
    # Intact, but more unsigned events than allowed: a failure of its own (exit 3).
    monkeypatch.setenv("RELIEF_AUDIT_MAX_UNSIGNED", str(head - 1))
    assert main(["audit", "verify", "--json"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert (report["intact"], report["ok"], report["first_break"]) == (True, False, None)
    assert (report["signed_up_to"], report["unsigned_events"]) == (0, head)
    assert "not signed" in report["over_limits"][0]
    monkeypatch.delenv("RELIEF_AUDIT_MAX_UNSIGNED")
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM relief_events WHERE notification_id = 1")
    assert main(["audit", "verify"]) == 1
    assert "BROKEN at position 1: missing" in capsys.readouterr().out
    assert main(["audit", "verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["first_break"]["kind"] == "missing" and report["first_break"]["position"] == 1


def test_reads_of_personal_data_are_recorded_and_queried(
    client: TestClient, runtime: Runtime
) -> None:
    case = application(runtime)
    refused(client.get(f"/cases/{case.id}", headers={"Authorization": ""}), 401, "unauthenticated")
    no_purpose = {k: v for k, v in reader().items() if k != "X-Purpose"}
    refused(client.get(f"/cases/{case.id}", headers=no_purpose), 422, "purpose-required")
    ok(client.get(f"/cases/{case.id}", headers=reader("eligibility review", who="li")))
    ok(client.get(f"/cases/{case.id}/history", headers=reader("complaint 2026-77", who="ma")))
    auditor = actor("auditor", "44", "auditor-1")
    refused(client.get(f"/cases/{case.id}/reads", headers=reader()), 403, "not-permitted")
    reads = ok(client.get(f"/cases/{case.id}/reads", headers=auditor))["items"]
    assert [(r["actor"]["id"], r["purpose"], r["endpoint"]) for r in reads] == [
        ("ma", "complaint 2026-77", f"/cases/{case.id}/history"),
        ("li", "eligibility review", f"/cases/{case.id}"),
    ]  # newest first


def test_decision_view_and_bundles_over_http_and_cli(
    client: TestClient,
    runtime: Runtime,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = application(runtime)
    approve(runtime, case)
    runtime.services.cases.close_case(
        CloseCase(case_id=case.id, reason_code="voluntary", provenance=approver())
    )
    view = ok(client.get(f"/cases/{case.id}/decision-view", headers=reader()))["items"]
    assert [v["decision"] for v in view] == ["Approved", "Closed"]
    assert view[0]["case_before"]["status"] == "recommended"
    assert view[1]["case_before"]["status"] == "approved"

    auditor = {**actor("auditor", "44", "auditor-1"), "X-Purpose": "complaint review"}
    refused(client.get(f"/audit/bundles/{case.id}", headers=auditor), 409, "invalid-state")
    from infra.checkpoints import load_or_create_key

    load_or_create_key(runtime.settings.audit_key_file)  # as the checkpointer does on start
    refused(client.get(f"/audit/bundles/{case.id}", headers=reader()), 403, "not-permitted")
    response = client.get(f"/audit/bundles/{case.id}", headers=auditor)
    assert response.status_code == 200
    bundle_file = tmp_path / "evidence.json"
    bundle_file.write_bytes(response.content)
    key = ok(client.get("/audit/public-key"))["public_key"]
    monkeypatch.delenv("RELIEF_DATABASE_URL", raising=False)  # offline: no database at all
    assert main(["audit", "verify-bundle", str(bundle_file), "--public-key", key]) == 0
    assert "verified" in capsys.readouterr().out
    data = bytearray(bundle_file.read_bytes())
    data[len(data) // 2] ^= 1
    bundle_file.write_bytes(bytes(data))
    assert main(["audit", "verify-bundle", str(bundle_file), "--public-key", key]) == 1
    assert "REJECTED" in capsys.readouterr().out
    refused(
        client.get("/audit/bundles/0b5d3b0e-6d55-4a4f-9d7b-6f8f8f0c0c0c", headers=auditor),
        404,
        "not-found",
    )
    reads = ok(client.get(f"/cases/{case.id}/reads", headers=auditor))["items"]
    assert reads[0]["endpoint"] == f"/audit/bundles/{case.id}"  # the export was recorded


def test_any_record_as_it_stood_for_auditors(client: TestClient, runtime: Runtime) -> None:
    from tests.factories import BY_OFFICER, credit_code

    purchasing = runtime.services.purchasing
    contractor = purchasing.register_contractor(
        RegisterContractor(
            name="Care",
            contractor_type="social_organisation",
            credit_code=credit_code(),
            institution_class=None,
            provenance=BY_OFFICER,
        )
    )
    registered_at = runtime.services.clock.now()  # recorded by now; the ban comes after
    purchasing.ban_contractor(
        BanContractor(
            contractor_id=contractor.id,
            start=runtime.services.clock.today(),
            end=runtime.services.clock.today(),
            reason="r",
            deciding_unit="440103",
            provenance=approver(),
        )
    )
    auditor = {**actor("auditor", "44", "auditor-1"), "X-Purpose": "annual audit"}
    then = ok(
        client.get(
            f"/audit/aggregates/{contractor.id}/as-of",
            params={"at": registered_at.isoformat()},
            headers=auditor,
        )
    )
    assert then["kind"] == "Contractor" and then["state"]["bans"] == []
    now = ok(
        client.get(
            f"/audit/aggregates/{contractor.id}/as-of", params={"version": 2}, headers=auditor
        )
    )
    assert now["state"]["status"] == "banned"
    refused(
        client.get(
            f"/audit/aggregates/{contractor.id}/as-of", params={"version": 1}, headers=reader()
        ),
        403,
        "not-permitted",
    )
    case = application(runtime)
    ok(client.get(f"/audit/aggregates/{case.id}/as-of", params={"version": 1}, headers=auditor))
    reads = ok(client.get(f"/cases/{case.id}/reads", headers=auditor))["items"]
    assert [r["purpose"] for r in reads] == ["annual audit"]


def test_a_verification_runs_as_a_job_whose_status_anyone_auditing_may_ask(
    client: TestClient,
) -> None:
    started = client.get("/audit/verify?wait=0")
    assert started.status_code in (200, 202), started.text
    job = started.json()["job"]
    deadline = time.monotonic() + 60
    while True:
        status = client.get(f"/audit/verify/jobs/{job}")
        if status.status_code == 200 or time.monotonic() > deadline:
            break
        assert status.status_code == 202 and status.headers["location"].endswith(job)
        time.sleep(0.2)
    report = ok(status)
    assert report["job"] == job and "intact" in report
    refused(client.get(f"/audit/verify/jobs/{uuid.uuid4()}"), 404, "not-found")


def test_reads_of_a_cached_case_are_recorded_by_the_statement_that_loads_it(
    client: TestClient, runtime: Runtime
) -> None:
    """Once a read has cached the case, ``GET /cases/{id}`` and ``as-of?at=`` check its scope
    on the cached case and write the read record in the statement that reads its events
    (infra/ledger.py ``read_latest``/``read_as_of``): each answered read is recorded once, the
    answers see events recorded since, and a read refused by scope is not recorded."""
    case = application(runtime)
    received_at = runtime.services.clock.now()
    path = f"/cases/{case.id}"
    assert ok(client.get(path, headers=reader("first", who="a")))["status"] == "received"
    approve(runtime, case)  # recorded outside the API: the cached case is now behind the log
    again = client.get(path, headers=reader("second", who="b"))
    assert ok(again)["status"] == "approved"
    assert again.headers["ETag"] == f'"{ok(again)["version"]}"'
    assert client.app.state.loop_reads._pool is not None  # sent from the event loop
    then = ok(
        client.get(
            f"{path}/as-of",
            headers=reader("third", who="c"),
            params={"at": received_at.isoformat()},
        )
    )
    assert then["status"] == "received" and then["as_of"] == received_at.isoformat()
    elsewhere = {**actor("handling_staff", "440104", "d", scope="440104"), "X-Purpose": "fourth"}
    refused(client.get(path, headers=elsewhere), 404, "not-found")
    refused(
        client.get(f"{path}/as-of", headers=elsewhere, params={"at": "2026-01-01T00:00:00Z"}),
        404,
        "not-found",
    )
    # The ledger's own loads with a record: written by their statement, not afterwards.
    from domain.case import ReliefCase
    from domain.provenance import Actor, Role
    from infra.ledger import request_loads
    from infra.read_audit import ReadRecord

    who = Actor("e", Role.HANDLING_STAFF, "440103")
    latest, past = ReadRecord(case.id, who, "fifth", "/l"), ReadRecord(case.id, who, "sixth", "/p")
    with request_loads(writes=False):
        assert runtime.ledger.cached(ReliefCase, case.id) is not None
        assert runtime.ledger.get(ReliefCase, case.id, recording=latest).status.value == "approved"
    assert runtime.ledger.as_of(case.id, received_at, recording=past).version == 1
    assert latest.written and past.written
    auditor = actor("auditor", "44", "auditor-1")
    reads = ok(client.get(f"{path}/reads", headers=auditor))["items"]
    assert [(r["actor"]["id"], r["purpose"], r["endpoint"]) for r in reads] == [
        ("e", "sixth", "/p"),
        ("e", "fifth", "/l"),
        ("c", "third", f"{path}/as-of"),
        ("b", "second", path),
        ("a", "first", path),
    ]
