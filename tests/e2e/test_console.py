"""The console under /console, driven over HTTP as a person would: sign in with a token,
navigate, open an investigation from alerts and close it with a sanction; an auditor replays a
case as of its decision. And for every role of the access matrix, the console answers as the
API does: it shows nothing the API would refuse and refuses nothing it would allow."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from domain.provenance import Role
from infra.read_audit import reads_of
from infra.runtime import Runtime
from projections.caseload import CaseloadProjection
from projections.staffing import StaffingProjection
from tests.e2e.console import page, sign_in, submit
from tests.e2e.http import ok
from tests.e2e.test_supervision import catch_up, misconduct
from tests.factories import token
from tests.scenario import application, approve

pytestmark = pytest.mark.e2e

SUPERVISOR_TOKEN = token("supervisor", "4401", "supervisor-gz", "4401")
SUPERVISOR = {"Authorization": f"Bearer {SUPERVISOR_TOKEN}"}


def project(runtime: Runtime) -> None:
    for projection in (CaseloadProjection, StaffingProjection):
        runtime.projection_runner(projection).catch_up()
    catch_up(runtime)


def test_without_a_session_the_console_asks_to_sign_in(client: TestClient) -> None:
    answer = client.get("/console/", headers={"Authorization": ""}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    login = page(client, "/console/login")
    assert "登录" in login.text and "htmx" in login.text
    # The htmx script and the styles come from the package, not from elsewhere.
    for asset in re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', login.text):
        assert asset.startswith("/console/static/")
        assert page(client, asset).status_code == 200


def test_a_bad_token_is_refused_at_sign_in(client: TestClient) -> None:
    login = page(client, "/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', login.text)
    assert nonce is not None
    answer = client.post(
        "/console/login",
        data={"nonce": nonce.group(1), "token": "not-a-token"},
        headers={"Authorization": ""},
    )
    assert answer.status_code == 401 and "invalid token" in answer.text
    assert "relief_console" not in client.cookies


def test_session_cookie_is_http_only_and_strict(client: TestClient) -> None:
    login = page(client, "/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', login.text)
    assert nonce is not None
    answer = client.post(
        "/console/login",
        data={"nonce": nonce.group(1), "token": SUPERVISOR_TOKEN},
        headers={"Authorization": ""},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie


def test_supervisor_takes_alerts_to_an_investigation_closed_with_sanctions(
    client: TestClient, runtime: Runtime
) -> None:
    story = misconduct(client, runtime)
    cid, kid = story["cid"], story["kid"]
    project(runtime)
    sign_in(client, SUPERVISOR_TOKEN)

    overview = page(client, "/console/")
    assert overview.status_code == 200
    assert 'href="?division=440103&amp;level=township"' in overview.text  # drill-down
    township = page(client, "/console/", division="440103", level="township")
    assert "440103001" in township.text
    english = page(client, "/console/", lang="en")
    assert "Caseload by programme and status" in english.text
    assert "案件量" not in page(client, "/console/", lang="en").text
    page(client, "/console/", lang="zh")

    queue = page(client, "/console/alerts", contractor_id=cid, status="open")
    assert queue.status_code == 200
    alert_ids = re.findall(r'name="alert_ids" value="([0-9a-f-]{36})"', queue.text)
    assert len(alert_ids) == 2
    evidence = re.findall(r'href="/console/events/(\d+)"', queue.text)
    assert evidence
    shown = page(client, f"/console/events/{evidence[0]}")
    assert shown.status_code == 200 and f'id="p{evidence[0]}"' in shown.text

    form = page(client, "/console/investigations", alert_ids=alert_ids)
    assert form.status_code == 200 and cid in form.text
    opened = submit(
        client,
        "/console/investigations",
        form.text,
        {
            "subject_kind": "contractor",
            "subject_id": cid,
            "alert_ids": alert_ids,
            "grounds": "care recorded outside the contract; value raised after a failing score",
        },
    )
    assert opened.status_code == 303, opened.text
    path = opened.headers["location"]
    iid = path.rsplit("/", 1)[1]
    catch_up(runtime)
    listing = page(client, "/console/investigations")
    assert iid in listing.text

    detail = page(client, path)
    noted = submit(client, f"{path}/notes", detail.text, {"text": "no carer ever came"})
    assert noted.status_code == 303, noted.text
    detail = page(client, path)
    assert "no carer ever came" in detail.text
    verdicts = {f"verdict_{a}": "confirmed" for a in alert_ids}
    found = submit(
        client,
        f"{path}/findings",
        detail.text,
        {"summary": "care invoiced but never delivered", "alert_id": alert_ids, **verdicts},
    )
    assert found.status_code == 303, found.text
    detail = page(client, path)
    today = runtime.services.clock.today()
    closed = submit(
        client,
        f"{path}/closure",
        detail.text,
        {
            "outcome": "violation",
            "summary": "falsified service records",
            "contract_id": kid,
            "violation_kind": "falsification",
            "severity": "serious",
            "description": "care recorded that was never delivered",
            "penalty_kind": "fine",
            "penalty_basis": "contract clause 9",
            "penalty_amount": "5000.00",
            "ban_start": today.isoformat(),
            "ban_end": (today + dt.timedelta(days=365)).isoformat(),
            "ban_reason": "falsification",
            "ban_unit": "440103",
        },
    )
    assert closed.status_code == 303, closed.text
    # What the API now says of it: closed with a violation; the contractor banned.
    api = ok(client.get(f"/investigations/{iid}", headers=SUPERVISOR))
    assert api["status"] == "closed" and api["outcome"] == "violation"
    contractor = ok(client.get(f"/contractors/{cid}", headers=SUPERVISOR))
    assert contractor["status"] == "banned"
    dossier = page(client, f"/console/contractors/{cid}")
    assert dossier.status_code == 200 and "dossier-timeline" in dossier.text
    catch_up(runtime)
    assert iid not in page(client, "/console/investigations").text  # no longer open


def test_a_form_without_its_csrf_token_changes_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    story = misconduct(client, runtime)
    sign_in(client, SUPERVISOR_TOKEN)
    alert = ok(client.get("/alerts", params={"contractor_id": story["cid"]}, headers=SUPERVISOR))
    answer = client.post(
        "/console/investigations",
        data={
            "subject_kind": "contractor",
            "subject_id": story["cid"],
            "alert_ids": [alert["items"][0]["alert_id"]],
            "grounds": "forged",
        },
        headers={"Authorization": ""},
    )
    assert answer.status_code == 422 and "CSRF" in answer.text
    assert (
        ok(client.get(f"/contractors/{story['cid']}/dossier", headers=SUPERVISOR))["investigations"]
        == []
    )


def test_auditor_replays_a_case_as_of_its_decision(client: TestClient, runtime: Runtime) -> None:
    case = application(runtime, "440103")
    approve(runtime, case)
    project(runtime)
    sign_in(client, token("auditor", "44", "auditor-7", "44"))
    asked = page(client, f"/console/cases/{case.id}")
    assert asked.status_code == 200 and 'name="purpose"' in asked.text  # purpose first
    shown = page(client, f"/console/cases/{case.id}", purpose="annual audit")
    assert shown.status_code == 200
    assert "Approved" in shown.text and "在保" in shown.text  # decision view, status
    assert case.applicant_id not in shown.text  # masked
    decided = re.search(r"Approved · v(\d+) · ([0-9-]+ [0-9:]+)", shown.text)
    assert decided is not None
    before = page(
        client,
        f"/console/cases/{case.id}",
        purpose="annual audit",
        at=(dt.datetime.now(dt.UTC) - dt.timedelta(days=3650)).isoformat(),
    )
    assert before.status_code == 404  # the case did not exist then
    at_decision = page(
        client,
        f"/console/cases/{case.id}",
        purpose="annual audit",
        at=dt.datetime.now(dt.UTC).isoformat(),
    )
    assert at_decision.status_code == 200 and 'class="asof"' in at_decision.text
    # The reads are recorded and listed, with their purpose.
    auditor = {"Authorization": f"Bearer {token('auditor', '44', 'auditor-7', '44')}"}
    reads = ok(client.get(f"/cases/{case.id}/reads", headers=auditor))
    assert any(r["purpose"] == "annual audit" for r in reads["items"]), reads
    assert "annual audit" in at_decision.text
    # An auditor may not reveal ID numbers: the API refuses it, so does the console.
    refused = submit(
        client, f"/console/cases/{case.id}/reveal", shown.text, {"purpose": "curiosity"}
    )
    assert refused.status_code == 403


def test_reveal_is_a_recorded_purpose_stated_read(client: TestClient, runtime: Runtime) -> None:
    case = application(runtime, "440103")
    sign_in(client, token("handling_staff", "440103", "officer-9", "440103"))
    shown = page(client, f"/console/cases/{case.id}", purpose="home visit planning")
    assert case.applicant_id not in shown.text
    revealed = submit(
        client, f"/console/cases/{case.id}/reveal", shown.text, {"purpose": "home visit"}
    )
    assert revealed.status_code == 200 and case.applicant_id in revealed.text
    auditor = {"Authorization": f"Bearer {token('auditor', '44', 'auditor-1', '44')}"}
    reads = ok(client.get(f"/cases/{case.id}/reads", headers=auditor))["items"]
    household_reads = reads_of(runtime.pool, case.household_id, 100)
    purposes = {r["purpose"] for r in reads} | {r["purpose"] for r in household_reads}
    assert {"home visit planning", "home visit"} <= purposes


# The console and the API agree, role by role --------------------------------------------------

ROLES = [r for r in Role if r is not Role.SYSTEM]


def _verdict(status: int) -> str:
    if status == 200:
        return "allowed"
    if status in (403, 404):
        return f"refused {status}"
    return f"other {status}"


def test_console_answers_as_the_api_for_every_role_and_scope(
    client: TestClient, runtime: Runtime
) -> None:
    story = misconduct(client, runtime)
    project(runtime)
    cid, case = story["cid"], story["case"]
    alert = ok(client.get("/alerts", params={"contractor_id": cid}, headers=SUPERVISOR))["items"][0]
    opened = ok(
        client.post(
            "/investigations",
            headers=SUPERVISOR,
            json={
                "subject_kind": "contractor",
                "subject_id": cid,
                "alert_ids": [alert["alert_id"]],
                "grounds": "a look",
            },
        ),
        201,
    )
    iid = opened["investigation_id"]
    purpose = {"X-Purpose": "access check"}
    pairs: list[tuple[str, dict[str, Any], str]] = [
        ("/caseload", {}, "/console/"),
        ("/staffing/divisions/440103", {}, "/console/staffing/440103"),
        ("/alerts", {}, "/console/alerts"),
        (f"/investigations/{iid}", {}, f"/console/investigations/{iid}"),
        (f"/contractors/{cid}/dossier", {}, f"/console/contractors/{cid}"),
        (f"/cases/{case.id}", purpose, f"/console/cases/{case.id}?purpose=access+check"),
        ("/audit/checkpoints", {}, "/console/audit"),
    ]
    callers = [(role, scope) for role in ROLES for scope in ("44", "440103", "4403")]
    disagreements = []
    compared = 0
    seen: set[str] = set()
    for role, scope in callers:
        org = story["code"] if role is Role.CONTRACTOR_STAFF else scope
        bearer = token(role.value, org, f"{role.value}-{scope}", scope)
        headers = {"Authorization": f"Bearer {bearer}"}
        sign_in(client, bearer)
        for api_path, extra, console_path in pairs:
            api = client.get(api_path, headers={**headers, **extra}).status_code
            console = page(client, console_path).status_code
            compared += 1
            seen.add(_verdict(api))
            if _verdict(api) != _verdict(console):
                disagreements.append((role.value, scope, api_path, api, console))
        # A command too: a note on the investigation (the console's success is a redirect).
        api = client.post(
            f"/investigations/{iid}/notes", headers=headers, json={"text": "matrix note"}
        ).status_code
        console = submit(
            client,
            f"/console/investigations/{iid}/notes",
            page(client, "/console/login").text,
            {"text": "matrix note"},
        ).status_code
        compared += 1
        if _verdict(api) != _verdict(200 if console == 303 else console):
            disagreements.append((role.value, scope, "POST notes", api, console))
    assert not disagreements, disagreements
    assert compared == len(callers) * (len(pairs) + 1)
    notes = ok(client.get(f"/investigations/{iid}", headers=SUPERVISOR))["notes"]
    assert len(notes) >= 4, notes  # supervisors at 44 and 440103, each through API and console
    # The matrix is exercised both ways: by role (403) and by scope (404).
    assert {"allowed", "refused 403", "refused 404"} <= seen, seen


def test_the_audit_page_offers_a_bundle_that_verifies_offline(
    client: TestClient, runtime: Runtime
) -> None:
    from infra.evidence import verify_bundle

    case = application(runtime, "440103")
    runtime.checkpointer().run_once()
    sign_in(client, token("auditor", "44", "auditor-7", "44"))
    audit = page(client, "/console/audit")
    assert audit.status_code == 200 and "relief audit verify-bundle" in audit.text
    key = re.search(r"--public-key ([0-9a-f]{64})", audit.text)
    assert key is not None
    refused = page(client, "/console/audit/bundle", aggregate_id=str(case.id), purpose="")
    assert refused.status_code == 422 and "X-Purpose" in refused.text
    bundle = page(client, "/console/audit/bundle", aggregate_id=str(case.id), purpose="audit")
    assert bundle.status_code == 200
    assert "attachment" in bundle.headers["content-disposition"]
    assert verify_bundle(bundle.content, bytes.fromhex(key.group(1))).ok


def test_bad_input_to_the_console_is_refused_never_a_server_error(
    client: TestClient, runtime: Runtime
) -> None:
    case = application(runtime, "440103")
    sign_in(client, SUPERVISOR_TOKEN)
    hostile = [
        ("/console/events/99999999999999999999", {}),
        ("/console/events/0", {}),
        ("/console/events/123456", {}),
        ("/console/", {"division": "99"}),
        ("/console/", {"division": "44x"}),
        ("/console/", {"level": "galaxy"}),
        ("/console/alerts", {"rule": "no_such_rule"}),
        ("/console/alerts", {"county": "4403"}),
        ("/console/alerts", {"contractor_id": "not-a-uuid"}),
        ("/console/alerts", {"after": "garbage"}),
        ("/console/alerts", {"unknown": "1"}),
        ("/console/staffing/12", {}),
        (f"/console/cases/{case.id}", {"purpose": "x", "at": "yesterday"}),
        (f"/console/cases/{case.id}", {"purpose": "x\x1b[2J"}),
        (f"/console/cases/{case.id}", {"position": "-1"}),
        ("/console/cases/not-a-uuid", {}),
        ("/console/audit/bundle", {"aggregate_id": str(case.id), "purpose": ""}),
    ]
    for path, params in hostile:
        answer = page(client, path, **params)
        assert 400 <= answer.status_code < 500, (path, params, answer.status_code)
    # Alerts chosen in the queue that are malformed or unknown are simply not preselected.
    chosen = page(client, "/console/investigations", alert_ids=["nope", str(case.id)])
    assert chosen.status_code == 200 and f'value="{case.id}" checked' not in chosen.text


def test_division_names_come_from_the_register(client: TestClient, runtime: Runtime) -> None:
    from api.console.divisions import division_names

    application(runtime, "440103")
    project(runtime)
    sign_in(client, SUPERVISOR_TOKEN)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        names = division_names(cursor, ["440103", "449999"])
    assert names == {"440103": "测试区440103"}  # (the test register); unknown codes absent
    overview = page(client, "/console/", division="4401", level="county")
    assert ">测试区440103</a>" in overview.text  # the name is the link, the code beside it
