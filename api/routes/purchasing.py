"""Contractors, service contracts and staff over HTTP."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response

from api.access import allow, check_division, check_record
from api.auth import CurrentPrincipal
from api.deps import AppServices, By, ExpectedVersion, IsoDateTime, Ledger, RuntimeDep
from api.requests.purchasing import (
    AmendContract,
    AssignStaff,
    AwardContract,
    BanContractor,
    Evaluation,
    HireStaff,
    Invoice,
    Penalty,
    RecordExpiry,
    RegisterContractor,
    Removal,
    RenewContract,
    SignInLink,
    StaffRating,
    Termination,
    Training,
    Violation,
)
from domain.catalogue import parse_work_item
from domain.contract import Contract
from domain.contractor import Contractor
from domain.errors import InvalidValue, OutsideContract
from domain.identifiers import parse_division_code
from domain.staff import StaffMember
from infra.history import aggregate_history
from services import Services

router = APIRouter()


# Views ---------------------------------------------------------------------------------------


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def contractor_view(services: Services, c: Contractor, response: Response) -> dict[str, Any]:
    _etag(response, c.version)
    return c.summary(services.clock.today())


def contract_view(services: Services, c: Contract, response: Response) -> dict[str, Any]:
    _etag(response, c.version)
    return c.summary(services.clock.today())


def staff_view(services: Services, s: StaffMember, response: Response) -> dict[str, Any]:
    _etag(response, s.version)
    return s.summary(services.clock.today(), services.purchasing.staff_contract(s))


# Contractors ---------------------------------------------------------------------------------


@router.post(
    "/contractors",
    dependencies=[allow("contractor.register")],
    status_code=201,
    tags=["contractors"],
)
def register_contractor(
    body: RegisterContractor, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    contractor = services.purchasing.register_contractor(body.command(by))
    response.headers["Location"] = f"/contractors/{contractor.id}"
    return contractor_view(services, contractor, response)


@router.get(
    "/contractors/{contractor_id}", dependencies=[allow("contractor.read")], tags=["contractors"]
)
def get_contractor(
    contractor_id: UUID, response: Response, ledger: Ledger, services: AppServices
) -> dict[str, Any]:
    return contractor_view(services, ledger.get_contractor(contractor_id), response)


@router.post(
    "/contractors/{contractor_id}/bans",
    dependencies=[allow("contractor.ban")],
    tags=["contractors"],
)
def ban_contractor(
    contractor_id: UUID, body: BanContractor, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    contractor = services.purchasing.ban_contractor(body.command(contractor_id, by))
    return contractor_view(services, contractor, response)


@router.get(
    "/contractors/{contractor_id}/history",
    dependencies=[allow("contractor.read")],
    tags=["contractors"],
)
def contractor_history(contractor_id: UUID, ledger: Ledger, runtime: RuntimeDep) -> dict[str, Any]:
    ledger.get_contractor(contractor_id)
    return {"items": aggregate_history(runtime.pool, ledger.mapper, contractor_id)}


# Contracts -----------------------------------------------------------------------------------


@router.post(
    "/contracts", dependencies=[allow("contract.manage")], status_code=201, tags=["contracts"]
)
def award_contract(
    body: AwardContract,
    response: Response,
    services: AppServices,
    by: By,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    check_division(principal, body.purchaser, field="purchaser")
    contract = services.purchasing.award_contract(body.command(by))
    response.headers["Location"] = f"/contracts/{contract.id}"
    return contract_view(services, contract, response)


@router.get("/contracts/{contract_id}", dependencies=[allow("contract.read")], tags=["contracts"])
def get_contract(
    contract_id: UUID, response: Response, ledger: Ledger, services: AppServices
) -> dict[str, Any]:
    return contract_view(services, ledger.get_contract(contract_id), response)


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
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> dict[str, Any]:
    contract = services.purchasing.amend_contract(body.command(contract_id, by, version))
    return contract_view(services, contract, response)


@router.post(
    "/contracts/{contract_id}/renewals", dependencies=[allow("contract.manage")], tags=["contracts"]
)
def renew_contract(
    contract_id: UUID, body: RenewContract, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    contract = services.purchasing.renew_contract(body.command(contract_id, by))
    return contract_view(services, contract, response)


@router.post(
    "/contracts/{contract_id}/expiry", dependencies=[allow("contract.manage")], tags=["contracts"]
)
def record_expiry(
    contract_id: UUID, body: RecordExpiry, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    contract = services.purchasing.record_contract_expiry(body.command(contract_id, by))
    return contract_view(services, contract, response)


@router.post(
    "/contracts/{contract_id}/invoices", dependencies=[allow("contract.manage")], tags=["contracts"]
)
def invoice(
    contract_id: UUID, body: Invoice, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    contract = services.purchasing.invoice_contract(body.command(contract_id, by))
    return contract_view(services, contract, response)


@router.post(
    "/contracts/{contract_id}/evaluations",
    dependencies=[allow("contract.evaluate")],
    tags=["contracts"],
)
def evaluate(
    contract_id: UUID, body: Evaluation, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    contract = services.purchasing.evaluate_contract(body.command(contract_id, by))
    return contract_view(services, contract, response)


@router.post(
    "/contracts/{contract_id}/violations",
    dependencies=[allow("contract.sanction")],
    tags=["contracts"],
)
def record_violation(
    contract_id: UUID, body: Violation, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    contract = services.purchasing.record_violation(body.command(contract_id, by))
    return contract_view(services, contract, response)


@router.post(
    "/contracts/{contract_id}/penalties",
    dependencies=[allow("contract.sanction")],
    tags=["contracts"],
)
def impose_penalty(
    contract_id: UUID, body: Penalty, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    contract = services.purchasing.impose_penalty(body.command(contract_id, by))
    return contract_view(services, contract, response)


@router.post(
    "/contracts/{contract_id}/termination",
    dependencies=[allow("contract.terminate")],
    tags=["contracts"],
)
def terminate(
    contract_id: UUID, body: Termination, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    contract = services.purchasing.terminate_contract(body.command(contract_id, by))
    return contract_view(services, contract, response)


@router.get(
    "/contracts/{contract_id}/coverage", dependencies=[allow("contract.read")], tags=["contracts"]
)
def coverage(
    contract_id: UUID,
    services: AppServices,
    work_item: Annotated[str, Query(max_length=60)],
    division: Annotated[str, Query(max_length=12)],
    at: IsoDateTime | None = None,
) -> dict[str, Any]:
    """May this contract's contractor do ``work_item`` in ``division`` at ``at`` (default now)?"""
    when = at or services.clock.now()
    if when.tzinfo is None:
        raise InvalidValue("at needs a time zone, e.g. 2026-05-01T10:00:00+08:00", field="at")
    item = parse_work_item(work_item, field="work_item")
    place = parse_division_code(division, field="division")
    try:
        services.purchasing.check_contract(contract_id, work_item=item, division=place, at=when)
    except OutsideContract as outside:
        return {
            "covered": False,
            "reason": outside.message,
            "field": outside.field,
            "at": when.isoformat(),
        }
    return {"covered": True, "reason": None, "at": when.isoformat()}


# Staff ---------------------------------------------------------------------------------------


@router.post("/staff", dependencies=[allow("staff.manage")], status_code=201, tags=["staff"])
def hire_staff(
    body: HireStaff,
    response: Response,
    ledger: Ledger,
    services: AppServices,
    by: By,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    if body.government_unit is not None:
        check_division(principal, body.government_unit, field="government_unit")
    if body.contract_id is not None:
        check_record(ledger, principal, ledger.get_contract(body.contract_id))
    staff = services.purchasing.hire_staff(body.command(by))
    response.headers["Location"] = f"/staff/{staff.id}"
    return staff_view(services, staff, response)


@router.get("/staff/{staff_id}", dependencies=[allow("staff.read")], tags=["staff"])
def get_staff(
    staff_id: UUID, response: Response, ledger: Ledger, services: AppServices
) -> dict[str, Any]:
    return staff_view(services, ledger.get_staff(staff_id), response)


@router.get("/staff/{staff_id}/history", dependencies=[allow("staff.read")], tags=["staff"])
def staff_history(staff_id: UUID, ledger: Ledger, runtime: RuntimeDep) -> dict[str, Any]:
    ledger.get_staff(staff_id)
    return {"items": aggregate_history(runtime.pool, ledger.mapper, staff_id)}


@router.post("/staff/{staff_id}/assignments", dependencies=[allow("staff.manage")], tags=["staff"])
def assign_staff(
    staff_id: UUID,
    body: AssignStaff,
    response: Response,
    services: AppServices,
    by: By,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    check_division(principal, body.division, field="division")
    staff = services.purchasing.assign_staff(body.command(staff_id, by))
    return staff_view(services, staff, response)


@router.post("/staff/{staff_id}/trainings", dependencies=[allow("staff.manage")], tags=["staff"])
def train_staff(
    staff_id: UUID, body: Training, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    staff = services.purchasing.record_staff_training(body.command(staff_id, by))
    return staff_view(services, staff, response)


@router.post("/staff/{staff_id}/ratings", dependencies=[allow("staff.manage")], tags=["staff"])
def rate_staff(
    staff_id: UUID, body: StaffRating, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    staff = services.purchasing.rate_staff(body.command(staff_id, by))
    return staff_view(services, staff, response)


@router.post("/staff/{staff_id}/removal", dependencies=[allow("staff.manage")], tags=["staff"])
def remove_staff(
    staff_id: UUID, body: Removal, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    staff = services.purchasing.remove_staff(body.command(staff_id, by))
    return staff_view(services, staff, response)


@router.post("/staff/{staff_id}/sign-ins", dependencies=[allow("staff.manage")], tags=["staff"])
def link_sign_in(
    staff_id: UUID,
    body: SignInLink,
    response: Response,
    services: AppServices,
    runtime: RuntimeDep,
    by: By,
) -> dict[str, Any]:
    staff = services.purchasing.link_sign_in(body.link(staff_id, runtime.settings.jwt_issuer, by))
    return staff_view(services, staff, response)


@router.post(
    "/staff/{staff_id}/sign-ins/removal", dependencies=[allow("staff.manage")], tags=["staff"]
)
def unlink_sign_in(
    staff_id: UUID,
    body: SignInLink,
    response: Response,
    services: AppServices,
    runtime: RuntimeDep,
    by: By,
) -> dict[str, Any]:
    staff = services.purchasing.unlink_sign_in(
        body.unlink(staff_id, runtime.settings.jwt_issuer, by)
    )
    return staff_view(services, staff, response)
