"""The local minimum-living standards over HTTP: set one (an approver or supervisor), and read
them as they are in force, or as the ledger knew them at a moment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.access import allow
from api.deps import AppServices, By, IsoDate, IsoDateTime, ReadCursor
from api.requests.standards import SetStandard
from domain.errors import InvalidValue
from domain.identifiers import parse_division_code
from domain.living_standards import STANDARD_PROGRAMMES
from projections.standards import StandardRow, standard_versions, standards_in_force

router = APIRouter(tags=["standards"])


class StandardItem(BaseModel):
    """One recorded figure of a standard (a set or a correction)."""

    standard_id: str = Field(description="the standard's id: one per division and programme")
    division: str = Field(description="the province, prefecture or county that published it")
    programme: str = Field(description="dibao or tekun")
    effective_from: str = Field(description="the day it takes effect (YYYY-MM-DD)")
    monthly_amount: str = Field(description="yuan per head and month")
    currency: str
    source: str = Field(description="the notice it is published in")
    kind: str = Field(description="set, or corrected")
    version: int = Field(description="the version of its event in the standard's history")
    corrects: int | None = Field(description="the version it corrects (corrections only)")
    reason: str | None = Field(description="why it was corrected (corrections only)")
    recorded_by: str
    recorded_at: str
    position: int = Field(description="its event's position in the log")
    superseded_by: int | None = Field(
        description="position of the later correction of its date, as known then (null: none)"
    )

    @classmethod
    def of(cls, row: StandardRow) -> StandardItem:
        return cls(
            standard_id=str(row.standard_id),
            division=row.division,
            programme=row.programme,
            effective_from=row.effective_from.isoformat(),
            monthly_amount=str(row.monthly_amount),
            currency=row.currency,
            source=row.source,
            kind=row.kind,
            version=row.version,
            corrects=row.corrects,
            reason=row.reason,
            recorded_by=row.recorded_by,
            recorded_at=row.recorded_at.isoformat(),
            position=row.position,
            superseded_by=row.superseded_by,
        )


class StandardsPage(BaseModel):
    """Figures of the standards: every one recorded, or those in force on ``at``."""

    items: list[StandardItem]
    at: str | None = Field(description="the day asked about (null: every figure recorded)")
    known_at: str | None = Field(description="as the ledger knew it then (null: now)")


class StandardRecorded(BaseModel):
    """What a figure did: set, corrected, or unchanged (the date had it already: nothing
    recorded)."""

    standard_id: str
    division: str
    programme: str
    outcome: str = Field(description="set, corrected or unchanged")
    effective_from: str
    monthly_amount: str
    currency: str
    source: str
    version: int = Field(description="the version of the figure now in force for the date")
    corrects: int | None
    reason: str | None


@router.post("/standards", dependencies=[allow("standards.set")], status_code=201)
def set_standard(
    body: SetStandard, services: AppServices, by: By, response: Response
) -> StandardRecorded:
    """Set the monthly standard per head of dibao or tekun in a province, prefecture or county
    from a date, with its source. A date that has another figure is corrected (a reason is
    needed) and the earlier figure stays in the history; the same figure again records
    nothing (200). The income-bunching red flags re-judge the means tests it applies to."""
    outcome = services.standards.set_standard(body.command(by))
    if outcome.kind == "unchanged":
        response.status_code = 200
    v = outcome.version
    return StandardRecorded(
        standard_id=str(outcome.standard_id),
        division=outcome.division,
        programme=outcome.programme,
        outcome=outcome.kind,
        effective_from=v.effective_from.isoformat(),
        monthly_amount=str(v.monthly_amount),
        currency="CNY",
        source=v.source,
        version=v.version,
        corrects=v.corrects,
        reason=v.reason,
    )


@router.get("/standards", dependencies=[allow("standards.read")])
def standards(
    cursor: ReadCursor,
    division: Annotated[
        str | None,
        Query(
            max_length=12,
            description="a division code: with at, the place (any level, e.g. a village) whose "
            "standards are asked; without, the standards of it and the divisions inside it",
        ),
    ] = None,
    programme: Annotated[str | None, Query(max_length=20, description="dibao or tekun")] = None,
    at: Annotated[
        IsoDate | None, Query(description="the standards in force in division on this day")
    ] = None,
    known_at: Annotated[
        IsoDateTime | None,
        Query(description="as the ledger knew them at this moment (with a time zone)"),
    ] = None,
) -> StandardsPage:
    """The standards recorded, corrections beside what they corrected; with ``at``, the one in
    force in ``division`` on that day per programme (the most specific division's latest
    figure); with ``known_at``, as the ledger knew it then (later figures left out)."""
    if division is not None:
        division = parse_division_code(division, field="division").code
    if programme is not None and programme not in {p.value for p in STANDARD_PROGRAMMES}:
        raise InvalidValue("programme is dibao or tekun", field="programme")
    if known_at is not None and known_at.tzinfo is None:
        raise InvalidValue(
            "known_at needs a time zone, e.g. 2026-05-31T23:59:59+08:00", field="known_at"
        )
    if at is not None:
        if division is None:
            raise InvalidValue(
                "at needs the division (the place) it is asked for", field="division"
            )
        rows = standards_in_force(
            cursor, place=division, day=at, programme=programme, known_at=known_at
        )
    else:
        rows = standard_versions(cursor, division=division, programme=programme, known_at=known_at)
    return StandardsPage(
        items=[StandardItem.of(row) for row in rows],
        at=at.isoformat() if at else None,
        known_at=known_at.isoformat() if known_at else None,
    )
