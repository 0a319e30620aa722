"""Driving the console as a person would: sign in with a token, follow links, fill forms."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
NONCE = re.compile(r'name="nonce" value="([^"]+)"')


def sign_in(client: TestClient, token: str) -> None:
    """Paste the token into the sign-in form, as a person does."""
    client.cookies.clear()
    page = client.get("/console/login", headers={"Authorization": ""})
    assert page.status_code == 200, page.text
    nonce = NONCE.search(page.text)
    assert nonce is not None
    answer = client.post(
        "/console/login",
        data={"nonce": nonce.group(1), "token": token},
        headers={"Authorization": ""},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert "relief_console" in client.cookies


def page(client: TestClient, path: str, **params: Any) -> Any:
    """A console page fetched with the session cookie only (no bearer header)."""
    return client.get(path, params=params or None, headers={"Authorization": ""})


def csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def submit(client: TestClient, path: str, form_page: str, data: dict[str, Any]) -> Any:
    """Post a form with the CSRF token of the page it was on."""
    return client.post(
        path,
        data={"csrf": csrf(form_page), **data},
        headers={"Authorization": ""},
        follow_redirects=False,
    )
