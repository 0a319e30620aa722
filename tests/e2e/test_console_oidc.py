"""Console sign-in through an identity provider: the OpenID Connect authorization-code flow with
PKCE, against a small identity provider that is a real HTTP server on loopback (it issues
codes and signs tokens; it is not a mock of our code)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from api.app import create_app
from infra.runtime import Runtime
from infra.settings import Settings
from tests.e2e.console import page

pytestmark = pytest.mark.e2e

CLIENT_ID, CLIENT_SECRET = "relief-console", "console-secret"


class IdentityProvider:
    """Discovery, authorization (approves at once as one supervisor), token, JWKS."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.kid = uuid.uuid4().hex
        self.codes: dict[str, dict[str, str]] = {}
        self.token_requests: list[dict[str, str]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/.well-known/openid-configuration":
                    self._json(200, provider.configuration())
                elif url.path == "/jwks":
                    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(provider.key.public_key()))
                    self._json(200, {"keys": [{**jwk, "kid": provider.kid, "use": "sig"}]})
                elif url.path == "/authorize":
                    code = uuid.uuid4().hex
                    provider.codes[code] = query
                    back = f"{query['redirect_uri']}?" + urllib.parse.urlencode(
                        {"code": code, "state": query["state"]}
                    )
                    self.send_response(302)
                    self.send_header("Location", back)
                    self.end_headers()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                provider.token_requests.append(form)
                asked = provider.codes.pop(form.get("code", ""), None)  # a code works once
                challenge = base64.urlsafe_b64encode(
                    hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                ).rstrip(b"=")
                if (
                    asked is None
                    or form.get("grant_type") != "authorization_code"
                    or form.get("redirect_uri") != asked["redirect_uri"]
                    or form.get("client_id") != CLIENT_ID
                    or form.get("client_secret") != CLIENT_SECRET
                    or challenge.decode() != asked["code_challenge"]
                ):
                    self._json(400, {"error": "invalid_grant"})
                    return
                self._json(200, provider.tokens(asked["nonce"]))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
        }

    def tokens(self, nonce: str) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        common = {
            "iss": self.url,
            "sub": "supervisor-gz",
            "iat": now,
            "exp": now + dt.timedelta(hours=1),
        }
        access = {
            **common,
            "aud": "relief-ledger",
            "role": "supervisor",
            "org": "4401",
            "scope": "4401",
        }
        identity = {**common, "aud": CLIENT_ID, "nonce": nonce}
        sign = {"algorithm": "EdDSA", "headers": {"kid": self.kid}}
        return {
            "token_type": "Bearer",
            "access_token": jwt.encode(access, self.key, **sign),
            "id_token": jwt.encode(identity, self.key, **sign),
        }


@pytest.fixture()
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.thread.start()
    yield provider
    provider.server.shutdown()


@pytest.fixture()
def oidc_client(settings: Settings, idp: IdentityProvider) -> Iterator[TestClient]:
    configured = settings.with_(
        jwt_public_key_path=None,
        jwt_jwks_url=f"{idp.url}/jwks",
        jwt_issuer=idp.url,
        oidc_discovery_url=f"{idp.url}/.well-known/openid-configuration",
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )
    runtime = Runtime.open(configured)
    try:
        with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
            yield client
    finally:
        runtime.close()


def test_sign_in_through_the_identity_provider(
    oidc_client: TestClient, idp: IdentityProvider
) -> None:
    login = page(oidc_client, "/console/login")
    assert 'href="/console/login/oidc"' in login.text
    assert 'name="mint"' not in login.text  # no development minting beside a provider
    start = oidc_client.get("/console/login/oidc", follow_redirects=False)
    assert start.status_code == 302
    authorize = start.headers["location"]
    assert authorize.startswith(f"{idp.url}/authorize?")
    asked = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(authorize).query))
    assert asked["code_challenge_method"] == "S256" and asked["client_id"] == CLIENT_ID
    # The browser goes to the provider, which sends it back with a code.
    back = httpx.get(authorize, follow_redirects=False)
    assert back.status_code == 302
    callback = urllib.parse.urlsplit(back.headers["location"])
    assert callback.path == "/console/login/callback"
    done = oidc_client.get(f"{callback.path}?{callback.query}")
    assert done.status_code == 200, done.text
    assert idp.token_requests[-1]["code_verifier"]  # PKCE: the verifier went to the provider
    overview = page(oidc_client, "/console/")
    assert overview.status_code == 200 and "supervisor-gz" in overview.text
    # The code was used once; a replay of the callback is refused with a page saying why.
    again = oidc_client.get(f"{callback.path}?{callback.query}")
    assert again.status_code == 401


def test_an_answer_for_another_sign_in_is_refused(
    oidc_client: TestClient, idp: IdentityProvider
) -> None:
    start = oidc_client.get("/console/login/oidc", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    callback = urllib.parse.urlsplit(back.headers["location"])
    code = dict(urllib.parse.parse_qsl(callback.query))["code"]
    forged = oidc_client.get(f"{callback.path}?code={code}&state=not-this-sign-in")
    assert forged.status_code == 401 and "state" in forged.text
    assert "relief_console" not in oidc_client.cookies
    refused = oidc_client.get(f"{callback.path}?error=access_denied")
    assert refused.status_code == 401 and "access_denied" in refused.text
