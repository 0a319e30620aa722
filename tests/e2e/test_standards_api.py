"""A provincial approver enters the local minimum-living standards, over HTTP and by CLI; a
county officer reads the one in force, and what the ledger knew before a correction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.runtime import Runtime
from projections.registry import ALL_PROJECTIONS
from tests.e2e.http import actor, ok, refused
from tests.integration.helpers import events_written

pytestmark = pytest.mark.e2e

APPROVER = actor("approver", "44", "approver-gd")
SUPERVISOR = actor("supervisor", "44", "supervisor-gd")
OFFICER = actor("handling_staff", "440103", "officer-1", scope="440103")


def catch_up(runtime: Runtime) -> None:
    for projection in ALL_PROJECTIONS:
        runtime.projection_runner(projection).catch_up()


def body(**change: Any) -> dict[str, Any]:
    return {
        "division": "440103",
        "programme": "dibao",
        "effective_from": "2024-07-01",
        "monthly_amount": "1120",
        "source": "county notice 5",
    } | change


def test_set_correct_and_read_as_known_then(client: TestClient, runtime: Runtime) -> None:
    first = ok(client.post("/standards", json=body(), headers=APPROVER), 201)
    assert (first["outcome"], first["monthly_amount"], first["version"]) == ("set", "1120.00", 2)
    again = ok(client.post("/standards", json=body(), headers=APPROVER), 200)
    assert again["outcome"] == "unchanged"
    ok(
        client.post(
            "/standards",
            json=body(division="4401", monthly_amount="1000", effective_from="2024-01-01"),
            headers=SUPERVISOR,
        ),
        201,
    )
    catch_up(runtime)
    before = ok(client.get("/standards", params={"division": "440103"}))["items"]
    assert [i["monthly_amount"] for i in before] == ["1120.00"]
    known_then = before[0]["recorded_at"]

    problem = refused(
        client.post("/standards", json=body(monthly_amount="1210"), headers=APPROVER),
        422,
        "invalid-value",
    )
    assert problem["field"] == "reason"
    fixed = ok(
        client.post(
            "/standards",
            json=body(monthly_amount="1210", reason="1120 was a typing error"),
            headers=APPROVER,
        ),
        201,
    )
    assert (fixed["outcome"], fixed["corrects"], fixed["version"]) == ("corrected", 2, 3)
    catch_up(runtime)

    place = {"division": "440103001001", "programme": "dibao", "at": "2024-08-01"}
    now = ok(client.get("/standards", params=place, headers=OFFICER))
    assert [(i["division"], i["monthly_amount"], i["kind"]) for i in now["items"]] == [
        ("440103", "1210.00", "corrected")
    ]
    then = ok(client.get("/standards", params=place | {"known_at": known_then}))
    assert [(i["monthly_amount"], i["kind"]) for i in then["items"]] == [("1120.00", "set")]
    earlier = ok(client.get("/standards", params=place | {"at": "2024-06-30"}))
    assert [(i["division"], i["monthly_amount"]) for i in earlier["items"]] == [("4401", "1000.00")]
    history = ok(client.get("/standards", params={"division": "440103"}))["items"]
    assert [(i["monthly_amount"], i["superseded_by"]) for i in history] == [
        ("1120.00", history[1]["position"]),
        ("1210.00", None),
    ]


@pytest.mark.parametrize("role", ["handling_staff", "intake_clerk", "auditor", "integration"])
def test_only_an_approver_or_supervisor_sets_standards(
    client: TestClient, runtime: Runtime, role: str
) -> None:
    before = events_written(runtime.database_url)
    refused(
        client.post("/standards", json=body(), headers=actor(role, "440103", "someone")),
        403,
        "not-permitted",
    )
    assert events_written(runtime.database_url) == before


@pytest.mark.parametrize(
    ("change", "rule", "field"),
    [
        ({"division": "440199"}, "unknown-division", "division"),
        ({"division": "440103001"}, "invalid-value", "division"),  # a township publishes none
        ({"division": "44x"}, "invalid-identifier", "division"),
        ({"programme": "temporary"}, "invalid-value", "programme"),
        ({"monthly_amount": "0"}, "invalid-value", "monthly_amount"),
        ({"monthly_amount": "12.345"}, "invalid-request", "monthly_amount"),
        ({"monthly_amount": 1120}, "invalid-request", "monthly_amount"),  # money is text
        ({"currency": "USD"}, "invalid-value", "currency"),
        ({"effective_from": "July"}, "invalid-request", "effective_from"),
        ({"source": ""}, "invalid-request", "source"),
        ({"colour": "red"}, "invalid-request", "colour"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    client: TestClient, runtime: Runtime, change: dict[str, Any], rule: str, field: str
) -> None:
    before = events_written(runtime.database_url)
    problem = refused(client.post("/standards", json=body(**change), headers=APPROVER), 422, rule)
    assert problem["field"] == field
    assert events_written(runtime.database_url) == before


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"at": "2024-01-01"}, "division"),  # in force where?
        ({"division": "44x"}, "division"),
        ({"programme": "temporary"}, "programme"),
        ({"division": "440103", "at": "2024-01-01", "known_at": "2024-01-01T00:00:00"}, "known_at"),
        ({"at": "soon", "division": "440103"}, "at"),
        ({"divison": "440103"}, "divison"),
    ],
)
def test_bad_reads_are_refused_naming_the_field(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    response = client.get("/standards", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_the_cli_sets_and_loads_standards(
    runtime: Runtime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from api.cli import main

    monkeypatch.setenv("RELIEF_DATABASE_URL", runtime.database_url)
    monkeypatch.setenv("RELIEF_DATA_DIR", str(runtime.settings.data_dir))
    who = ["--actor", "approver-gd", "--role", "approver", "--org", "44"]
    one = ["standards", "set", "--division", "440103", "--programme", "tekun"]
    one += ["--effective-from", "2024-01-01", "--amount", "1600", "--source", "notice 7"]
    assert main([*one, *who]) == 0
    assert "set       tekun 440103 from 2024-01-01: 1600.00" in capsys.readouterr().out
    assert main([*one[:-4], "--amount", "1650", "--source", "notice 7", *who]) == 3
    assert "(reason)" in capsys.readouterr().err
    assert (
        main([*one[:-4], "--amount", "1650", "--source", "notice 7", *who, "--reason", "typo"]) == 0
    )
    assert "corrected tekun 440103" in capsys.readouterr().out
    fixed = [*one[:-4], "--amount", "1650", "--source", "notice 7"]
    assert main([*fixed, "--actor", "x", "--role", "supervisor", "--org", "44"]) == 0
    assert "unchanged" in capsys.readouterr().out

    listed = tmp_path / "standards.json"
    entries = [
        {
            "division": "4401",
            "programme": "dibao",
            "effective_from": "2024-01-01",
            "monthly_amount": "1100",
            "source": "city notice",
        },
        {
            "division": "440103",
            "programme": "tekun",
            "effective_from": "2024-01-01",
            "monthly_amount": "1650",
            "source": "notice 7",
        },
    ]
    listed.write_text(json.dumps(entries), encoding="utf-8")
    assert main(["standards", "load", str(listed), *who]) == 0
    assert "2 standards listed: 1 set, 0 corrected, 1 unchanged" in capsys.readouterr().out
    before = events_written(runtime.database_url)
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps(
            [entries[0] | {"effective_from": "2025-01-01"}, entries[1] | {"division": "4499"}]
        ),
        encoding="utf-8",
    )
    assert main(["standards", "load", str(broken), *who]) == 3
    assert "nothing recorded (standards[1].division)" in capsys.readouterr().err
    assert events_written(runtime.database_url) == before
    broken.write_text("[{", encoding="utf-8")
    assert main(["standards", "load", str(broken), *who]) == 2
    catch_up(runtime)
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "SELECT division, programme, monthly_amount, kind FROM read_models.standards"
            " ORDER BY position"
        ).fetchall()
    assert [(d, p, str(a), k) for d, p, a, k in rows] == [
        ("440103", "tekun", "1600.00", "set"),
        ("440103", "tekun", "1650.00", "corrected"),
        ("4401", "dibao", "1100.00", "set"),
    ]
