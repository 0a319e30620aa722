"""Commands of the purchase of relief services: contractors, contracts and staff."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from domain.commands import ChangeCommand, Command
from domain.contract import EvidenceRef

# Contractors -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RegisterContractor(Command):
    name: str
    contractor_type: str
    credit_code: str
    institution_class: str | None = None


@dataclass(frozen=True, kw_only=True)
class BanContractor(Command):
    contractor_id: UUID
    start: dt.date
    end: dt.date
    reason: str
    deciding_unit: str


# Contracts -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AwardContract(Command):
    contractor_id: UUID
    purchaser: str
    work_items: tuple[str, ...]
    service_area: tuple[str, ...]
    start: dt.date
    end: dt.date
    value: Decimal
    funding_source: str
    awarded_on: dt.date | None = None  # default: today


@dataclass(frozen=True, kw_only=True)
class ContractCommand(ChangeCommand):
    contract_id: UUID


@dataclass(frozen=True, kw_only=True)
class AmendContract(ContractCommand):
    """Only the parts given (not None) change."""

    reason: str
    effective_from: dt.date | None = None  # default: today
    value: Decimal | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    work_items: tuple[str, ...] | None = None
    service_area: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class RenewContract(ContractCommand):
    new_end: dt.date
    added_value: Decimal
    reason: str
    effective_from: dt.date | None = None  # default: today


@dataclass(frozen=True, kw_only=True)
class RecordContractExpiry(ContractCommand):
    pass


@dataclass(frozen=True, kw_only=True)
class InvoiceContract(ContractCommand):
    invoice_number: str
    period_start: dt.date
    period_end: dt.date
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class EvaluateContract(ContractCommand):
    period_start: dt.date
    period_end: dt.date
    score: Decimal


@dataclass(frozen=True, kw_only=True)
class RecordViolation(ContractCommand):
    kind: str
    severity: str
    description: str
    evidence: tuple[EvidenceRef, ...]


@dataclass(frozen=True, kw_only=True)
class ImposePenalty(ContractCommand):
    violation: int
    kind: str
    basis: str
    amount: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class TerminateContract(ContractCommand):
    effective_at: dt.datetime
    basis: str
    reason: str


# Staff -----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HireStaff(Command):
    """Employed by a government unit or under a contract: exactly one of the two."""

    name: str
    kind: str
    government_unit: str | None = None
    contract_id: UUID | None = None
    #: The person's resident ID: kept only as its blind-index person id.
    resident_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class StaffCommand(ChangeCommand):
    staff_id: UUID


@dataclass(frozen=True, kw_only=True)
class AssignStaff(StaffCommand):
    division: str


@dataclass(frozen=True, kw_only=True)
class RecordStaffTraining(StaffCommand):
    course: str
    completed_on: dt.date
    hours: Decimal


@dataclass(frozen=True, kw_only=True)
class RateStaff(StaffCommand):
    period: str
    rating: str


@dataclass(frozen=True, kw_only=True)
class LinkSignIn(StaffCommand):
    """The sign-in ``subject`` at identity provider ``issuer`` acts as this staff record."""

    issuer: str
    subject: str


@dataclass(frozen=True, kw_only=True)
class UnlinkSignIn(StaffCommand):
    issuer: str
    subject: str


@dataclass(frozen=True, kw_only=True)
class RemoveStaff(StaffCommand):
    on: dt.date
    reason: str
