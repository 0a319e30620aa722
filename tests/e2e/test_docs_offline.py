"""/docs and /redoc work on a network without the internet: every script and style they load
is served by the application itself (api/docs.py)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.e2e

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
URL_IN_SCRIPT = re.compile(r"""url:\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_nothing_from_elsewhere(client: TestClient, page: str) -> None:
    answer = client.get(page, headers={"Authorization": ""})
    assert answer.status_code == 200
    html = answer.text
    assert "cdn" not in html.lower()
    assets = ASSET.findall(html)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        fetched = client.get(asset, headers={"Authorization": ""})
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 1000, asset
        assert b"https://cdn." not in fetched.content, f"{asset} loads from a CDN"
    assert "/openapi.json" in html
