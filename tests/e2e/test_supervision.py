"""A supervisor over HTTP: from "show me this contractor's red flags" to a closed investigation
and recorded sanctions, all as events; and who may not see or do any of it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.runtime import Runtime
from projections.red_flags.projection import RedFlagsProjection
from tests.e2e.http import actor, contracted, ok, refused
from tests.factories import credit_code, resident_id
from tests.scenario import application, approve

pytestmark = pytest.mark.e2e

OFFICER = actor("handling_staff", "440103", "officer-5", scope="440103")
SUPERVISOR = actor("supervisor", "4401", "supervisor-gz", correlation="sup-2026-17", scope="4401")
SHENZHEN_SUPERVISOR = actor("supervisor", "4403", "supervisor-sz", scope="4403")
AUDITOR = actor("auditor", "44", "auditor-1")
UTC8 = dt.timezone(dt.timedelta(hours=8))


def catch_up(runtime: Runtime) -> None:
    runtime.projection_runner(RedFlagsProjection).catch_up()


def misconduct(client: TestClient, runtime: Runtime) -> dict[str, Any]:
    """A contractor with a contract whose scope was narrowed back in time after its staff
    recorded care under it, and whose value was raised after a failing evaluation."""
    today = runtime.services.clock.today()
    began = (today - dt.timedelta(days=60)).isoformat()
    code, contractor, contract = contracted(
        client,
        OFFICER,
        name="Harmony Care Centre",
        work_items=["care_and_nursing", "psychological_counselling"],
        service_area=["440103"],
        start=began,
        end=(today + dt.timedelta(days=300)).isoformat(),
        awarded_on=began,
    )
    kid = contract["contract_id"]
    case = application(runtime, "440103")
    approve(runtime, case)
    yesterday = today - dt.timedelta(days=1)
    care = dt.datetime(yesterday.year, yesterday.month, yesterday.day, 10, tzinfo=UTC8)
    worker = actor("contractor_staff", code, "worker-7", scope="440103")
    ok(
        client.post(
            f"/cases/{case.id}/services",
            headers=worker,
            json={
                "work_item": "care_and_nursing",
                "contract_id": kid,
                "start": care.isoformat(),
                "end": (care + dt.timedelta(hours=1)).isoformat(),
                "place": case.registered_division.code,
            },
        )
    )
    ok(
        client.post(
            f"/contracts/{kid}/invoices",
            headers=OFFICER,
            json={
                "invoice_number": "HC-2026-001",
                "period_start": (today - dt.timedelta(days=60)).isoformat(),
                "period_end": (today - dt.timedelta(days=31)).isoformat(),
                "amount": "8000",
            },
        )
    )
    ok(
        client.post(
            f"/contracts/{kid}/evaluations",
            headers=SUPERVISOR,
            json={
                "period_start": (today - dt.timedelta(days=60)).isoformat(),
                "period_end": (today - dt.timedelta(days=1)).isoformat(),
                "score": "45",
            },
        )
    )
    # Care was never bought after all, from ten days ago (recorded today) ...
    ok(
        client.post(
            f"/contracts/{kid}/amendments",
            headers=OFFICER,
            json={
                "reason": "care moved to another provider",
                "effective_from": (today - dt.timedelta(days=10)).isoformat(),
                "work_items": ["psychological_counselling"],
            },
        )
    )
    # ... and the value is raised right after the failing evaluation.
    ok(
        client.post(
            f"/contracts/{kid}/amendments",
            headers=OFFICER,
            json={"reason": "more households", "value": "150000.00"},
        )
    )
    catch_up(runtime)
    return {
        "code": code,
        "cid": contractor["contractor_id"],
        "kid": kid,
        "case": case,
        "worker": worker,
    }


def test_from_red_flags_to_a_closed_investigation_and_sanctions(
    client: TestClient, runtime: Runtime
) -> None:
    story = misconduct(client, runtime)
    cid, kid, worker = story["cid"], story["kid"], story["worker"]
    today = runtime.services.clock.today()

    # 1. "Show me this contractor's red flags."
    rules = ok(client.get("/alerts/rules", headers=SUPERVISOR))["items"]
    assert len(rules) == 22 and all(r["description"] for r in rules)
    assert "household_shrank_unreviewed" in {r["rule"] for r in rules}
    listed = ok(client.get("/alerts", params={"contractor_id": cid}, headers=SUPERVISOR))
    alerts = {a["rule"]: a for a in listed["items"]}
    assert set(alerts) == {"work_outside_scope", "value_raised_after_poor_evaluation"}
    assert listed["next_page"] is None
    for alert in alerts.values():
        assert alert["status"] == "open" and alert["review_status"] == "unreviewed"
        assert alert["contractor_id"] == cid and alert["county"] == "440103"
        assert alert["evidence"] and alert["first_seen"] <= alert["last_seen"]
    assert "care_and_nursing" in alerts["work_outside_scope"]["reason"]
    page = ok(client.get("/alerts", params={"contractor_id": cid, "limit": 1}, headers=SUPERVISOR))
    following = ok(
        client.get(
            "/alerts",
            params={"contractor_id": cid, "limit": 1, "after": page["next_page"]},
            headers=SUPERVISOR,
        )
    )
    assert {page["items"][0]["alert_id"], following["items"][0]["alert_id"]} == {
        a["alert_id"] for a in alerts.values()
    }
    by_rule = ok(
        client.get(
            "/alerts",
            params={"county": "440103", "rule": "work_outside_scope", "status": "open"},
            headers=SUPERVISOR,
        )
    )
    assert [a["alert_id"] for a in by_rule["items"]] == [alerts["work_outside_scope"]["alert_id"]]
    one = ok(client.get(f"/alerts/{alerts['work_outside_scope']['alert_id']}", headers=SUPERVISOR))
    assert one["investigations"] == [] and one["review_status"] == "unreviewed"

    # 2. Open an investigation from them.
    alert_ids = [
        alerts["work_outside_scope"]["alert_id"],
        alerts["value_raised_after_poor_evaluation"]["alert_id"],
    ]
    response = client.post(
        "/investigations",
        headers=SUPERVISOR,
        json={
            "subject_kind": "contractor",
            "subject_id": cid,
            "alert_ids": alert_ids,
            "grounds": "care recorded outside the contract; value raised after a failing score",
        },
    )
    opened = ok(response, 201)
    iid = opened["investigation_id"]
    assert response.headers["Location"] == f"/investigations/{iid}"
    assert (opened["number"], opened["status"], opened["subject"]["id"]) == (1, "open", cid)
    assert [a["alert_id"] for a in opened["alerts"]] == alert_ids
    catch_up(runtime)
    under_review = ok(
        client.get(
            "/alerts",
            params={"contractor_id": cid, "review_status": "under_review"},
            headers=SUPERVISOR,
        )
    )
    assert {a["alert_id"] for a in under_review["items"]} == set(alert_ids)
    assert all(a["investigation_id"] == iid for a in under_review["items"])

    # 3. A note and findings.
    applicant = story["case"].applicant_id
    noted = ok(
        client.post(
            f"/investigations/{iid}/notes",
            headers=SUPERVISOR,
            json={"text": f"visited the household of {applicant}: no carer ever came"},
        )
    )
    assert applicant not in str(noted) and applicant[-4:] in noted["notes"][0]["text"]
    refused(
        client.post(
            f"/investigations/{iid}/closure",
            headers=SUPERVISOR,
            json={"outcome": "no_case_to_answer", "summary": "too early"},
        ),
        409,
        "invalid-state",
    )
    refused(
        client.post(
            f"/investigations/{iid}/findings",
            headers=SUPERVISOR,
            json={
                "summary": "s",
                "verdicts": [{"alert_id": alert_ids[0], "verdict": "dismissed"}],
            },
        ),
        422,
        "invalid-value",
    )
    found = ok(
        client.post(
            f"/investigations/{iid}/findings",
            headers=SUPERVISOR,
            json={
                "summary": "care invoiced and recorded but never delivered; the raise rewarded it",
                "verdicts": [
                    {"alert_id": alert_ids[0], "verdict": "confirmed"},
                    {
                        "alert_id": alert_ids[1],
                        "verdict": "confirmed",
                        "reason": "no new households",
                    },
                ],
            },
        )
    )
    assert [a["verdict"] for a in found["alerts"]] == ["confirmed", "confirmed"]

    # 4. Close with a violation, a fine, the contract's termination and a ban.
    terminated_at = runtime.services.clock.now().isoformat()
    ban_end = (today + dt.timedelta(days=3 * 365)).isoformat()
    closed = ok(
        client.post(
            f"/investigations/{iid}/closure",
            headers=SUPERVISOR,
            json={
                "outcome": "violation",
                "summary": "falsified service records (弄虚作假), seriously",
                "violation": {
                    "contract_id": kid,
                    "kind": "falsification",
                    "severity": "grave",
                    "description": "care recorded and invoiced that was never delivered",
                    "penalty": {"kind": "fine", "basis": "contract art. 12", "amount": "20000"},
                    "termination": {
                        "effective_at": terminated_at,
                        "basis": "contract",
                        "reason": "falsified records",
                    },
                    "ban": {
                        "start": today.isoformat(),
                        "end": ban_end,
                        "reason": "falsified records (弄虚作假)",
                        "deciding_unit": "440103",
                    },
                },
            },
        )
    )
    assert closed["status"] == "closed" and closed["outcome"] == "violation"
    assert closed["closure"]["violation_number"] == 1
    assert [s["kind"] for s in closed["closure"]["sanctions"]] == [
        "violation",
        "penalty",
        "termination",
        "ban",
    ]

    # 5. The contract is terminated and the contractor banned, read back over HTTP.
    contract = ok(client.get(f"/contracts/{kid}", headers=SUPERVISOR))
    assert contract["status"] == "terminated"
    assert contract["violations"][0]["kind"] == "falsification"
    cited = {ref["position"] for ref in contract["violations"][0]["evidence"] if "position" in ref}
    assert set(alerts["work_outside_scope"]["evidence"]) <= cited
    assert {"aggregate_id": iid, "version": 3} in contract["violations"][0]["evidence"]
    assert contract["penalties"][0]["amount"] == "20000.00"
    contractor = ok(client.get(f"/contractors/{cid}", headers=SUPERVISOR))
    assert contractor["status"] == "banned" and contractor["bans"][0]["end"] == ban_end
    refused(
        client.post(
            "/contracts",
            headers=OFFICER,
            json={
                "contractor_id": cid,
                "purchaser": "440103",
                "work_items": ["care_and_nursing"],
                "service_area": ["440103"],
                "start": today.isoformat(),
                "end": ban_end,
                "value": "1000",
                "funding_source": "special_relief_funds",
            },
        ),
        409,
        "contractor-banned",
    )

    # 6. The alerts show confirmed.
    catch_up(runtime)
    confirmed = ok(
        client.get(
            "/alerts", params={"contractor_id": cid, "review_status": "confirmed"}, headers=AUDITOR
        )
    )
    assert {a["alert_id"] for a in confirmed["items"]} == set(alert_ids)
    assert confirmed["items"][0]["reviewed_by"] == "supervisor-gz"
    detail = ok(client.get(f"/alerts/{alert_ids[1]}", headers=SUPERVISOR))
    assert detail["review_reason"] == "no new households"
    assert detail["investigations"] == [
        {
            "investigation_id": iid,
            "number": 1,
            "subject": {"kind": "contractor", "id": cid},
            "status": "closed",
            "outcome": "violation",
        }
    ]

    # 7. A closed investigation takes no more changes.
    for path, body in (
        ("notes", {"text": "one more thing"}),
        ("findings", {"summary": "s", "verdicts": []}),
        ("closure", {"outcome": "no_case_to_answer", "summary": "again"}),
    ):
        refused(
            client.post(f"/investigations/{iid}/{path}", headers=SUPERVISOR, json=body),
            409,
            "invalid-state",
        )

    # 8. The dossier: all of it on one timeline.
    dossier = ok(client.get(f"/contractors/{cid}/dossier", headers=SUPERVISOR))
    assert dossier["contractor"]["status"] == "banned"
    assert [c["contract_id"] for c in dossier["contracts"]] == [kid]
    assert len(dossier["contracts"][0]["terms_history"]) == 3
    assert dossier["services"] == {"total_recorded": 1, "shown": 1}
    assert [i["investigation_id"] for i in dossier["investigations"]] == [iid]
    assert len(dossier["sanctions"]["violations"]) == 1
    assert len(dossier["sanctions"]["bans"]) == 1
    timeline = dossier["timeline"]
    kinds = [item["kind"] for item in timeline]
    for kind in (
        "registered",
        "contract_awarded",
        "service",
        "invoice",
        "evaluation",
        "contract_amended",
        "alert",
        "investigation_opened",
        "investigation_note",
        "investigation_findings",
        "violation",
        "penalty",
        "termination",
        "ban",
        "investigation_closed",
    ):
        assert kind in kinds, kind
    assert kinds.count("alert") == 2 and kinds.count("contract_amended") == 2
    positions = [item["position"] for item in timeline]
    assert positions == sorted(positions)
    assert kinds.index("registered") < kinds.index("service") < kinds.index("alert")
    assert kinds.index("investigation_opened") < kinds.index("violation")
    assert all(item["at"] and item["description"] for item in timeline)
    assert applicant not in str(dossier)  # never a resident ID number in clear
    assert not dossier["truncated"]
    ok(client.get(f"/contractors/{cid}/dossier", headers=AUDITOR))

    # 9. Every step is an event in the log, the sanctions tied to the closure.
    history = ok(client.get(f"/investigations/{iid}/history", headers=AUDITOR))["items"]
    assert [e["type"] for e in history] == [
        "Investigation.Opened",
        "Investigation.NoteAdded",
        "Investigation.FindingsRecorded",
        "Investigation.Closed",
    ]
    assert all(e["actor"]["id"] == "supervisor-gz" for e in history)
    assert applicant not in str(history)
    contract_events = ok(client.get(f"/contracts/{kid}/history", headers=AUDITOR))["items"]
    sanctions = [e for e in contract_events if e["position"] > history[-2]["position"]]
    assert [e["type"] for e in sanctions] == [
        "Contract.ViolationRecorded",
        "Contract.PenaltyImposed",
        "Contract.Terminated",
    ]
    banned = ok(client.get(f"/contractors/{cid}/history", headers=AUDITOR))["items"][-1]
    assert banned["type"] == "Contractor.Banned"
    closing = [*sanctions, banned, history[-1]]
    assert {e["correlation_id"] for e in closing} == {"sup-2026-17"}
    assert sorted(e["position"] for e in closing) == list(
        range(min(e["position"] for e in closing), max(e["position"] for e in closing) + 1)
    )  # one save: consecutive positions

    # 10. Contractor staff see no alert, no dossier, no investigation.
    refused(client.get("/alerts", headers=worker), 403, "not-permitted")
    refused(client.get(f"/alerts/{alert_ids[0]}", headers=worker), 403, "not-permitted")
    refused(client.get(f"/contractors/{cid}/dossier", headers=worker), 403, "not-permitted")
    refused(client.get(f"/investigations/{iid}", headers=worker), 403, "not-permitted")
    refused(client.get("/alerts", headers=OFFICER), 403, "not-permitted")


def test_a_supervisor_of_another_prefecture_sees_none_of_it(
    client: TestClient, runtime: Runtime
) -> None:
    story = misconduct(client, runtime)
    cid = story["cid"]
    listed = ok(client.get("/alerts", params={"contractor_id": cid}, headers=SUPERVISOR))["items"]
    alert_ids = [a["alert_id"] for a in listed]
    opened = ok(
        client.post(
            "/investigations",
            headers=SUPERVISOR,
            json={
                "subject_kind": "contractor",
                "subject_id": cid,
                "alert_ids": alert_ids,
                "grounds": "g",
            },
        ),
        201,
    )
    iid = opened["investigation_id"]
    sz = SHENZHEN_SUPERVISOR
    assert ok(client.get("/alerts", params={"contractor_id": cid}, headers=sz))["items"] == []
    refused(client.get(f"/alerts/{alert_ids[0]}", headers=sz), 404, "not-found")
    refused(client.get(f"/contractors/{cid}/dossier", headers=sz), 404, "not-found")
    refused(client.get(f"/investigations/{iid}", headers=sz), 404, "not-found")
    refused(client.get(f"/investigations/{iid}/history", headers=sz), 404, "not-found")
    refused(
        client.post(f"/investigations/{iid}/notes", headers=sz, json={"text": "x"}),
        404,
        "not-found",
    )
    # Out of scope reads as absent: the same problem as an unknown id.
    unknown = client.get(f"/investigations/{uuid.uuid4()}", headers=sz).json()
    hidden = client.get(f"/investigations/{iid}", headers=sz).json()
    assert (unknown["type"], unknown["title"]) == (hidden["type"], hidden["title"])
    refused(client.get("/alerts", params={"county": "4401"}, headers=sz), 403, "not-permitted")
    opening = refused(
        client.post(
            "/investigations",
            headers=sz,
            json={
                "subject_kind": "contractor",
                "subject_id": cid,
                "alert_ids": alert_ids,
                "grounds": "g",
            },
        ),
        404,
        "not-found",
    )
    assert opening["field"] == "subject_id"
    # A Shenzhen contractor's investigation cannot cite Guangzhou's alerts either.
    sz_code = credit_code("52", division="440305")
    sz_contractor = ok(
        client.post(
            "/contractors",
            headers=OFFICER,
            json={
                "name": "Bay Care",
                "contractor_type": "social_organisation",
                "credit_code": sz_code,
            },
        ),
        201,
    )
    citing = refused(
        client.post(
            "/investigations",
            headers=sz,
            json={
                "subject_kind": "contractor",
                "subject_id": sz_contractor["contractor_id"],
                "alert_ids": alert_ids,
                "grounds": "g",
            },
        ),
        404,
        "not-found",
    )
    assert citing["field"] == "alert_ids[0]"
    # Nothing was recorded by the refused commands.
    assert ok(client.get(f"/investigations/{iid}", headers=SUPERVISOR))["version"] == 1


def test_no_case_to_answer_dismisses_with_reasons(client: TestClient, runtime: Runtime) -> None:
    story = misconduct(client, runtime)
    cid = story["cid"]
    listed = ok(client.get("/alerts", params={"contractor_id": cid}, headers=SUPERVISOR))["items"]
    iid = ok(
        client.post(
            "/investigations",
            headers=SUPERVISOR,
            json={
                "subject_kind": "contractor",
                "subject_id": cid,
                "alert_ids": [a["alert_id"] for a in listed],
                "grounds": "g",
            },
        ),
        201,
    )["investigation_id"]
    ok(
        client.post(
            f"/investigations/{iid}/findings",
            headers=SUPERVISOR,
            json={
                "summary": "the care was bought under a framework agreement",
                "verdicts": [
                    {"alert_id": a["alert_id"], "verdict": "dismissed", "reason": "framework"}
                    for a in listed
                ],
            },
        )
    )
    refused(
        client.post(
            f"/investigations/{iid}/closure",
            headers=SUPERVISOR,
            json={
                "outcome": "violation",
                "summary": "s",
                "violation": {
                    "contract_id": story["kid"],
                    "kind": "breach",
                    "severity": "minor",
                    "description": "d",
                },
            },
        ),
        409,
        "invalid-state",
    )
    closed = ok(
        client.post(
            f"/investigations/{iid}/closure",
            headers={**SUPERVISOR, "If-Match": '"2"'},
            json={"outcome": "no_case_to_answer", "summary": "explained by the framework"},
        )
    )
    assert closed["outcome"] == "no_case_to_answer" and closed["closure"]["sanctions"] == []
    assert ok(client.get(f"/contracts/{story['kid']}", headers=SUPERVISOR))["violations"] == []
    catch_up(runtime)
    dismissed = ok(
        client.get(
            "/alerts",
            params={"contractor_id": cid, "review_status": "dismissed"},
            headers=SUPERVISOR,
        )
    )["items"]
    assert len(dismissed) == 2 and {a["review_reason"] for a in dismissed} == {"framework"}
    assert all(a["status"] == "open" for a in dismissed)  # the engine's status is its own


def test_staff_declare_their_interests_or_the_staff_office_does(
    client: TestClient, runtime: Runtime
) -> None:
    staff = ok(
        client.post(
            "/staff",
            headers=OFFICER,
            json={"name": "Huang Min", "kind": "handling_staff", "government_unit": "440103"},
        ),
        201,
    )
    sid = staff["staff_id"]
    own, spouse = resident_id(), resident_id()
    body = {"resident_id": own, "relatives": [{"resident_id": spouse, "kinship": "spouse"}]}
    themself = actor("intake_clerk", "440103", sid, scope="440103")
    another_clerk = actor("intake_clerk", "440103", "clerk-2", scope="440103")
    refused(
        client.post(f"/staff/{sid}/interests", headers=another_clerk, json=body),
        403,
        "not-permitted",
    )
    refused(
        client.post(f"/staff/{sid}/interests", headers=SUPERVISOR, json=body), 403, "not-permitted"
    )
    contractor_worker = actor("contractor_staff", credit_code("52"), "w-1", scope="440103")
    refused(
        client.post(f"/staff/{sid}/interests", headers=contractor_worker, json=body),
        404,
        "not-found",
    )
    declared = ok(client.post(f"/staff/{sid}/interests", headers=themself, json=body))
    assert declared["declared_relatives"] == 1
    assert own not in str(declared) and spouse not in str(declared)
    by_office = ok(
        client.post(f"/staff/{sid}/interests", headers=OFFICER, json={"resident_id": own})
    )
    assert by_office["declared_relatives"] == 0  # a new declaration replaces the old one
    bad = refused(
        client.post(
            f"/staff/{sid}/interests",
            headers=OFFICER,
            json={"resident_id": own, "relatives": [{"resident_id": own, "kinship": "spouse"}]},
        ),
        422,
        "invalid-value",
    )
    assert bad["field"] == "relatives[0].resident_id"
    wrong = refused(
        client.post(
            f"/staff/{sid}/interests", headers=OFFICER, json={"resident_id": "440103198503071235"}
        ),
        422,
        "invalid-identifier",
    )
    assert wrong["field"] == "resident_id"
    history = ok(client.get(f"/staff/{sid}/history", headers=OFFICER))["items"]
    assert [e["type"] for e in history].count("StaffMember.InterestsDeclared") == 2
    assert own not in str(history) and spouse not in str(history)


def test_a_list_of_alerts_keeps_its_tag_while_only_the_facts_behind_it_change(
    client: TestClient, runtime: Runtime
) -> None:
    """The alerts' tag follows the alert tables, not every fact the rules keep: an approved
    case (facts the rules read, no alert) leaves it; alerts raised move it."""
    first = client.get("/alerts", headers=SUPERVISOR)
    tag = first.headers["ETag"]
    approve(runtime, application(runtime, "440103"))
    catch_up(runtime)
    with runtime.pool.connection() as conn:
        written = dict(
            conn.execute(
                "SELECT relname, content_position FROM rm_red_flags_g1._table_marks"
            ).fetchall()
        )
        content = conn.execute("SELECT content_position FROM rm_red_flags_g1._tracking").fetchone()
    assert content is not None and written["rf_case"] == content[0] > 0  # facts were written
    assert written.get("alerts", 0) < content[0]
    same = client.get("/alerts", headers={**SUPERVISOR, "If-None-Match": tag})
    assert same.status_code == 304
    misconduct(client, runtime)
    moved = client.get("/alerts", headers={**SUPERVISOR, "If-None-Match": tag})
    assert moved.status_code == 200 and moved.headers["ETag"] != tag
    assert {a["rule"] for a in moved.json()["items"]} >= {"work_outside_scope"}
