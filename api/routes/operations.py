"""Caseload reads, projection status, health and readiness."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from api.access import ScopedDivision, allow
from api.deps import AppServices, ReadCursor, RuntimeDep
from api.etags import CaseloadRollupTag, CaseloadTag, answer
from api.problems import RETRY_AFTER_S
from domain.case import CaseStatus, Programme
from infra.faults import is_transient
from infra.projection_runner import projection_status
from projections.caseload import (
    query_caseload,
    query_caseload_by,
    query_cross_region,
    query_waiting,
)
from projections.registry import ALL_PROJECTIONS

router = APIRouter()
log = logging.getLogger(__name__)


class CaseloadRow(BaseModel):
    division: str
    name: str | None = None  # the division's name in the register
    programme: str
    status: str
    cases: int
    households: int


class CaseloadPage(BaseModel):
    items: list[CaseloadRow]
    total: int
    limit: int
    offset: int


Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


@router.get(
    "/caseload",
    dependencies=[allow("caseload.read")],
    response_model=CaseloadPage,
    tags=["caseload"],
)
def caseload(
    cursor: ReadCursor,
    division: ScopedDivision,
    etag: CaseloadRollupTag,
    level: Annotated[
        Literal["province", "prefecture", "county", "township", "village"],
        Query(description="roll the counts up to this level"),
    ] = "county",
    programme: Programme | None = None,
    status: CaseStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    """Cases by programme and status rolled up to ``level`` within ``division``, in the order
    of (division, programme, status), paged, with the total."""
    items, total = query_caseload(
        cursor,
        division=division,
        level=level,
        programme=programme.value if programme else None,
        status=status.value if status else None,
        limit=limit,
        offset=offset,
    )
    return answer({"items": items, "total": total, "limit": limit, "offset": offset}, etag)


@router.get("/caseload/by-staff", dependencies=[allow("caseload.read")], tags=["caseload"])
def caseload_by_staff(
    cursor: ReadCursor,
    division: ScopedDivision,
    etag: CaseloadTag,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    items, total = query_caseload_by(
        cursor, key="staff_id", division=division, limit=limit, offset=offset
    )
    return answer({"items": items, "total": total, "limit": limit, "offset": offset}, etag)


@router.get("/caseload/by-contractor", dependencies=[allow("caseload.read")], tags=["caseload"])
def caseload_by_contractor(
    cursor: ReadCursor,
    division: ScopedDivision,
    etag: CaseloadTag,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    items, total = query_caseload_by(
        cursor, key="contractor_id", division=division, limit=limit, offset=offset
    )
    return answer({"items": items, "total": total, "limit": limit, "offset": offset}, etag)


@router.get("/caseload/waiting", dependencies=[allow("caseload.read")], tags=["caseload"])
def caseload_waiting(
    cursor: ReadCursor, services: AppServices, division: ScopedDivision
) -> dict[str, Any]:
    items = query_waiting(cursor, division=division, now=services.clock.now())
    return {"items": items}


@router.get("/caseload/cross-region", dependencies=[allow("caseload.read")], tags=["caseload"])
def caseload_cross_region(
    cursor: ReadCursor, division: ScopedDivision, etag: CaseloadTag
) -> Response:
    items = query_cross_region(cursor, division=division)
    return answer({"items": items}, etag)


@router.get(
    "/metrics",
    dependencies=[allow("operations.read")],
    tags=["operations"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process (api/metrics.py): requests and latency by
    route and status, refused commands by problem type, projection, relay, checkpoint and
    connection-pool gauges, and ``relief_database_up``."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/projections", dependencies=[allow("operations.read")], tags=["operations"])
def projections(runtime: RuntimeDep) -> dict[str, Any]:
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


@router.get("/healthz", tags=["operations"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"])
def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready when the database answers (within two seconds) and every projection is running
    within the lag bound; otherwise 503 naming the check that failed."""
    checks: dict[str, str] = {}
    try:
        with runtime.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        statuses = projection_status(runtime.pool, ALL_PROJECTIONS, runtime.head_position())
    except Exception as error:  # not ready, whatever the cause; say which
        if is_transient(error):
            runtime.discard_broken_connections()
            checks["database"] = f"unreachable: {type(error).__name__}"
        else:
            log.exception("readiness check failed")
            checks["database"] = f"failed: {type(error).__name__}"
    else:
        checks["database"] = "ok"
        for status in statuses:
            ok = status.last_error is None and status.lag <= runtime.settings.ready_max_lag
            checks[f"projection:{status.name}"] = (
                "ok" if ok else status.last_error or f"lag {status.lag}"
            )
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"ready": ready, "checks": checks},
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": str(RETRY_AFTER_S)},
    )
