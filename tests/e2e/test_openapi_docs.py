"""The OpenAPI description as a new integrator reads it: every command has a request example
the API would accept, every operation says what it does, every success answer is typed (but
the few that are not JSON documents, listed with their reason in ``UNTYPED``)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.openapi_docs import EXAMPLES, POLICY_EXAMPLE, RESPONSES, UNTYPED, untyped_answers
from domain.credit_code import parse_credit_code
from domain.identifiers import parse_division_code, parse_resident_id
from domain.staffing import StaffingPolicy

pytestmark = pytest.mark.e2e

IDENTIFIERS = {
    "resident_id": parse_resident_id,
    "applicant_id": parse_resident_id,
    "credit_code": parse_credit_code,
    "registered_division": parse_division_code,
    "residence_division": parse_division_code,
    "window_division": parse_division_code,
    "place": parse_division_code,
    "purchaser": parse_division_code,
    "deciding_unit": parse_division_code,
    "division": parse_division_code,
}


@pytest.fixture()
def schema(client: TestClient) -> dict[str, Any]:
    answer: dict[str, Any] = client.get("/openapi.json").json()
    return answer


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_operation_is_described(schema: dict[str, Any]) -> None:
    silent = [f"{m} {p}" for m, p, op in operations(schema) if not op.get("description")]
    assert not silent, silent


def test_every_command_has_an_example(schema: dict[str, Any]) -> None:
    missing = [
        f"{m} {p}"
        for m, p, op in operations(schema)
        if "requestBody" in op
        and "example" not in op["requestBody"]["content"].get("application/json", {})
    ]
    assert not missing, missing


def _identifiers(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        found = [(k, v) for k, v in value.items() if k in IDENTIFIERS and isinstance(v, str)]
        return found + [pair for v in value.values() for pair in _identifiers(v)]
    if isinstance(value, list):
        return [pair for v in value for pair in _identifiers(v)]
    return []


@pytest.mark.parametrize("model", list(EXAMPLES), ids=lambda m: m.__name__)
def test_examples_are_accepted_by_their_request_model_and_the_identifier_rules(
    model: Any,
) -> None:
    example = EXAMPLES[model]
    model.model_validate(example)  # refused: pydantic raises
    for field, value in _identifiers(example):
        IDENTIFIERS[field](value, field=field)  # a wrong check character raises


def test_the_policy_example_is_a_policy() -> None:
    assert StaffingPolicy.parse(POLICY_EXAMPLE).name.startswith("Guangdong")


def test_main_answers_are_typed(schema: dict[str, Any]) -> None:
    by_key = {(m, p): op for m, p, op in operations(schema)}
    for key in RESPONSES:
        assert key in by_key, f"{key} is not an operation"
        success = [s for s in by_key[key]["responses"] if s.startswith("2")]
        for status in success:
            content = by_key[key]["responses"][status]["content"]["application/json"]
            reference = content["schema"]["$ref"].rsplit("/", 1)[1]
            assert reference == RESPONSES[key].__name__, key


def test_every_success_answer_is_typed(schema: dict[str, Any]) -> None:
    untyped = untyped_answers(schema)
    assert not untyped, f"add a model to api/openapi_docs.py RESPONSES for {untyped}"


def test_the_untyped_allow_list_names_only_answers_that_are_not_json(
    schema: dict[str, Any],
) -> None:
    by_key = {(m, p): op for m, p, op in operations(schema)}
    for key in UNTYPED:
        assert key in by_key, f"{key} is not an operation"
    # Prometheus text exposition (its content type carries the format's version)
    metrics_types = by_key[("GET", "/metrics")]["responses"]["200"]["content"].keys()
    assert metrics_types and all(t.startswith("text/plain") for t in metrics_types)


def test_an_untyped_answer_is_found() -> None:
    """The check itself can fail: an object without properties, {} and a missing body."""
    components = {"Typed": {"type": "object", "properties": {"a": {"type": "string"}}}}

    def answer(body: dict[str, Any] | None) -> dict[str, Any]:
        content = {} if body is None else {"application/json": {"schema": body}}
        return {"responses": {"200": {"content": content}}}

    schema = {
        "components": {"schemas": components},
        "paths": {
            "/a": {"get": answer({"type": "object", "additionalProperties": True})},
            "/b": {"get": answer({})},
            "/c": {"get": answer(None)},
            "/d": {"get": answer({"$ref": "#/components/schemas/Typed"})},
            "/e": {"get": answer({"anyOf": [{"$ref": "#/components/schemas/Typed"}, {}]})},
        },
    }
    assert untyped_answers(schema) == ["GET /a 200", "GET /b 200", "GET /c 200", "GET /e 200"]


def test_real_answers_match_their_typed_responses(client: TestClient, runtime: Any) -> None:
    """The typed answers, checked against what the API really answers in a story."""
    from tests.e2e.http import actor, ok
    from tests.e2e.test_console import SUPERVISOR
    from tests.e2e.test_supervision import OFFICER, misconduct

    story = misconduct(client, runtime)
    case = story["case"]
    alert = ok(client.get("/alerts", params={"contractor_id": story["cid"]}, headers=SUPERVISOR))
    opened = ok(
        client.post(
            "/investigations",
            headers=SUPERVISOR,
            json={
                "subject_kind": "contractor",
                "subject_id": story["cid"],
                "alert_ids": [alert["items"][0]["alert_id"]],
                "grounds": "a look",
            },
        ),
        201,
    )
    staff = ok(
        client.post(
            "/staff",
            headers=OFFICER,
            json={"name": "李芳", "kind": "handling_staff", "government_unit": "440103"},
        ),
        201,
    )
    reader = {**actor("handling_staff", "440103", "officer-1"), "X-Purpose": "docs check"}
    answers = {
        ("GET", "/alerts"): alert,
        ("POST", "/investigations"): opened,
        ("GET", "/cases/{case_id}"): ok(client.get(f"/cases/{case.id}", headers=reader)),
        ("GET", "/households/{household_id}"): ok(
            client.get(f"/households/{case.household_id}", headers=reader)
        ),
        ("GET", "/contracts/{contract_id}"): ok(
            client.get(f"/contracts/{story['kid']}", headers=OFFICER)
        ),
        ("GET", "/contractors/{contractor_id}"): ok(
            client.get(f"/contractors/{story['cid']}", headers=OFFICER)
        ),
        ("POST", "/staff"): staff,
        ("GET", "/contracts/{contract_id}/history"): ok(
            client.get(f"/contracts/{story['kid']}/history", headers=OFFICER)
        ),
        ("GET", "/alerts/{alert_id}"): ok(
            client.get(f"/alerts/{alert['items'][0]['alert_id']}", headers=SUPERVISOR)
        ),
        ("GET", "/contractors/{contractor_id}/dossier"): ok(
            client.get(f"/contractors/{story['cid']}/dossier", headers=SUPERVISOR)
        ),
        ("GET", "/contracts/{contract_id}/coverage"): ok(
            client.get(
                f"/contracts/{story['kid']}/coverage",
                params={"work_item": "care_and_nursing", "division": "440103001001"},
                headers=OFFICER,
            )
        ),
        ("GET", "/cases/{case_id}/as-of"): ok(
            client.get(f"/cases/{case.id}/as-of", params={"version": 1}, headers=reader)
        ),
        ("GET", "/staffing/summary"): ok(client.get("/staffing/summary")),
        ("GET", "/staffing/divisions/{code}"): ok(
            client.get("/staffing/divisions/440103", params={"months": 2})
        ),
        ("GET", "/projections"): ok(client.get("/projections")),
        ("GET", "/healthz"): ok(client.get("/healthz")),
        ("GET", "/readyz"): ok(client.get("/readyz")),
    }
    for key, answer in answers.items():
        RESPONSES[key].model_validate(answer)  # a wrong type or a missing field raises


def test_audit_and_other_answers_match_their_typed_responses(
    client: TestClient, runtime: Any
) -> None:
    """The audit reads (report, job, key, any record as of), a death and a policy load, checked
    against their typed responses with the API's real answers."""
    from infra.checkpoints import load_or_create_key, sign_checkpoint
    from infra.sealing import seal_of
    from tests.e2e.http import actor, ok
    from tests.scenario import application

    case = application(runtime)
    auditor = {**actor("auditor", "44", "auditor-1"), "X-Purpose": "annual audit"}
    sign_checkpoint(
        runtime.pool, load_or_create_key(runtime.settings.audit_key_file), seal_of(runtime.ledger)
    )
    report = ok(client.get("/audit/verify", params={"wait": 30}, headers=auditor))
    answers = {
        ("GET", "/audit/verify"): report,
        ("GET", "/audit/verify/jobs/{job_id}"): ok(
            client.get(f"/audit/verify/jobs/{report['job']}", headers=auditor)
        ),
        ("GET", "/audit/public-key"): ok(client.get("/audit/public-key", headers=auditor)),
        ("GET", "/audit/aggregates/{aggregate_id}/as-of"): ok(
            client.get(f"/audit/aggregates/{case.id}/as-of", params={"version": 1}, headers=auditor)
        ),
        ("POST", "/staffing/policies"): ok(
            client.post(
                "/staffing/policies",
                json=POLICY_EXAMPLE,
                headers=actor("supervisor", "44", "policy-office"),
            ),
            201,
        ),
        ("POST", "/deaths"): ok(
            client.post(
                "/deaths",
                json={"resident_id": case.applicant_id, "date_of_death": "2026-10-12"},
                headers=actor("intake_clerk", "440103001", "clerk-1", scope="440103"),
            )
        ),
    }
    assert "ok" in report  # the finished report, not the job's status
    for key, answer in answers.items():
        RESPONSES[key].model_validate(answer)  # a wrong type or a missing field raises
