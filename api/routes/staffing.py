"""Staffing requirements over HTTP: where are we short, by how much, and since when."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import Response
from psycopg import Cursor

from api.access import ScopedDivision, allow
from api.deps import AppServices, By, IsoDateTime, ReadCursor, RuntimeDep
from api.etags import StaffingDivisionTag, StaffingTag, answer
from domain.clock import Clock
from domain.errors import InvalidValue
from domain.staffing import LoadOutcome, StaffingPolicy
from projections.staffing_view import (
    current_staffing,
    current_summary,
    current_villages,
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
KnownAt = Annotated[
    IsoDateTime | None,
    Query(
        description="with the band tables as the ledger knew them at this moment: versions "
        "recorded by then (default: as known now, every correction applied)"
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="rows per page")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="rows skipped (in code order)")]


def _moment(at: dt.datetime | None, clock: Clock) -> dt.datetime:
    moment = at or clock.now()
    if moment.tzinfo is None:
        raise InvalidValue("at needs a time zone, e.g. 2026-05-31T23:59:59+08:00", field="at")
    return moment


def _known_policies(
    cursor: Cursor[Any], known_at: dt.datetime | None
) -> list[StaffingPolicy] | None:
    """The band tables as the ledger knew them at ``known_at``; None (each view reads them
    as known now) when not asked."""
    if known_at is None:
        return None
    if known_at.tzinfo is None:
        raise InvalidValue(
            "known_at needs a time zone, e.g. 2026-05-31T23:59:59+08:00", field="known_at"
        )
    return load_policies(cursor, known_at)


@router.get(
    "/staffing",
    dependencies=[allow("staffing.read")],
)
def staffing(
    cursor: ReadCursor,
    services: AppServices,
    division: ScopedDivision,
    etag: StaffingDivisionTag,
    level: Literal["county", "township"] | None = None,
    short_only: bool = False,
    at: At = None,
    known_at: KnownAt = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    """Every county and township: relief households, minimum staff from the band table in
    force, active staff (government and contractor apart) and the shortfall; in code order,
    paged, with the total. Now: from the rows the projection keeps; ``at``: from the
    intervals, as it stood then; ``known_at``: with the band tables as recorded by then."""
    policies = _known_policies(cursor, known_at)
    moment = _moment(at, services.clock)
    rows_at = current_staffing if at is None else divisions_at
    policy, rows, total = rows_at(
        cursor,
        moment,
        division=division,
        level=level,
        short_only=short_only,
        limit=limit,
        offset=offset,
        policies=policies,
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
    etag: StaffingDivisionTag,
    status: Literal["ok", "under_staffed", "review"] | None = None,
    at: At = None,
    known_at: KnownAt = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    """Villages with their coordinators: none is under-staffed, more than two is for review;
    in code order, paged, with the total. Now: from the rows the projection keeps; ``at``:
    from the intervals, as it stood then."""
    moment = _moment(at, services.clock)
    rows_at = current_villages if at is None else villages_at
    policy, page, total = rows_at(
        cursor,
        moment,
        division=division,
        status=status,
        limit=limit,
        offset=offset,
        policies=_known_policies(cursor, known_at),
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
    etag: StaffingDivisionTag,
    at: At = None,
    known_at: KnownAt = None,
) -> Response:
    """How many counties and townships are short, and the total shortfall."""
    policies = _known_policies(cursor, known_at)
    if at is None and policies is None:
        return answer(current_summary(cursor, services.clock.now(), division=division), etag)
    moment = _moment(at, services.clock)
    return answer(summary_at(cursor, moment, division=division, policies=policies), etag)


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
    known_at: KnownAt = None,
) -> Response:
    """One county or township now, since when it is short, and its position at the end of
    each of the past ``months`` months."""
    moment = _moment(at, services.clock)
    policies = _known_policies(cursor, known_at)
    if policies is None:
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
def policies(cursor: ReadCursor, known_at: KnownAt = None) -> dict[str, Any]:
    """Every recorded version of the band tables, by effective date and revision: each
    adoption, and each correction naming the revision it ``corrects``; ``current`` marks the
    version in force for its date as the ledger knows it (with ``known_at``: knew it then,
    versions recorded later left out)."""
    if known_at is not None and known_at.tzinfo is None:
        raise InvalidValue(
            "known_at needs a time zone, e.g. 2026-05-31T23:59:59+08:00", field="known_at"
        )
    rows = cursor.execute(
        "SELECT effective_from, revision, name, document, source, corrects, reason, loaded_by,"
        " loaded_by_role, recorded_at, position FROM read_models.staffing_policies"
        " WHERE %(known_at)s::timestamptz IS NULL OR recorded_at <= %(known_at)s"
        " ORDER BY effective_from, revision",
        {"known_at": known_at},
    ).fetchall()
    latest: dict[dt.date, int] = {}
    for row in rows:
        latest[row[0]] = row[1]
    items = []
    for r in rows:
        corrected_by = r[1] + 1 if latest[r[0]] > r[1] else None
        items.append(
            {
                "effective_from": r[0].isoformat(),
                "revision": r[1],
                "name": r[2],
                "document": r[3],
                "source": r[4],
                "corrects": r[5],
                "reason": r[6],
                "corrected_by": corrected_by,
                "current": corrected_by is None,
                "loaded_by": r[7],
                "loaded_by_role": r[8],
                "loaded_at": r[9].isoformat(),
                "position": r[10],
            }
        )
    return {"known_at": known_at.isoformat() if known_at else None, "items": items}


@router.post(
    "/staffing/policies",
    dependencies=[allow("staffing.policy")],
    status_code=201,
    responses={
        200: {
            "description": "the table for that date is this table already: nothing recorded",
            "content": {"application/json": {}},
        }
    },
)
def load_policy(
    runtime: RuntimeDep,
    by: By,
    document: Annotated[dict[str, Any], Body()],
    response: Response,
) -> dict[str, Any]:
    """Record a band table as an event: adopted for its effective date (201), a correction of
    the table adopted for that date naming the revision it replaces and needing a ``reason``
    (201 with ``corrects``), or, when it is that table already, nothing (200). The document
    states its ``source`` (the notice). The view follows without any replay."""
    loaded = runtime.load_policy(document, by)
    if loaded.outcome is LoadOutcome.UNCHANGED:
        response.status_code = 200
    version = loaded.version
    return {
        "outcome": loaded.outcome.value,
        "effective_from": version.effective_from.isoformat(),
        "name": version.table.name,
        "revision": version.revision,
        "corrects": version.corrects,
        "source": version.source,
        "reason": version.reason,
        "loaded_by": version.actor,
        "loaded_at": version.recorded_at.isoformat(),
    }
