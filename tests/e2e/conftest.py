"""The in-process HTTP client over the test's real runtime (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.runtime import Runtime
from tests.factories import token


@pytest.fixture()
def client(runtime: Runtime) -> Iterator[TestClient]:
    # Requests that name no caller read as a province-wide auditor (read-only); every command
    # and every access-control test sends its own token.
    default = {"Authorization": f"Bearer {token('auditor', '44', 'auditor-default')}"}
    with TestClient(
        create_app(runtime), raise_server_exceptions=False, headers=default
    ) as test_client:
        yield test_client
