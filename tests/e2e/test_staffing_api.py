"""A county officer asks: how short are we, where, and since when? Over HTTP."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from domain.commands.purchasing import RemoveStaff
from infra.divisions_file import read_division_file
from infra.runtime import Runtime
from projections.registry import ALL_PROJECTIONS
from tests.conftest import TEST_DIVISIONS
from tests.e2e.http import actor, ok, refused
from tests.factories import BY_OFFICER, approver, hire_staff_for
from tests.scenario import application, approve

pytestmark = pytest.mark.e2e


def catch_up(runtime: Runtime) -> None:
    for projection in ALL_PROJECTIONS:
        runtime.projection_runner(projection).catch_up()


def test_how_short_where_and_since_when(client: TestClient, runtime: Runtime) -> None:
    services = runtime.services
    # Decided by the county's officer and approver: staff records of the county (every
    # decision-maker is one), its two staff.
    approve(runtime, application(runtime, "440103"))
    second = uuid.UUID(hire_staff_for(services, approver("440103")).actor.id)
    catch_up(runtime)
    county = ok(client.get("/staffing", params={"division": "440103", "level": "county"}))
    assert county["policy"].startswith("Guangdong 2019")
    assert county["items"] == [
        {
            "division": "440103",
            "level": "county",
            "households": 1,
            "minimum": 2,
            "government_staff": 2,
            "contractor_staff": 0,
            "staff": 2,
            "shortfall": 0,
            "name": "测试区440103",
        }
    ]
    before_removal = runtime.services.clock.now()

    services.purchasing.remove_staff(
        RemoveStaff(
            staff_id=second,
            on=runtime.services.clock.today(),
            reason="left",
            provenance=BY_OFFICER,
        )
    )
    catch_up(runtime)
    short = ok(client.get("/staffing", params={"short_only": True, "level": "county"}))
    assert [(r["division"], r["shortfall"]) for r in short["items"]] == [("440103", 1)]
    detail = ok(client.get("/staffing/divisions/440103", params={"months": 3}))
    assert detail["shortfall"] == 1
    assert detail["short_since"] is not None
    assert dt.datetime.fromisoformat(detail["short_since"]) > before_removal
    assert len(detail["month_ends"]) == 3
    past = ok(
        client.get(
            "/staffing",
            params={"division": "440103", "level": "county", "at": before_removal.isoformat()},
        )
    )
    assert past["items"][0]["shortfall"] == 0

    summary = ok(client.get("/staffing/summary", params={"division": "44"}))
    assert summary["counties_short"] == 1 and summary["county_shortfall"] == 1
    # the household's township is known too; with nobody assigned there it is short by 2
    assert summary["townships_short"] == 1 and summary["township_shortfall"] == 2
    villages = ok(client.get("/staffing/villages", params={"status": "under_staffed"}))
    # every village of the register without a coordinator, the household's among them
    register_villages = sorted(
        d.code
        for d in read_division_file(TEST_DIVISIONS).divisions
        if len(d.code) == 12 and d.code.startswith("44")  # the province asked about
    )
    assert villages["total"] == len(register_villages)
    assert [v["division"] for v in villages["items"]] == register_villages[:100]  # first page
    assert "440103001001" in register_villages

    refused(client.get("/staffing", params={"at": "2026-01-01T00:00:00"}), 422, "invalid-value")
    refused(client.get("/staffing/divisions/4401"), 422, "invalid-request")


def test_a_band_table_is_recorded_adopted_corrected_never_overwritten(
    client: TestClient,
) -> None:
    table = ok(client.get("/staffing/policies"))["items"]
    assert [(t["effective_from"], t["revision"], t["loaded_by"]) for t in table] == [
        ("2019-01-04", 1, "relief-first-start")
    ]
    assert "粤民发" in table[0]["source"] and table[0]["current"] is True
    document = {
        **table[0]["document"],
        "name": "Stricter 2026",
        "effective_from": "2026-01-01",
        "county": [{"households_from": 0, "minimum": 3}],
        "source": "notice of 2026",
    }
    clerk = actor("intake_clerk", "440103", "clerk-1")
    refused(client.post("/staffing/policies", headers=clerk, json=document), 403, "not-permitted")
    officer = actor("handling_staff", "440103", "officer-1")
    refused(client.post("/staffing/policies", headers=officer, json=document), 403, "not-permitted")
    province = actor("approver", "44", "province-1")
    for bad, field in (
        ({"county": []}, "county"),
        ({"township": [{"households_from": 0, "minimum": "two"}]}, "township[0]"),
        ({"village": [1]}, "village"),
        ({"source": ""}, "source"),
        ({"effective_from": "2026-13-01"}, "effective_from"),
    ):
        problem = refused(
            client.post("/staffing/policies", headers=province, json={**document, **bad}),
            422,
            "invalid-value",
        )
        assert problem["field"] == field, problem
    assert len(ok(client.get("/staffing/policies"))["items"]) == 1  # refusals record nothing

    adopted = ok(client.post("/staffing/policies", headers=province, json=document), 201)
    assert (adopted["outcome"], adopted["revision"], adopted["corrects"]) == ("adopted", 1, None)
    again = ok(client.post("/staffing/policies", headers=province, json=document), 200)
    assert again["outcome"] == "unchanged" and again["loaded_at"] == adopted["loaded_at"]
    detail = ok(client.get("/staffing/divisions/440999", params={"months": 0}))
    assert detail["minimum"] == 3 and detail["policy"] == "Stricter 2026"
    tag = client.get("/staffing", params={"division": "440999"}).headers["ETag"]

    corrected_table = {**document, "county": [{"households_from": 0, "minimum": 4}]}
    problem = refused(
        client.post("/staffing/policies", headers=province, json=corrected_table),
        422,
        "invalid-value",
    )
    assert problem["field"] == "reason"  # a correction says why
    supervisor = actor("supervisor", "44", "supervisor-1")
    corrected = ok(
        client.post(
            "/staffing/policies",
            headers=supervisor,
            json={**corrected_table, "reason": "the county minimum was misprinted"},
        ),
        201,
    )
    assert (corrected["outcome"], corrected["revision"], corrected["corrects"]) == (
        "corrected",
        2,
        1,
    )
    versions = ok(client.get("/staffing/policies"))["items"]
    assert [
        (v["effective_from"], v["revision"], v["corrects"], v["corrected_by"]) for v in versions
    ] == [
        ("2019-01-04", 1, None, None),
        ("2026-01-01", 1, None, 2),
        ("2026-01-01", 2, 1, None),
    ]
    assert [v["current"] for v in versions] == [True, False, True]
    assert versions[2]["reason"] == "the county minimum was misprinted"
    assert versions[2]["loaded_by"] == "supervisor-1"
    assert versions[1]["position"] < versions[2]["position"]

    now = dt.datetime.now(dt.UTC).isoformat()
    scoped = {"division": "440999", "at": now}
    assert ok(client.get("/staffing", params=scoped))["items"][0]["minimum"] == 4
    assert client.get("/staffing", params={"division": "440999"}).headers["ETag"] != tag
    known_before = {**scoped, "known_at": adopted["loaded_at"]}
    assert ok(client.get("/staffing", params=known_before))["items"][0]["minimum"] == 3
    as_known = ok(client.get("/staffing/policies", params={"known_at": adopted["loaded_at"]}))
    assert [(v["revision"], v["current"]) for v in as_known["items"]] == [(1, True), (1, True)]
    assert ok(client.get("/staffing/summary", params=scoped))["county_shortfall"] == 4
    assert ok(client.get("/staffing/summary", params=known_before))["county_shortfall"] == 3
    old = ok(
        client.get(
            "/staffing/divisions/440999", params={"months": 0, "known_at": adopted["loaded_at"]}
        )
    )
    assert old["minimum"] == 3
    problem = refused(
        client.get("/staffing", params={**scoped, "known_at": "2026-01-01T00:00:00"}),
        422,
        "invalid-value",
    )
    assert problem["field"] == "known_at"


def test_waiting_cross_region_and_metrics(client: TestClient, runtime: Runtime) -> None:
    application(runtime, "440103", window="440305001")  # received in Shenzhen for Guangzhou
    application(runtime, "440103")
    catch_up(runtime)
    waiting = ok(client.get("/caseload/waiting", params={"division": "4401"}))["items"]
    assert waiting[0]["county"] == "440103" and waiting[0]["stage"] == "received"
    assert waiting[0]["applications"] == 2 and waiting[0]["oldest_application_days"] >= 0
    flows = ok(client.get("/caseload/cross-region"))["items"]
    assert flows == [
        {"county": "440103", "out": 0, "in": 1, "county_name": "测试区440103"},
        {"county": "440305", "out": 1, "in": 0, "county_name": "测试区440305"},
    ]
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    head = runtime.head_position()
    samples = {
        (s.name, s.labels.get("projection")): s.value
        for family in text_string_to_metric_families(metrics.text)
        for s in family.samples
    }
    assert samples["relief_projection_lag_events", "caseload"] == 0
    assert samples["relief_projection_head", "staffing"] == head
    assert samples["relief_projection_halted", "caseload"] == 0
