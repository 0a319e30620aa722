"""Who is calling: bearer tokens (JWT) checked against the configured issuer, audience and keys.

A province plugs in its identity provider by configuring its issuer, the audience it issues
for, and its keys (a JWKS URL, or a PEM public key). Without either, the embedded setup checks
tokens against a development key kept in the data directory, which ``relief auth token`` uses
to mint tokens. Claims we read besides the registered ones:

| claim | meaning |
|---|---|
| ``sub`` | the person or system acting (recorded on every event) |
| ``role`` | one of the roles in domain/provenance.py, except ``system`` |
| ``org`` | the organisation acted for: a county division code for government staff, the
  contractor's unified social credit code for contractor staff |
| ``scope`` | division-code prefix the caller works in: ``44`` province, ``4401`` Guangzhou … |
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from domain.errors import DomainError, InvalidValue
from domain.provenance import Actor, Role
from infra.settings import Settings, SettingsError


def algorithms_for(key: Any) -> list[str]:
    """The algorithms a verification key checks: EdDSA, ES256, RS256 and PS256 only (asymmetric:
    a shared HMAC secret would let every verifier mint tokens). A token naming an algorithm
    of another kind than the key is refused as invalid, never handed to the wrong key."""
    if isinstance(key, Ed25519PublicKey):
        return ["EdDSA"]
    if isinstance(key, EllipticCurvePublicKey) and isinstance(key.curve, SECP256R1):
        return ["ES256"]
    if isinstance(key, RSAPublicKey):
        return ["RS256", "PS256"]
    return []


SCOPE_LENGTHS = (2, 4, 6, 9, 12)
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]


class Unauthenticated(DomainError):
    """The request carries no valid bearer token."""

    rule = "unauthenticated"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the actor recorded on events and the divisions it may touch."""

    actor: Actor
    scope: str  # division-code prefix
    issuer: str = ""  # the identity provider that vouched for the caller

    @property
    def role(self) -> Role:
        return self.actor.role

    @property
    def identity(self) -> tuple[str, ...]:
        """Everything that makes this caller this caller: the same subject name at another
        issuer, organisation, scope or role is someone else (idempotency keys are kept per
        identity)."""
        return (self.issuer, self.actor.id, self.actor.organisation, self.scope, self.role.value)

    def covers(self, division: str) -> bool:
        return division.startswith(self.scope)


def parse_scope(value: object, *, field: str = "scope") -> str:
    if not isinstance(value, str) or not value.isdigit() or len(value) not in SCOPE_LENGTHS:
        raise InvalidValue(
            "scope must be a division-code prefix of 2, 4, 6, 9 or 12 digits", field=field
        )
    return value


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        role = Role(claims.get("role"))
    except ValueError:
        raise Unauthenticated("the token names no known role", field="Authorization") from None
    if role is Role.SYSTEM:
        raise Unauthenticated("system identity is not issued to callers", field="Authorization")
    sub, org = claims.get("sub"), claims.get("org")
    if not isinstance(sub, str) or not isinstance(org, str) or not sub.strip() or not org.strip():
        raise Unauthenticated("the token needs sub and org claims", field="Authorization")
    try:
        scope = parse_scope(claims.get("scope"))
        actor = Actor(id=sub[:200], role=role, organisation=org[:200])
    except InvalidValue as error:
        raise Unauthenticated(f"invalid token: {error.message}", field="Authorization") from None
    return Principal(actor=actor, scope=scope, issuer=str(claims.get("iss") or ""))


# Keys -------------------------------------------------------------------------------------------


def load_or_create_dev_key(path: Path) -> Ed25519PrivateKey:
    """The development signing key; made once, owner-only."""
    from infra.checkpoints import load_or_create_key

    return load_or_create_key(path)


class TokenVerifier:
    """Checks signature, issuer, audience, expiry and our claims; answers a Principal."""

    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)
        elif settings.jwt_public_key_path:
            self._key = serialization.load_pem_public_key(settings.jwt_public_key_path.read_bytes())
            if not algorithms_for(self._key):
                raise SettingsError(
                    "RELIEF_JWT_PUBLIC_KEY must be an Ed25519, P-256 (ES256) or RSA public key"
                )
        else:
            self._key = load_or_create_dev_key(settings.jwt_dev_key_file).public_key()
        # Tokens already checked, until they expire: a client sends the same token with every
        # request, and checking its signature again was a tenth of a command's CPU.
        self._checked: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._checked_lock = threading.Lock()

    @property
    def fetches_keys(self) -> bool:
        """Whether checking a token may fetch keys over the network (JWKS)."""
        return self._jwks is not None

    def verify(self, token: str) -> Principal:
        with self._checked_lock:
            held = self._checked.get(token)
        if held is not None and time.time() < held[1]:
            return held[0]
        principal, expires = self._verify(token)
        with self._checked_lock:
            self._checked[token] = (principal, expires)
            while len(self._checked) > CHECKED_TOKENS:
                self._checked.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key if self._jwks else self._key
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms_for(key),
                audience=self.audience,
                issuer=self.issuer,
                leeway=30,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as error:
            # The library's message names the failed check, never the token's content.
            raise Unauthenticated(f"invalid token: {error}", field="Authorization") from None
        except (TypeError, ValueError):
            # A token built to trip the key handling (a key of one kind, a signature of
            # another) is no valid token either; its content is not echoed.
            raise Unauthenticated("invalid token", field="Authorization") from None
        # Kept no longer than the library would accept it (its 30 s leeway included).
        return principal_from_claims(claims), float(claims["exp"]) + 30


#: Checked tokens kept per process (each a few hundred bytes).
CHECKED_TOKENS = 10_000


def mint_token(
    settings: Settings,
    *,
    subject: str,
    role: str,
    organisation: str,
    scope: str,
    lifetime: dt.timedelta = dt.timedelta(hours=8),
    key: Ed25519PrivateKey | None = None,
) -> str:
    """A development token signed with the embedded key (``relief auth token``)."""
    principal_from_claims(
        {"sub": subject, "role": role, "org": organisation, "scope": scope}
    )  # refuse what the API would refuse
    now = dt.datetime.now(dt.UTC)
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "role": role,
        "org": organisation,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    signing = key or load_or_create_dev_key(settings.jwt_dev_key_file)
    return jwt.encode(claims, signing, algorithm="EdDSA")


# The FastAPI dependency -------------------------------------------------------------------------

bearer = HTTPBearer(auto_error=False, description="A JWT from the configured identity provider")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """On the event loop (no thread hand-off) unless keys may have to be fetched (JWKS)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send Authorization: Bearer <token>", field="Authorization")
    verifier: TokenVerifier = request.app.state.token_verifier
    if verifier.fetches_keys:
        return await run_in_threadpool(verifier.verify, credentials.credentials)
    return verifier.verify(credentials.credentials)


async def current_actor(principal: Annotated[Principal, Depends(current_principal)]) -> Actor:
    return principal.actor


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
