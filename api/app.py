"""The FastAPI application: one router per area, one error format, one runtime."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from api import problems
from api.auth import TokenVerifier
from api.deps import refuse_unknown_query
from api.names import bind_register
from api.routes import audit, cases, operations, purchasing, staffing, supervision
from api.safe_writes import IdempotencyStore, SafeWrites
from infra.runtime import Runtime

ROUTERS = (
    cases.router,
    purchasing.router,
    staffing.router,
    audit.router,
    operations.router,
    supervision.router,
)


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="relief-ledger",
        version="0.1.0",
        description="Event-sourced case management for social assistance and purchased services.",
        dependencies=[Depends(refuse_unknown_query), Depends(bind_register)],
    )
    verifier = TokenVerifier(runtime.settings)
    app.state.runtime = runtime
    app.state.token_verifier = verifier
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router, responses=problems.documented_errors())
    app.add_middleware(
        SafeWrites,
        max_body_bytes=runtime.settings.max_body_bytes,
        verifier=verifier,
        store=IdempotencyStore(runtime.pool, getattr(runtime.ledger.mapper, "cipher", None)),
    )
    document_idempotency_key(app)
    return app


def document_idempotency_key(app: FastAPI) -> None:
    """Every command accepts an Idempotency-Key (handled by SafeWrites, before the route)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema.get("paths", {}).values():
                command = operations.get("post")
                if command is not None:
                    command.setdefault("parameters", []).append(
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "a new random key per command (e.g. a UUID); a "
                            "retry with the same key gets the first answer and records nothing",
                            "schema": {"type": "string", "minLength": 8, "maxLength": 200},
                        }
                    )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
