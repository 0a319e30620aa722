"""What the in-process HTTP tests share: actors and assertions (the client is in conftest)."""

from __future__ import annotations

from typing import Any

import jwt

from tests.factories import token


def actor(
    role: str, org: str, who: str, correlation: str | None = None, scope: str = "44"
) -> dict[str, str]:
    """Headers of a caller with a bearer token (province-wide scope unless given)."""
    headers = {"Authorization": f"Bearer {token(role, org, who, scope)}"}
    if correlation:
        headers["X-Correlation-Id"] = correlation
    return headers


def subject(headers: dict[str, str]) -> str:
    """Who the caller's token says it is."""
    claims = jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})
    return str(claims["sub"])


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(response: Any, status: int, rule: str) -> dict[str, Any]:
    """A problem+json refusal of the given rule."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"/problems/{rule}", problem
    return problem


def reader(
    purpose: str = "case review",
    role: str = "handling_staff",
    org: str = "440103",
    who: str = "reader-1",
) -> dict[str, str]:
    """Headers of someone reading a case's personal data, with the stated purpose."""
    return {**actor(role, org, who), "X-Purpose": purpose}
