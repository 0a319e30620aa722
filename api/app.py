"""The FastAPI application: one router per area, one error format, one runtime."""

from __future__ import annotations

from fastapi import FastAPI

from api import problems
from api.auth import TokenVerifier
from api.routes import audit, cases, operations, purchasing, staffing
from infra.runtime import Runtime

ROUTERS = (cases.router, purchasing.router, staffing.router, audit.router, operations.router)


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="relief-ledger",
        version="0.1.0",
        description="Event-sourced case management for social assistance and purchased services.",
    )
    app.state.runtime = runtime
    app.state.token_verifier = TokenVerifier(runtime.settings)
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
