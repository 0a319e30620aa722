"""The FastAPI application: commands and reads over HTTP."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, FastAPI, Header, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api import problems
from api.identity import current_actor
from domain.case import ClosureReason, Programme, ReliefCase
from domain.errors import InvalidValue
from domain.identifiers import mask_resident_id
from domain.provenance import Actor, Provenance
from infra.projection_runner import projection_status
from infra.runtime import Runtime
from projections.caseload import query_caseload
from projections.registry import ALL_PROJECTIONS

log = logging.getLogger(__name__)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OpenCase(StrictModel):
    programme: Programme = Field(description="dibao, tekun or temporary")
    applicant_id: str = Field(min_length=1, max_length=18, description="resident ID number")
    registered_division: str = Field(
        min_length=1, max_length=12, description="12-digit village code of the household's hukou"
    )
    reason: str | None = Field(default=None, max_length=2000)


class CloseCase(StrictModel):
    reason_code: ClosureReason
    reason: str | None = Field(default=None, max_length=2000)


class CaseView(BaseModel):
    case_id: UUID
    programme: str
    status: str
    applicant_id: str = Field(description="masked resident ID number")
    registered_division: str
    county: str
    closure_reason: str | None
    opened_at: str
    closed_at: str | None
    version: int


class CaseloadRow(BaseModel):
    county: str
    programme: str
    open_cases: int


class CaseloadPage(BaseModel):
    items: list[CaseloadRow]
    total: int
    limit: int
    offset: int


def case_view(case: ReliefCase) -> dict[str, Any]:
    return {**case.summary(), "applicant_id": mask_resident_id(case.applicant_id)}


def parse_if_match(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise InvalidValue('If-Match must be the ETag of the record, e.g. "3"', field="If-Match")
    return int(tag)


def command_provenance(
    actor: Annotated[Actor, Depends(current_actor)],
    x_correlation_id: Annotated[str | None, Header(max_length=200)] = None,
) -> Provenance:
    """Who is acting and which business transaction the command belongs to."""
    return Provenance(actor=actor, correlation_id=x_correlation_id)


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="relief-ledger",
        version="0.1.0",
        description="Event-sourced case management for social assistance and purchased services.",
    )
    problems.install(app)
    ledger = runtime.ledger

    @app.post("/cases", status_code=201, response_model=CaseView, tags=["cases"])
    def open_case(
        body: OpenCase, response: Response, by: Annotated[Provenance, Depends(command_provenance)]
    ) -> dict[str, Any]:
        case = ledger.open_case(
            programme=body.programme.value,
            applicant_id=body.applicant_id,
            registered_division=body.registered_division,
            provenance=Provenance(by.actor, body.reason, by.correlation_id),
        )
        response.headers["Location"] = f"/cases/{case.id}"
        response.headers["ETag"] = f'"{case.version}"'
        return case_view(case)

    @app.post("/cases/{case_id}/close", response_model=CaseView, tags=["cases"])
    def close_case(
        case_id: UUID,
        body: CloseCase,
        response: Response,
        by: Annotated[Provenance, Depends(command_provenance)],
        if_match: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        case = ledger.close_case(
            case_id,
            reason_code=body.reason_code.value,
            provenance=Provenance(by.actor, body.reason, by.correlation_id),
            expected_version=parse_if_match(if_match),
        )
        response.headers["ETag"] = f'"{case.version}"'
        return case_view(case)

    @app.get("/cases/{case_id}", response_model=CaseView, tags=["cases"])
    def get_case(case_id: UUID, response: Response) -> dict[str, Any]:
        case = ledger.get_case(case_id)
        response.headers["ETag"] = f'"{case.version}"'
        return case_view(case)

    @app.get("/caseload", response_model=CaseloadPage, tags=["caseload"])
    def caseload(
        division: Annotated[
            str | None,
            Query(
                pattern=r"^\d{2}(\d{2}(\d{2})?)?$",
                description="province, prefecture or county code",
            ),
        ] = None,
        programme: Programme | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        with runtime.pool.connection() as conn, conn.cursor() as cursor:
            items, total = query_caseload(
                cursor,
                division=division,
                programme=programme.value if programme else None,
                limit=limit,
                offset=offset,
            )
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @app.get("/projections", tags=["operations"])
    def projections() -> dict[str, Any]:
        statuses = projection_status(runtime.pool, ALL_PROJECTIONS, runtime.head_position())
        return {
            "items": [
                {
                    "name": s.name,
                    "generation": s.generation,
                    "feed": s.feed,
                    "position": s.position,
                    "head": s.head,
                    "lag": s.lag,
                    "last_error": s.last_error,
                    "last_error_position": s.last_error_position,
                }
                for s in statuses
            ]
        }

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        checks: dict[str, Any] = {}
        try:
            with runtime.pool.connection(timeout=2) as conn:
                conn.execute("SELECT 1")
            checks["database"] = "ok"
            head = runtime.head_position()
            for status in projection_status(runtime.pool, ALL_PROJECTIONS, head):
                ok = status.last_error is None and status.lag <= runtime.settings.ready_max_lag
                checks[f"projection:{status.name}"] = (
                    "ok" if ok else status.last_error or f"lag {status.lag}"
                )
        except Exception as error:  # not ready, whatever the cause; say which check failed
            checks["database"] = f"unreachable: {type(error).__name__}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    return app
