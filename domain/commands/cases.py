"""Commands of households, people and relief cases."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from domain.case import Correction, MeansTest
from domain.commands import ChangeCommand, Command
from domain.household import HouseholdMember

# Households and people -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RegisterHousehold(Command):
    registered_division: str
    residence_division: str
    members: tuple[HouseholdMember, ...]


@dataclass(frozen=True, kw_only=True)
class AddHouseholdMember(Command):
    household_id: UUID
    member: HouseholdMember
    by_birth: bool = False


@dataclass(frozen=True, kw_only=True)
class MoveOutMember(Command):
    household_id: UUID
    resident_id: str
    on: dt.date


@dataclass(frozen=True, kw_only=True)
class RecordDeath(Command):
    resident_id: str
    on: dt.date


# Relief cases ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReceiveApplication(Command):
    household_id: UUID
    applicant_id: str
    programme: str
    window_division: str


@dataclass(frozen=True, kw_only=True)
class CaseCommand(ChangeCommand):
    case_id: UUID


@dataclass(frozen=True, kw_only=True)
class AssignCase(CaseCommand):
    staff_id: UUID


@dataclass(frozen=True, kw_only=True)
class InvestigateCase(CaseCommand):
    means_test: MeansTest
    contract_id: UUID | None = None


@dataclass(frozen=True, kw_only=True)
class RecommendCase(CaseCommand):
    recommendation: str
    reasons: str
    monthly_amount: Decimal | None = None
    contract_id: UUID | None = None


@dataclass(frozen=True, kw_only=True)
class ApproveCase(CaseCommand):
    monthly_amount: Decimal
    start_date: dt.date
    reasons: str


@dataclass(frozen=True, kw_only=True)
class RejectCase(CaseCommand):
    reasons: str


@dataclass(frozen=True, kw_only=True)
class RecordPayment(CaseCommand):
    period: str  # YYYY-MM
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class RecordService(CaseCommand):
    work_item: str
    start: dt.datetime
    end: dt.datetime
    place: str
    contract_id: UUID | None = None


@dataclass(frozen=True, kw_only=True)
class ReviewCase(CaseCommand):
    outcome: str
    notes: str
    new_monthly_amount: Decimal | None = None
    effective_from: dt.date | None = None


@dataclass(frozen=True, kw_only=True)
class SuspendCase(CaseCommand):
    reason: str


@dataclass(frozen=True, kw_only=True)
class ResumeCase(CaseCommand):
    reason: str


@dataclass(frozen=True, kw_only=True)
class CloseCase(CaseCommand):
    reason_code: str


@dataclass(frozen=True, kw_only=True)
class CorrectCaseRecord(CaseCommand):
    corrects_version: int
    correction: Correction
    reason: str
