"""Relief cases over HTTP."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.deps import By, IfMatch, Ledger, RuntimeDep, StrictModel, parse_if_match, with_reason
from domain.case import ClosureReason, Programme, ReliefCase
from domain.identifiers import mask_resident_id
from infra.history import aggregate_history

router = APIRouter(tags=["cases"])


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


def case_view(case: ReliefCase, response: Response) -> dict[str, Any]:
    response.headers["ETag"] = f'"{case.version}"'
    return {**case.summary(), "applicant_id": mask_resident_id(case.applicant_id)}


@router.post("/cases", status_code=201, response_model=CaseView)
def open_case(body: OpenCase, response: Response, ledger: Ledger, by: By) -> dict[str, Any]:
    case = ledger.open_case(
        programme=body.programme.value,
        applicant_id=body.applicant_id,
        registered_division=body.registered_division,
        provenance=with_reason(by, body.reason),
    )
    response.headers["Location"] = f"/cases/{case.id}"
    return case_view(case, response)


@router.post("/cases/{case_id}/close", response_model=CaseView)
def close_case(
    case_id: UUID,
    body: CloseCase,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    case = ledger.close_case(
        case_id,
        reason_code=body.reason_code.value,
        provenance=with_reason(by, body.reason),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)


@router.get("/cases/{case_id}", response_model=CaseView)
def get_case(case_id: UUID, response: Response, ledger: Ledger) -> dict[str, Any]:
    return case_view(ledger.get_case(case_id), response)


@router.get("/cases/{case_id}/history")
def case_history(case_id: UUID, ledger: Ledger, runtime: RuntimeDep) -> dict[str, Any]:
    ledger.get_case(case_id)  # 404 unless it is a case
    return {"items": aggregate_history(runtime.pool, ledger.mapper, case_id)}
