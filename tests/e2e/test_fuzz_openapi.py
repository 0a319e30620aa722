"""Hostile input, generated: schemathesis drives every operation of the OpenAPI description
with a valid token. Zero server errors, and every answer must match what the description
promises (status, content type, body schema); schema-invalid requests must be refused."""

from __future__ import annotations

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

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
#: Sized for CI: examples per operation on top of schemathesis' boundary-value phase.
EXAMPLES = 8


@pytest.fixture()
def api_schema(runtime: Runtime) -> Iterator[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime))
    schema.config.generation.update(max_examples=EXAMPLES, deterministic=True)
    yield schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_no_server_errors_and_answers_as_documented(case: Any) -> None:
    # A province-wide handling officer reaches nearly every command; the refusals of the
    # others are documented 403s and are checked as such.
    officer = token("handling_staff", "440103", "fuzzer", scope="44")
    case.call_and_validate(headers={"Authorization": f"Bearer {officer}"}, checks=CHECKS)
