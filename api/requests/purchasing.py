"""Request bodies of contractors, service contracts and staff."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import Field

from api.deps import Amount, IsoDate, IsoDateTime, JsonInt, StrictModel, with_reason
from domain.commands import purchasing as commands
from domain.contract import evidence_ref
from domain.provenance import Provenance

Text = Annotated[str, Field(min_length=1, max_length=2000)]
Code = Annotated[str, Field(min_length=1, max_length=12)]
Reason = Annotated[str | None, Field(default=None, max_length=2000)]
WorkItems = Annotated[list[Annotated[str, Field(max_length=60)]], Field(max_length=20)]
ServiceArea = Annotated[list[Code], Field(max_length=200)]
ResidentNumber = Annotated[str, Field(min_length=1, max_length=18)]


# Contractors -----------------------------------------------------------------------------------


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

    def command(self, by: Provenance) -> commands.RegisterContractor:
        return commands.RegisterContractor(
            name=self.name,
            contractor_type=self.contractor_type,
            credit_code=self.credit_code,
            institution_class=self.institution_class,
            provenance=with_reason(by, self.reason),
        )


class BanContractor(StrictModel):
    start: IsoDate
    end: IsoDate
    reason: Text
    deciding_unit: Code

    def command(self, contractor_id: UUID, by: Provenance) -> commands.BanContractor:
        return commands.BanContractor(
            contractor_id=contractor_id,
            start=self.start,
            end=self.end,
            reason=self.reason,
            deciding_unit=self.deciding_unit,
            provenance=with_reason(by, self.reason),
        )


# Contracts -------------------------------------------------------------------------------------


class AwardContract(StrictModel):
    contractor_id: UUID
    purchaser: Code
    work_items: WorkItems
    service_area: ServiceArea
    start: IsoDate
    end: IsoDate
    value: Amount
    funding_source: Annotated[str, Field(max_length=40)]
    awarded_on: IsoDate | None = None
    reason: Reason = None

    def command(self, by: Provenance) -> commands.AwardContract:
        return commands.AwardContract(
            contractor_id=self.contractor_id,
            purchaser=self.purchaser,
            work_items=tuple(self.work_items),
            service_area=tuple(self.service_area),
            start=self.start,
            end=self.end,
            value=self.value,
            funding_source=self.funding_source,
            awarded_on=self.awarded_on,
            provenance=with_reason(by, self.reason),
        )


class AmendContract(StrictModel):
    reason: Text
    effective_from: IsoDate | None = None
    value: Amount | None = None
    start: IsoDate | None = None
    end: IsoDate | None = None
    work_items: WorkItems | None = None
    service_area: ServiceArea | None = None

    def command(
        self, contract_id: UUID, by: Provenance, version: int | None
    ) -> commands.AmendContract:
        return commands.AmendContract(
            contract_id=contract_id,
            reason=self.reason,
            effective_from=self.effective_from,
            value=self.value,
            start=self.start,
            end=self.end,
            work_items=None if self.work_items is None else tuple(self.work_items),
            service_area=None if self.service_area is None else tuple(self.service_area),
            provenance=with_reason(by, self.reason),
            expected_version=version,
        )


class RenewContract(StrictModel):
    new_end: IsoDate
    added_value: Amount
    reason: Text
    effective_from: IsoDate | None = None

    def command(self, contract_id: UUID, by: Provenance) -> commands.RenewContract:
        return commands.RenewContract(
            contract_id=contract_id,
            new_end=self.new_end,
            added_value=self.added_value,
            reason=self.reason,
            effective_from=self.effective_from,
            provenance=with_reason(by, self.reason),
        )


class RecordExpiry(StrictModel):
    reason: Reason = None

    def command(self, contract_id: UUID, by: Provenance) -> commands.RecordContractExpiry:
        return commands.RecordContractExpiry(
            contract_id=contract_id, provenance=with_reason(by, self.reason)
        )


class Invoice(StrictModel):
    invoice_number: Annotated[str, Field(min_length=1, max_length=64)]
    period_start: IsoDate
    period_end: IsoDate
    amount: Amount
    reason: Reason = None

    def command(self, contract_id: UUID, by: Provenance) -> commands.InvoiceContract:
        return commands.InvoiceContract(
            contract_id=contract_id,
            invoice_number=self.invoice_number,
            period_start=self.period_start,
            period_end=self.period_end,
            amount=self.amount,
            provenance=with_reason(by, self.reason),
        )


class Evaluation(StrictModel):
    period_start: IsoDate
    period_end: IsoDate
    score: Decimal
    reason: Reason = None

    def command(self, contract_id: UUID, by: Provenance) -> commands.EvaluateContract:
        return commands.EvaluateContract(
            contract_id=contract_id,
            period_start=self.period_start,
            period_end=self.period_end,
            score=self.score,
            provenance=with_reason(by, self.reason),
        )


class EvidenceRef(StrictModel):
    position: JsonInt | None = Field(default=None, ge=1)
    aggregate_id: UUID | None = None
    version: JsonInt | None = Field(default=None, ge=1)


class Violation(StrictModel):
    kind: Annotated[str, Field(max_length=40)]
    severity: Annotated[str, Field(max_length=40)]
    description: Text
    evidence: Annotated[list[EvidenceRef], Field(max_length=200)]

    def command(self, contract_id: UUID, by: Provenance) -> commands.RecordViolation:
        return commands.RecordViolation(
            contract_id=contract_id,
            kind=self.kind,
            severity=self.severity,
            description=self.description,
            evidence=tuple(
                evidence_ref(position=e.position, aggregate_id=e.aggregate_id, version=e.version)
                for e in self.evidence
            ),
            provenance=with_reason(by, self.description),
        )


class Penalty(StrictModel):
    violation: JsonInt = Field(ge=1)
    kind: Annotated[str, Field(max_length=40)]
    basis: Text
    amount: Amount | None = None

    def command(self, contract_id: UUID, by: Provenance) -> commands.ImposePenalty:
        return commands.ImposePenalty(
            contract_id=contract_id,
            violation=self.violation,
            kind=self.kind,
            basis=self.basis,
            amount=self.amount,
            provenance=with_reason(by, self.basis),
        )


class Termination(StrictModel):
    effective_at: IsoDateTime
    basis: Annotated[str, Field(max_length=40)]
    reason: Text

    def command(self, contract_id: UUID, by: Provenance) -> commands.TerminateContract:
        return commands.TerminateContract(
            contract_id=contract_id,
            effective_at=self.effective_at,
            basis=self.basis,
            reason=self.reason,
            provenance=with_reason(by, self.reason),
        )


# Staff -----------------------------------------------------------------------------------------


class HireStaff(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    kind: Annotated[str, Field(max_length=40)]
    government_unit: Code | None = None
    contract_id: UUID | None = None
    resident_id: Annotated[
        ResidentNumber | None,
        Field(description="the person's resident ID: kept only as its blind index"),
    ] = None
    reason: Reason = None

    def command(self, by: Provenance) -> commands.HireStaff:
        return commands.HireStaff(
            name=self.name,
            kind=self.kind,
            government_unit=self.government_unit,
            contract_id=self.contract_id,
            resident_id=self.resident_id,
            provenance=with_reason(by, self.reason),
        )


class AssignStaff(StrictModel):
    division: Code
    reason: Reason = None

    def command(self, staff_id: UUID, by: Provenance) -> commands.AssignStaff:
        return commands.AssignStaff(
            staff_id=staff_id, division=self.division, provenance=with_reason(by, self.reason)
        )


class Training(StrictModel):
    course: Annotated[str, Field(min_length=1, max_length=200)]
    completed_on: IsoDate
    hours: Decimal

    def command(self, staff_id: UUID, by: Provenance) -> commands.RecordStaffTraining:
        return commands.RecordStaffTraining(
            staff_id=staff_id,
            course=self.course,
            completed_on=self.completed_on,
            hours=self.hours,
            provenance=by,
        )


class StaffRating(StrictModel):
    period: Annotated[str, Field(min_length=1, max_length=20)]
    rating: Annotated[str, Field(max_length=20)]
    reason: Reason = None

    def command(self, staff_id: UUID, by: Provenance) -> commands.RateStaff:
        return commands.RateStaff(
            staff_id=staff_id,
            period=self.period,
            rating=self.rating,
            provenance=with_reason(by, self.reason),
        )


class SignInLink(StrictModel):
    """A sign-in (the ``sub`` of the identity provider's tokens) that acts as the staff
    record; ``issuer`` defaults to the identity provider this deployment trusts."""

    subject: Annotated[str, Field(min_length=1, max_length=200)]
    issuer: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    reason: Reason = None

    def link(self, staff_id: UUID, issuer: str, by: Provenance) -> commands.LinkSignIn:
        return commands.LinkSignIn(
            staff_id=staff_id,
            issuer=self.issuer or issuer,
            subject=self.subject,
            provenance=with_reason(by, self.reason),
        )

    def unlink(self, staff_id: UUID, issuer: str, by: Provenance) -> commands.UnlinkSignIn:
        return commands.UnlinkSignIn(
            staff_id=staff_id,
            issuer=self.issuer or issuer,
            subject=self.subject,
            provenance=with_reason(by, self.reason),
        )


class Removal(StrictModel):
    on: IsoDate
    reason: Text

    def command(self, staff_id: UUID, by: Provenance) -> commands.RemoveStaff:
        return commands.RemoveStaff(
            staff_id=staff_id,
            on=self.on,
            reason=self.reason,
            provenance=with_reason(by, self.reason),
        )
