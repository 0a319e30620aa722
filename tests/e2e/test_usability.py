"""Frictions a new user met, answered plainly."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from infra.runtime import Runtime
from tests.e2e.http import actor
from tests.scenario import application

pytestmark = pytest.mark.e2e


def test_a_case_read_without_x_purpose_names_the_missing_header(
    client: TestClient, runtime: Runtime
) -> None:
    case = application(runtime)
    officer = actor("handling_staff", "440103", "officer-1")
    for path in (f"/cases/{case.id}", f"/cases/{case.id}/history"):
        answer = client.get(path, headers=officer)
        assert answer.status_code == 422
        problem = answer.json()
        assert problem["type"] == "/problems/purpose-required"
        assert "X-Purpose" in problem["title"]
        assert problem["field"] == "X-Purpose"
    read = client.get(f"/cases/{case.id}", headers={**officer, "X-Purpose": "annual review"})
    assert read.status_code == 200
