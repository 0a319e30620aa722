"""Who is signed in to the console, with the same bearer tokens as the API.

The token is kept in a cookie (``HttpOnly``: scripts never see it; ``SameSite=Strict``: no
other site's page sends it), checked by the API's own ``TokenVerifier`` on every request, so a
console user is exactly the principal the API would see. Forms that change anything carry a
CSRF token derived from the session token (HMAC), checked before the command runs.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from urllib.parse import parse_qs

from starlette.requests import Request

from api.auth import Principal, TokenVerifier, Unauthenticated
from domain.errors import InvalidValue
from infra.settings import Settings

COOKIE = "relief_console"
PATH = "/console"
CSRF_FIELD = "csrf"


def session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


def signed_in(request: Request) -> Principal:
    """The console user's principal, or Unauthenticated (the console answers it with the
    sign-in page)."""
    token = session_token(request)
    if token is None:
        raise Unauthenticated("sign in to the console", field="session")
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(token)


def csrf_for(token: str) -> str:
    """The CSRF token of a session: only a page served to that session can know it."""
    return hmac.new(token.encode(), b"relief-console-csrf", hashlib.sha256).hexdigest()


async def form_fields(request: Request) -> dict[str, list[str]]:
    """The posted form (application/x-www-form-urlencoded), after its CSRF token is checked."""
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = parse_qs(body, keep_blank_values=True, max_num_fields=400)
    token = session_token(request)
    sent = (fields.get(CSRF_FIELD) or [""])[0]
    if token is None or not hmac.compare_digest(sent, csrf_for(token)):
        raise InvalidValue(
            "the form's CSRF token is missing or stale; reload the page", field="csrf"
        )
    return fields


def dev_sign_in_allowed(settings: Settings, client_host: str | None) -> bool:
    """Minting a token from the local development key is offered only where the API itself
    trusts that key (no identity provider configured) and to a browser on this machine."""
    if settings.jwt_jwks_url or settings.jwt_public_key_path:
        return False
    try:
        return client_host is not None and ipaddress.ip_address(client_host).is_loopback
    except ValueError:
        return False
