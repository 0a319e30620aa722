"""Contractors, service contracts and staff over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import Field

from api.access import allow, check_division, check_record
from api.auth import CurrentPrincipal
from api.deps import (
    Amount,
    By,
    IfMatch,
    IsoDate,
    IsoDateTime,
    JsonInt,
    Ledger,
    RuntimeDep,
    StrictModel,
    parse_if_match,
    with_reason,
)
from domain.catalogue import parse_work_item
from domain.contract import Contract
from domain.contractor import Contractor
from domain.errors import InvalidValue, OutsideContract
from domain.identifiers import parse_division_code
from domain.staff import StaffMember
from infra.history import aggregate_history
from infra.ledger import ReliefLedger

router = APIRouter()

Text = Annotated[str, Field(min_length=1, max_length=2000)]
Code = Annotated[str, Field(min_length=1, max_length=12)]
Reason = Annotated[str | None, Field(default=None, max_length=2000)]


# Views ---------------------------------------------------------------------------------------


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def contractor_view(ledger: ReliefLedger, c: Contractor, response: Response) -> dict[str, Any]:
    _etag(response, c.version)
    return c.summary(ledger.today())


def contract_view(ledger: ReliefLedger, c: Contract, response: Response) -> dict[str, Any]:
    _etag(response, c.version)
    return c.summary(ledger.today())


def staff_view(ledger: ReliefLedger, s: StaffMember, response: Response) -> dict[str, Any]:
    _etag(response, s.version)
    return s.summary(ledger.today(), ledger.staff_contract(s))


# Contractors ---------------------------------------------------------------------------------


class RegisterContractor(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    contractor_type: Annotated[
        str,
        Field(
            max_length=40,
            description=(
                "social_organisation, social_organisation_exempt, public_institution or enterprise"
            ),
        ),
    ]
    credit_code: Annotated[str, Field(min_length=1, max_length=18)]
    institution_class: Annotated[str | None, Field(max_length=40)] = None
    reason: Reason = None


class BanContractor(StrictModel):
    start: IsoDate
    end: IsoDate
    reason: Text
    deciding_unit: Code


@router.post(
    "/contractors",
    dependencies=[allow("contractor.register")],
    status_code=201,
    tags=["contractors"],
)
def register_contractor(
    body: RegisterContractor, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    contractor = ledger.register_contractor(
        name=body.name,
        contractor_type=body.contractor_type,
        credit_code=body.credit_code,
        institution_class=body.institution_class,
        provenance=with_reason(by, body.reason),
    )
    response.headers["Location"] = f"/contractors/{contractor.id}"
    return contractor_view(ledger, contractor, response)


@router.get(
    "/contractors/{contractor_id}", dependencies=[allow("contractor.read")], tags=["contractors"]
)
def get_contractor(contractor_id: UUID, response: Response, ledger: Ledger) -> dict[str, Any]:
    return contractor_view(ledger, ledger.get_contractor(contractor_id), response)


@router.post(
    "/contractors/{contractor_id}/bans",
    dependencies=[allow("contractor.ban")],
    tags=["contractors"],
)
def ban_contractor(
    contractor_id: UUID, body: BanContractor, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    contractor = ledger.ban_contractor(
        contractor_id,
        start=body.start,
        end=body.end,
        reason=body.reason,
        deciding_unit=body.deciding_unit,
        provenance=with_reason(by, body.reason),
    )
    return contractor_view(ledger, contractor, response)


@router.get(
    "/contractors/{contractor_id}/history",
    dependencies=[allow("contractor.read")],
    tags=["contractors"],
)
def contractor_history(contractor_id: UUID, ledger: Ledger, runtime: RuntimeDep) -> dict[str, Any]:
    ledger.get_contractor(contractor_id)
    return {"items": aggregate_history(runtime.pool, ledger.mapper, contractor_id)}


# Contracts -----------------------------------------------------------------------------------


class AwardContract(StrictModel):
    contractor_id: UUID
    purchaser: Code
    work_items: Annotated[list[Annotated[str, Field(max_length=60)]], Field(max_length=20)]
    service_area: Annotated[list[Code], Field(max_length=200)]
    start: IsoDate
    end: IsoDate
    value: Amount
    funding_source: Annotated[str, Field(max_length=40)]
    awarded_on: IsoDate | None = None
    reason: Reason = None


class AmendContract(StrictModel):
    reason: Text
    effective_from: IsoDate | None = None
    value: Amount | None = None
    start: IsoDate | None = None
    end: IsoDate | None = None
    work_items: Annotated[
        list[Annotated[str, Field(max_length=60)]] | None, Field(max_length=20)
    ] = None
    service_area: Annotated[list[Code] | None, Field(max_length=200)] = None


class RenewContract(StrictModel):
    new_end: IsoDate
    added_value: Amount
    reason: Text
    effective_from: IsoDate | None = None


class RecordExpiry(StrictModel):
    reason: Reason = None


class Invoice(StrictModel):
    invoice_number: Annotated[str, Field(min_length=1, max_length=64)]
    period_start: IsoDate
    period_end: IsoDate
    amount: Amount
    reason: Reason = None


class Evaluation(StrictModel):
    period_start: IsoDate
    period_end: IsoDate
    score: Decimal
    reason: Reason = None


class EvidenceRef(StrictModel):
    position: JsonInt | None = Field(default=None, ge=1)
    aggregate_id: UUID | None = None
    version: JsonInt | None = Field(default=None, ge=1)


class Violation(StrictModel):
    kind: Annotated[str, Field(max_length=40)]
    severity: Annotated[str, Field(max_length=40)]
    description: Text
    evidence: Annotated[list[EvidenceRef], Field(max_length=200)]


class Penalty(StrictModel):
    violation: JsonInt = Field(ge=1)
    kind: Annotated[str, Field(max_length=40)]
    basis: Text
    amount: Amount | None = None


class Termination(StrictModel):
    effective_at: IsoDateTime
    basis: Annotated[str, Field(max_length=40)]
    reason: Text


@router.post(
    "/contracts", dependencies=[allow("contract.manage")], status_code=201, tags=["contracts"]
)
def award_contract(
    body: AwardContract,
    response: Response,
    ledger: Ledger,
    by: By,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    check_division(principal, body.purchaser, field="purchaser")
    contract = ledger.award_contract(
        contractor_id=body.contractor_id,
        purchaser=body.purchaser,
        work_items=body.work_items,
        service_area=body.service_area,
        start=body.start,
        end=body.end,
        value=body.value,
        funding_source=body.funding_source,
        awarded_on=body.awarded_on,
        provenance=with_reason(by, body.reason),
    )
    response.headers["Location"] = f"/contracts/{contract.id}"
    return contract_view(ledger, contract, response)


@router.get("/contracts/{contract_id}", dependencies=[allow("contract.read")], tags=["contracts"])
def get_contract(contract_id: UUID, response: Response, ledger: Ledger) -> dict[str, Any]:
    return contract_view(ledger, ledger.get_contract(contract_id), response)


@router.get(
    "/contracts/{contract_id}/history", dependencies=[allow("contract.read")], tags=["contracts"]
)
def contract_history(contract_id: UUID, ledger: Ledger, runtime: RuntimeDep) -> dict[str, Any]:
    ledger.get_contract(contract_id)
    return {"items": aggregate_history(runtime.pool, ledger.mapper, contract_id)}


@router.post(
    "/contracts/{contract_id}/amendments",
    dependencies=[allow("contract.manage")],
    tags=["contracts"],
)
def amend_contract(
    contract_id: UUID,
    body: AmendContract,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    changes = body.model_dump(exclude={"reason", "effective_from"}, exclude_none=True)
    contract = ledger.amend_contract(
        contract_id,
        reason=body.reason,
        effective_from=body.effective_from,
        provenance=with_reason(by, body.reason),
        expected_version=parse_if_match(if_match),
        **changes,
    )
    return contract_view(ledger, contract, response)


@router.post(
    "/contracts/{contract_id}/renewals", dependencies=[allow("contract.manage")], tags=["contracts"]
)
def renew_contract(
    contract_id: UUID, body: RenewContract, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    contract = ledger.renew_contract(
        contract_id,
        new_end=body.new_end,
        added_value=body.added_value,
        reason=body.reason,
        effective_from=body.effective_from,
        provenance=with_reason(by, body.reason),
    )
    return contract_view(ledger, contract, response)


@router.post(
    "/contracts/{contract_id}/expiry", dependencies=[allow("contract.manage")], tags=["contracts"]
)
def record_expiry(
    contract_id: UUID, body: RecordExpiry, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    contract = ledger.record_contract_expiry(contract_id, provenance=with_reason(by, body.reason))
    return contract_view(ledger, contract, response)


@router.post(
    "/contracts/{contract_id}/invoices", dependencies=[allow("contract.manage")], tags=["contracts"]
)
def invoice(
    contract_id: UUID, body: Invoice, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    contract = ledger.invoice_contract(
        contract_id,
        invoice_number=body.invoice_number,
        period_start=body.period_start,
        period_end=body.period_end,
        amount=body.amount,
        provenance=with_reason(by, body.reason),
    )
    return contract_view(ledger, contract, response)


@router.post(
    "/contracts/{contract_id}/evaluations",
    dependencies=[allow("contract.evaluate")],
    tags=["contracts"],
)
def evaluate(
    contract_id: UUID, body: Evaluation, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    contract = ledger.evaluate_contract(
        contract_id,
        period_start=body.period_start,
        period_end=body.period_end,
        score=body.score,
        provenance=with_reason(by, body.reason),
    )
    return contract_view(ledger, contract, response)


@router.post(
    "/contracts/{contract_id}/violations",
    dependencies=[allow("contract.sanction")],
    tags=["contracts"],
)
def record_violation(
    contract_id: UUID, body: Violation, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    contract = ledger.record_violation(
        contract_id,
        kind=body.kind,
        severity=body.severity,
        description=body.description,
        evidence=[ref.model_dump(exclude_none=True, mode="json") for ref in body.evidence],
        provenance=with_reason(by, body.description),
    )
    return contract_view(ledger, contract, response)


@router.post(
    "/contracts/{contract_id}/penalties",
    dependencies=[allow("contract.sanction")],
    tags=["contracts"],
)
def impose_penalty(
    contract_id: UUID, body: Penalty, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    contract = ledger.impose_penalty(
        contract_id,
        violation=body.violation,
        kind=body.kind,
        basis=body.basis,
        amount=body.amount,
        provenance=with_reason(by, body.basis),
    )
    return contract_view(ledger, contract, response)


@router.post(
    "/contracts/{contract_id}/termination",
    dependencies=[allow("contract.terminate")],
    tags=["contracts"],
)
def terminate(
    contract_id: UUID, body: Termination, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    contract = ledger.terminate_contract(
        contract_id,
        effective_at=body.effective_at,
        basis=body.basis,
        reason=body.reason,
        provenance=with_reason(by, body.reason),
    )
    return contract_view(ledger, contract, response)


@router.get(
    "/contracts/{contract_id}/coverage", dependencies=[allow("contract.read")], tags=["contracts"]
)
def coverage(
    contract_id: UUID,
    ledger: Ledger,
    work_item: Annotated[str, Query(max_length=60)],
    division: Annotated[str, Query(max_length=12)],
    at: IsoDateTime | None = None,
) -> dict[str, Any]:
    """May this contract's contractor do ``work_item`` in ``division`` at ``at`` (default now)?"""
    when = at or ledger.now()
    if when.tzinfo is None:
        raise InvalidValue("at needs a time zone, e.g. 2026-05-01T10:00:00+08:00", field="at")
    item = parse_work_item(work_item, field="work_item")
    place = parse_division_code(division, field="division")
    try:
        ledger.check_contract(contract_id, work_item=item, division=place, at=when)
    except OutsideContract as outside:
        return {
            "covered": False,
            "reason": outside.message,
            "field": outside.field,
            "at": when.isoformat(),
        }
    return {"covered": True, "reason": None, "at": when.isoformat()}


# Staff ---------------------------------------------------------------------------------------


class HireStaff(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    kind: Annotated[str, Field(max_length=40)]
    government_unit: Code | None = None
    contract_id: UUID | None = None
    reason: Reason = None


class AssignStaff(StrictModel):
    division: Code
    reason: Reason = None


class Training(StrictModel):
    course: Annotated[str, Field(min_length=1, max_length=200)]
    completed_on: IsoDate
    hours: Decimal


class StaffRating(StrictModel):
    period: Annotated[str, Field(min_length=1, max_length=20)]
    rating: Annotated[str, Field(max_length=20)]
    reason: Reason = None


class Removal(StrictModel):
    on: IsoDate
    reason: Text


@router.post("/staff", dependencies=[allow("staff.manage")], status_code=201, tags=["staff"])
def hire_staff(
    body: HireStaff, response: Response, ledger: Ledger, by: By, principal: CurrentPrincipal
) -> dict[str, Any]:
    if body.government_unit is not None:
        check_division(principal, body.government_unit, field="government_unit")
    if body.contract_id is not None:
        check_record(ledger, principal, ledger.get_contract(body.contract_id))
    staff = ledger.hire_staff(
        name=body.name,
        kind=body.kind,
        government_unit=body.government_unit,
        contract_id=body.contract_id,
        provenance=with_reason(by, body.reason),
    )
    response.headers["Location"] = f"/staff/{staff.id}"
    return staff_view(ledger, staff, response)


@router.get("/staff/{staff_id}", dependencies=[allow("staff.read")], tags=["staff"])
def get_staff(staff_id: UUID, response: Response, ledger: Ledger) -> dict[str, Any]:
    return staff_view(ledger, ledger.get_staff(staff_id), response)


@router.get("/staff/{staff_id}/history", dependencies=[allow("staff.read")], tags=["staff"])
def staff_history(staff_id: UUID, ledger: Ledger, runtime: RuntimeDep) -> dict[str, Any]:
    ledger.get_staff(staff_id)
    return {"items": aggregate_history(runtime.pool, ledger.mapper, staff_id)}


@router.post("/staff/{staff_id}/assignments", dependencies=[allow("staff.manage")], tags=["staff"])
def assign_staff(
    staff_id: UUID,
    body: AssignStaff,
    response: Response,
    ledger: Ledger,
    by: By,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    check_division(principal, body.division, field="division")
    staff = ledger.assign_staff(
        staff_id, division=body.division, provenance=with_reason(by, body.reason)
    )
    return staff_view(ledger, staff, response)


@router.post("/staff/{staff_id}/trainings", dependencies=[allow("staff.manage")], tags=["staff"])
def train_staff(
    staff_id: UUID, body: Training, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    staff = ledger.record_staff_training(
        staff_id,
        course=body.course,
        completed_on=body.completed_on,
        hours=body.hours,
        provenance=by,
    )
    return staff_view(ledger, staff, response)


@router.post("/staff/{staff_id}/ratings", dependencies=[allow("staff.manage")], tags=["staff"])
def rate_staff(
    staff_id: UUID, body: StaffRating, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    staff = ledger.rate_staff(
        staff_id, period=body.period, rating=body.rating, provenance=with_reason(by, body.reason)
    )
    return staff_view(ledger, staff, response)


@router.post("/staff/{staff_id}/removal", dependencies=[allow("staff.manage")], tags=["staff"])
def remove_staff(
    staff_id: UUID, body: Removal, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    staff = ledger.remove_staff(
        staff_id, on=body.on, reason=body.reason, provenance=with_reason(by, body.reason)
    )
    return staff_view(ledger, staff, response)
