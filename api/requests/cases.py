"""Request bodies of households, people and relief cases."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import Field

from api.deps import Amount, IsoDate, IsoDateTime, JsonBool, JsonInt, StrictModel, with_reason
from domain import case
from domain.commands import cases as commands
from domain.household import HouseholdMember
from domain.provenance import Provenance

Code = Annotated[str, Field(min_length=1, max_length=12)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Reason = Annotated[str | None, Field(default=None, max_length=2000)]
ResidentNumber = Annotated[str, Field(min_length=1, max_length=18)]


# Households and people -------------------------------------------------------------------------


class MemberBody(StrictModel):
    resident_id: ResidentNumber
    name: Annotated[str, Field(min_length=1, max_length=100)]
    relation: Annotated[str, Field(max_length=20)]

    def member(self) -> HouseholdMember:
        return HouseholdMember(self.resident_id, self.name, self.relation)


class RegisterHousehold(StrictModel):
    registered_division: Code
    residence_division: Code
    members: Annotated[list[MemberBody], Field(min_length=1, max_length=50)]
    reason: Reason = None

    def command(self, by: Provenance) -> commands.RegisterHousehold:
        return commands.RegisterHousehold(
            registered_division=self.registered_division,
            residence_division=self.residence_division,
            members=tuple(m.member() for m in self.members),
            provenance=with_reason(by, self.reason),
        )


class AddMember(MemberBody):
    by_birth: JsonBool = False
    reason: Reason = None

    def command(self, household_id: UUID, by: Provenance) -> commands.AddHouseholdMember:
        return commands.AddHouseholdMember(
            household_id=household_id,
            member=self.member(),
            by_birth=self.by_birth,
            provenance=with_reason(by, self.reason),
        )


class MoveOut(StrictModel):
    resident_id: ResidentNumber
    on: IsoDate
    reason: Reason = None

    def command(self, household_id: UUID, by: Provenance) -> commands.MoveOutMember:
        return commands.MoveOutMember(
            household_id=household_id,
            resident_id=self.resident_id,
            on=self.on,
            provenance=with_reason(by, self.reason),
        )


class RecordDeath(StrictModel):
    resident_id: ResidentNumber
    date_of_death: IsoDate
    reason: Reason = None

    def command(self, by: Provenance) -> commands.RecordDeath:
        return commands.RecordDeath(
            resident_id=self.resident_id,
            on=self.date_of_death,
            provenance=with_reason(by, self.reason),
        )


# Cases -----------------------------------------------------------------------------------------


class ReceiveApplication(StrictModel):
    household_id: UUID
    applicant_id: ResidentNumber
    programme: Annotated[str, Field(max_length=20, description="dibao, tekun or temporary")]
    window_division: Annotated[Code, Field(description="township or village of the window")]
    reason: Reason = None

    def command(self, by: Provenance) -> commands.ReceiveApplication:
        return commands.ReceiveApplication(
            household_id=self.household_id,
            applicant_id=self.applicant_id,
            programme=self.programme,
            window_division=self.window_division,
            provenance=with_reason(by, self.reason),
        )


class Assign(StrictModel):
    staff_id: UUID
    reason: Reason = None

    def command(self, case_id: UUID, by: Provenance, version: int | None) -> commands.AssignCase:
        return commands.AssignCase(
            case_id=case_id,
            staff_id=self.staff_id,
            provenance=with_reason(by, self.reason),
            expected_version=version,
        )


class IncomeItem(StrictModel):
    source: Annotated[str, Field(min_length=1, max_length=100)]
    monthly_amount: Amount


class Asset(StrictModel):
    kind: Annotated[str, Field(min_length=1, max_length=100)]
    value: Amount


class HomeVisitBody(StrictModel):
    visited_at: IsoDateTime
    place: Code
    visitor_id: Annotated[str, Field(min_length=1, max_length=100)]


class Investigation(StrictModel):
    income_items: Annotated[list[IncomeItem], Field(max_length=100)]
    assets: Annotated[list[Asset], Field(max_length=100)]
    household_size: JsonInt = Field(ge=1, le=50)
    home_visit: HomeVisitBody
    contract_id: UUID | None = None
    reason: Reason = None

    def command(
        self, case_id: UUID, by: Provenance, version: int | None
    ) -> commands.InvestigateCase:
        visit = self.home_visit
        return commands.InvestigateCase(
            case_id=case_id,
            means_test=case.MeansTest(
                income_items=tuple(
                    case.IncomeItem(i.source, i.monthly_amount) for i in self.income_items
                ),
                assets=tuple(case.Asset(a.kind, a.value) for a in self.assets),
                household_size=self.household_size,
                home_visit=case.HomeVisit(visit.visited_at, visit.place, visit.visitor_id),
            ),
            contract_id=self.contract_id,
            provenance=with_reason(by, self.reason),
            expected_version=version,
        )


class RecommendationBody(StrictModel):
    recommendation: Annotated[str, Field(max_length=20)]
    reasons: Text
    monthly_amount: Amount | None = None
    contract_id: UUID | None = None

    def command(self, case_id: UUID, by: Provenance, version: int | None) -> commands.RecommendCase:
        return commands.RecommendCase(
            case_id=case_id,
            recommendation=self.recommendation,
            reasons=self.reasons,
            monthly_amount=self.monthly_amount,
            contract_id=self.contract_id,
            provenance=with_reason(by, self.reasons),
            expected_version=version,
        )


class Approval(StrictModel):
    monthly_amount: Amount
    start_date: IsoDate
    reasons: Text

    def command(self, case_id: UUID, by: Provenance, version: int | None) -> commands.ApproveCase:
        return commands.ApproveCase(
            case_id=case_id,
            monthly_amount=self.monthly_amount,
            start_date=self.start_date,
            reasons=self.reasons,
            provenance=with_reason(by, self.reasons),
            expected_version=version,
        )


class Rejection(StrictModel):
    reasons: Text

    def command(self, case_id: UUID, by: Provenance, version: int | None) -> commands.RejectCase:
        return commands.RejectCase(
            case_id=case_id,
            reasons=self.reasons,
            provenance=with_reason(by, self.reasons),
            expected_version=version,
        )


class Payment(StrictModel):
    period: Annotated[str, Field(min_length=7, max_length=7, description="YYYY-MM")]
    amount: Amount
    reason: Reason = None

    def command(self, case_id: UUID, by: Provenance, version: int | None) -> commands.RecordPayment:
        return commands.RecordPayment(
            case_id=case_id,
            period=self.period,
            amount=self.amount,
            provenance=with_reason(by, self.reason),
            expected_version=version,
        )


class Service(StrictModel):
    work_item: Annotated[str, Field(max_length=60)]
    contract_id: UUID | None = None
    start: IsoDateTime
    end: IsoDateTime
    place: Code
    reason: Reason = None

    def command(self, case_id: UUID, by: Provenance, version: int | None) -> commands.RecordService:
        return commands.RecordService(
            case_id=case_id,
            work_item=self.work_item,
            contract_id=self.contract_id,
            start=self.start,
            end=self.end,
            place=self.place,
            provenance=with_reason(by, self.reason),
            expected_version=version,
        )


class Review(StrictModel):
    outcome: Annotated[str, Field(max_length=20)]
    notes: Text
    new_monthly_amount: Amount | None = None
    effective_from: IsoDate | None = None

    def command(self, case_id: UUID, by: Provenance, version: int | None) -> commands.ReviewCase:
        return commands.ReviewCase(
            case_id=case_id,
            outcome=self.outcome,
            notes=self.notes,
            new_monthly_amount=self.new_monthly_amount,
            effective_from=self.effective_from,
            provenance=with_reason(by, self.notes),
            expected_version=version,
        )


class WithReason(StrictModel):
    reason: Text

    def suspension(
        self, case_id: UUID, by: Provenance, version: int | None
    ) -> commands.SuspendCase:
        return commands.SuspendCase(
            case_id=case_id,
            reason=self.reason,
            provenance=with_reason(by, self.reason),
            expected_version=version,
        )

    def resumption(self, case_id: UUID, by: Provenance, version: int | None) -> commands.ResumeCase:
        return commands.ResumeCase(
            case_id=case_id,
            reason=self.reason,
            provenance=with_reason(by, self.reason),
            expected_version=version,
        )


class Closure(StrictModel):
    reason_code: Annotated[
        str,
        Field(
            max_length=40,
            description=("income_above_line, death, moved_away, voluntary or fraud_found"),
        ),
    ]
    reason: Reason = None

    def command(self, case_id: UUID, by: Provenance, version: int | None) -> commands.CloseCase:
        return commands.CloseCase(
            case_id=case_id,
            reason_code=self.reason_code,
            provenance=with_reason(by, self.reason),
            expected_version=version,
        )


class Correction(StrictModel):
    corrects_version: JsonInt = Field(ge=1)
    changes: Annotated[
        dict[str, Any],
        Field(
            description='{"amount": X} (a payment; 0 voids it), {"void": true} (a service), or '
            "any of household_size, income_items, assets (an investigation)"
        ),
    ]
    reason: Text

    def command(
        self, case_id: UUID, by: Provenance, version: int | None
    ) -> commands.CorrectCaseRecord:
        return commands.CorrectCaseRecord(
            case_id=case_id,
            corrects_version=self.corrects_version,
            correction=case.parse_correction(self.changes),
            reason=self.reason,
            provenance=with_reason(by, self.reason),
            expected_version=version,
        )
