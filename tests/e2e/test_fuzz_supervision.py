"""Hostile input against the supervision operations, as a supervisor (the main fuzz test calls
every operation as a handling officer, who is refused these with 403 before any input is read).

Same checks as the main run, including that schema-invalid requests are refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from infra.runtime import Runtime
from tests.factories import token

pytestmark = pytest.mark.e2e

SUPERVISION = re.compile(
    r"^/(alerts|investigations|contractors/[^/]+/dossier|staff/[^/]+/interests)"
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture()
def api_schema(runtime: Runtime) -> Iterator[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime))
    schema.config.generation.update(max_examples=20, deterministic=True)
    yield schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_supervision_answers_as_documented(case: Any) -> None:
    if not SUPERVISION.match(case.operation.path):
        return  # the other operations are fuzzed by test_fuzz_openapi.py
    supervisor = token("supervisor", "4401", "fuzzer", scope="4401")
    case.call_and_validate(headers={"Authorization": f"Bearer {supervisor}"}, checks=CHECKS)
