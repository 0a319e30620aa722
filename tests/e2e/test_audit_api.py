"""Auditors over HTTP and the command line: verify the chain, read a case as it stood."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.cli import main
from infra.runtime import Runtime
from tests.e2e.http import ok, refused
from tests.factories import approver
from tests.scenario import application, approve

pytestmark = pytest.mark.e2e


def test_verify_and_as_of_over_http(client: TestClient, runtime: Runtime) -> None:
    ledger = runtime.ledger
    case = application(ledger)
    approve(ledger, case)
    approved_at = ledger.get_case(case.id).modified_on
    ledger.close_case(case.id, reason_code="voluntary", provenance=approver())
    report = ok(client.get("/audit/verify"))
    assert report["intact"] and report["intact_up_to"] == runtime.head_position()
    then = ok(client.get(f"/cases/{case.id}/as-of", params={"at": approved_at.isoformat()}))
    assert then["status"] == "approved" and then["as_of"] == approved_at.isoformat()
    assert ok(client.get(f"/cases/{case.id}/as-of", params={"version": 1}))["status"] == (
        "received"
    )
    refused(client.get(f"/cases/{case.id}/as-of"), 422, "invalid-value")
    refused(client.get(f"/cases/{case.id}/as-of", params={"version": 99}), 404, "not-found")
    refused(
        client.get(f"/cases/{case.id}/as-of", params={"at": "2000-01-01T00:00:00+08:00"}),
        404,
        "not-found",
    )

    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE relief_events SET state = state || '\\x20'::bytea WHERE notification_id = 2"
        )
    broken = ok(client.get("/audit/verify"))
    assert (broken["intact"], broken["break_position"], broken["kind"]) == (False, 2, "changed")


def test_the_cli_verifies_and_fails_on_a_broken_chain(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    application(runtime.ledger)
    monkeypatch.setenv("RELIEF_DATABASE_URL", runtime.database_url)
    monkeypatch.setenv("RELIEF_DATA_DIR", str(runtime.settings.data_dir))
    assert main(["audit", "verify"]) == 0
    assert f"intact up to position {runtime.head_position()}" in capsys.readouterr().out
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM relief_events WHERE notification_id = 1")
    assert main(["audit", "verify"]) == 1
    assert "BROKEN at position 1: missing" in capsys.readouterr().out
