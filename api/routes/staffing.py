"""Staffing requirements over HTTP: where are we short, by how much, and since when."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import Response

from api.access import ScopedDivision, allow
from api.deps import AppServices, By, IsoDateTime, ReadCursor
from api.etags import StaffingTag, answer
from domain.clock import Clock
from domain.commands.policy import LoadStaffingPolicy
from domain.errors import InvalidValue
from projections.staffing_view import (
    current_staffing,
    current_summary,
    division_at,
    divisions_at,
    load_policies,
    month_ends,
    short_since,
    summary_at,
    villages_at,
)

router = APIRouter(tags=["staffing"])

At = Annotated[IsoDateTime | None, Query(description="as it stood at this moment (default now)")]
Limit = Annotated[int, Query(ge=1, le=1000, description="rows per page")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="rows skipped (in code order)")]


def _moment(at: dt.datetime | None, clock: Clock) -> dt.datetime:
    moment = at or clock.now()
    if moment.tzinfo is None:
        raise InvalidValue("at needs a time zone, e.g. 2026-05-31T23:59:59+08:00", field="at")
    return moment


@router.get(
    "/staffing",
    dependencies=[allow("staffing.read")],
)
def staffing(
    cursor: ReadCursor,
    services: AppServices,
    division: ScopedDivision,
    etag: StaffingTag,
    level: Literal["county", "township"] | None = None,
    short_only: bool = False,
    at: At = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    """Every county and township: relief households, minimum staff from the band table in
    force, active staff (government and contractor apart) and the shortfall; in code order,
    paged, with the total. Now: from the rows the projection keeps; ``at``: from the
    intervals, as it stood then."""
    if at is None:
        moment = services.clock.now()
        policy, rows, total = current_staffing(
            cursor,
            moment,
            division=division,
            level=level,
            short_only=short_only,
            limit=limit,
            offset=offset,
        )
        return answer(_page(moment, policy, rows, total, limit, offset), etag)
    moment = _moment(at, services.clock)
    policy, rows, total = divisions_at(
        cursor,
        moment,
        division=division,
        level=level,
        short_only=short_only,
        limit=limit,
        offset=offset,
    )
    return answer(_page(moment, policy, rows, total, limit, offset), etag)


def _page(
    moment: dt.datetime,
    policy: str | None,
    items: list[dict[str, Any]],
    total: int,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    return {
        "at": moment.isoformat(),
        "policy": policy,
        "items": items,
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get(
    "/staffing/villages",
    dependencies=[allow("staffing.read")],
)
def villages(
    cursor: ReadCursor,
    services: AppServices,
    division: ScopedDivision,
    etag: StaffingTag,
    status: Literal["ok", "under_staffed", "review"] | None = None,
    at: At = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    """Villages with their coordinators: none is under-staffed, more than two is for review;
    in code order, paged, with the total."""
    moment = _moment(at, services.clock)
    policy, page, total = villages_at(
        cursor, moment, division=division, status=status, limit=limit, offset=offset
    )
    return answer(_page(moment, policy, page, total, limit, offset), etag)


@router.get(
    "/staffing/summary",
    dependencies=[allow("staffing.read")],
)
def summary(
    cursor: ReadCursor,
    services: AppServices,
    division: ScopedDivision,
    etag: StaffingTag,
    at: At = None,
) -> Response:
    """How many counties and townships are short, and the total shortfall."""
    if at is None:
        return answer(current_summary(cursor, services.clock.now(), division=division), etag)
    return answer(summary_at(cursor, _moment(at, services.clock), division=division), etag)


@router.get(
    "/staffing/divisions/{code}",
    dependencies=[allow("staffing.read")],
)
def division_detail(
    cursor: ReadCursor,
    services: AppServices,
    code: Annotated[str, Path(pattern=r"^\d{6}(\d{3})?$", description="county or township")],
    etag: StaffingTag,
    months: Annotated[int, Query(ge=0, le=60)] = 12,
    at: At = None,
) -> Response:
    """One county or township now, since when it is short, and its position at the end of
    each of the past ``months`` months."""
    moment = _moment(at, services.clock)
    policies = load_policies(cursor)

    def position(when: dt.datetime) -> dict[str, Any]:
        policy, row = division_at(cursor, code, when, policies=policies)
        return {**row, "at": when.isoformat(), "policy": policy}

    current = position(moment)
    since = short_since(cursor, code, moment, policies) if current["shortfall"] else None
    history = [position(end) for end in month_ends(moment, months)]
    return answer(
        {**current, "short_since": since.isoformat() if since else None, "month_ends": history},
        etag,
    )


@router.get(
    "/staffing/policies",
    dependencies=[allow("staffing.read")],
)
def policies(cursor: ReadCursor) -> dict[str, Any]:
    rows = cursor.execute(
        "SELECT effective_from, name, document, loaded_by, loaded_at"
        " FROM relief.staffing_policies ORDER BY effective_from"
    ).fetchall()
    return {
        "items": [
            {
                "effective_from": r[0].isoformat(),
                "name": r[1],
                "document": r[2],
                "loaded_by": r[3],
                "loaded_at": r[4].isoformat(),
            }
            for r in rows
        ]
    }


@router.post("/staffing/policies", dependencies=[allow("staffing.policy")], status_code=201)
def load_policy(
    services: AppServices, by: By, document: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Load a band table with its effective date; the view follows without any replay."""
    command = LoadStaffingPolicy(document=document, provenance=by)
    policy = services.policy.load_staffing_policy(command)
    return {"effective_from": policy.effective_from.isoformat(), "name": policy.name}
