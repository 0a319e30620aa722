"""Audit over HTTP: verify the log's hash chain; read a case as it stood."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import Ledger, RuntimeDep
from domain.errors import InvalidValue, NotFound
from infra.audit_chain import verify_chain, version_at

router = APIRouter(tags=["audit"])


@router.get("/audit/verify")
def verify(runtime: RuntimeDep) -> dict[str, Any]:
    """Recompute the hash chain from the stored events: intact up to a position, or the first
    position where it breaks and how (changed, missing, inserted, reordered)."""
    return verify_chain(runtime.pool).as_dict()


@router.get("/cases/{case_id}/as-of")
def case_as_of(
    case_id: UUID,
    ledger: Ledger,
    runtime: RuntimeDep,
    at: Annotated[dt.datetime | None, Query(description="a moment, with time zone")] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    """The case as it stood at a moment or at a version."""
    if (at is None) == (version is None):
        raise InvalidValue("give exactly one of at or version", field="at")
    if at is not None:
        if at.tzinfo is None:
            raise InvalidValue("at needs a time zone", field="at")
        version = version_at(runtime.pool, case_id, at)
        if version is None:
            raise NotFound(f"case {case_id} did not exist at {at.isoformat()}", field="at")
    assert version is not None
    current = ledger.get_case(case_id)
    if version > current.version:
        raise NotFound(f"case {case_id} has no version {version}", field="version")
    return {
        "as_of": at.isoformat() if at else None,
        **ledger.get_case(case_id, version=version).summary(),
    }
