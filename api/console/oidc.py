"""Sign-in to the console through the identity provider: the OpenID Connect authorization-code
flow with PKCE (RFC 7636), for deployments that configure ``RELIEF_OIDC_DISCOVERY_URL``,
``RELIEF_OIDC_CLIENT_ID`` (and a secret for a confidential client).

The console keeps the token the provider issues for this API (its ``access_token`` when it is
a JWT the API accepts, else the ``id_token``): the same token, checked by the same verifier, as
a bearer of the API would send. The provider must put the claims the API reads (role, org,
scope) in it, as it does for API clients.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt

from api.auth import TokenVerifier, Unauthenticated
from infra.settings import Settings

TIMEOUT_S = 5


class OidcError(Unauthenticated):
    """Signing in through the identity provider failed."""

    rule = "sign-in-failed"


@dataclass(frozen=True)
class Provider:
    authorization_endpoint: str
    token_endpoint: str


@dataclass(frozen=True)
class Attempt:
    """What the browser must bring back from the provider: state, and what proves it is the
    same sign-in (the PKCE verifier, the id_token's nonce)."""

    state: str
    verifier: str
    nonce: str

    def cookie(self) -> str:
        return f"{self.state}.{self.verifier}.{self.nonce}"

    @classmethod
    def from_cookie(cls, value: str | None) -> Attempt:
        parts = (value or "").split(".")
        if len(parts) != 3 or not all(parts):
            raise OidcError("the sign-in was not started here, or took too long; start again")
        return cls(*parts)


def configured(settings: Settings) -> bool:
    return bool(settings.oidc_discovery_url and settings.oidc_client_id)


def _get_json(url: str, data: bytes | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, data=data, headers={"Accept": "application/json"})
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            body = json.loads(answer.read())
    except (OSError, ValueError) as error:
        raise OidcError(f"the identity provider did not answer as expected: {error}") from None
    if not isinstance(body, dict):
        raise OidcError("the identity provider answered something else than a JSON object")
    return body


def discover(settings: Settings) -> Provider:
    assert settings.oidc_discovery_url is not None
    document = _get_json(settings.oidc_discovery_url)
    try:
        return Provider(str(document["authorization_endpoint"]), str(document["token_endpoint"]))
    except KeyError as missing:
        raise OidcError(f"the provider's configuration names no {missing}") from None


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def start(settings: Settings, provider: Provider, redirect_uri: str) -> tuple[str, Attempt]:
    """The provider's authorization URL to send the browser to, and the attempt to keep."""
    attempt = Attempt(
        secrets.token_urlsafe(24), secrets.token_urlsafe(48), secrets.token_urlsafe(24)
    )
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": settings.oidc_client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid",
            "state": attempt.state,
            "nonce": attempt.nonce,
            "code_challenge": _challenge(attempt.verifier),
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in provider.authorization_endpoint else "?"
    return f"{provider.authorization_endpoint}{separator}{query}", attempt


def finish(
    settings: Settings,
    provider: Provider,
    verifier: TokenVerifier,
    attempt: Attempt,
    *,
    code: str,
    state: str,
    redirect_uri: str,
) -> str:
    """Exchange the code for the provider's tokens; the token the API accepts."""
    if not secrets.compare_digest(state, attempt.state):
        raise OidcError("the provider's answer does not belong to this sign-in (state)")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": settings.oidc_client_id or "",
        "code_verifier": attempt.verifier,
    }
    if settings.oidc_client_secret:
        form["client_secret"] = settings.oidc_client_secret
    tokens = _get_json(provider.token_endpoint, urllib.parse.urlencode(form).encode())
    refusal: Unauthenticated | None = None
    for name in ("access_token", "id_token"):
        token = tokens.get(name)
        if not isinstance(token, str):
            continue
        try:
            verifier.verify(token)
        except Unauthenticated as error:
            refusal = error
            continue
        if name == "id_token":  # its nonce must be this sign-in's (a replayed id_token is not)
            claims = jwt.decode(token, options={"verify_signature": False})
            if claims.get("nonce") != attempt.nonce:
                raise OidcError("the id_token belongs to another sign-in (nonce)")
        return token
    raise OidcError(
        "the provider issued no token this API accepts"
        + (f": {refusal.message}" if refusal else "")
    )
