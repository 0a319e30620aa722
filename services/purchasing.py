"""The purchase of relief services: contractors, contracts and staff; one handler per command.

Every command that gives a contractor work saves the contract's event and the contractor's
``WorkTakenOn`` event in one atomic save, and a ban changes the contractor too: of an award and
a ban that race, optimistic concurrency lets exactly one succeed.
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.catalogue import WorkItem
from domain.clock import Clock
from domain.commands.purchasing import (
    AmendContract,
    AssignStaff,
    AwardContract,
    BanContractor,
    ContractCommand,
    EvaluateContract,
    HireStaff,
    ImposePenalty,
    InvoiceContract,
    LinkSignIn,
    RateStaff,
    RecordContractExpiry,
    RecordStaffTraining,
    RecordViolation,
    RegisterContractor,
    RemoveStaff,
    RenewContract,
    StaffCommand,
    TerminateContract,
    UnlinkSignIn,
)
from domain.contract import DEFAULT_LATE_ENTRY_DAYS, Contract
from domain.contractor import Contractor, contractor_id_for
from domain.credit_code import parse_credit_code
from domain.errors import Duplicate, NotFound, OutsideContract
from domain.identifiers import DivisionCode
from domain.staff import SignIn, StaffMember, sign_in_id
from services.divisions import DivisionService
from services.store import Store, check_expected_version, paying_contract


def _area(codes: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(code, f"service_area[{i}]") for i, code in enumerate(codes)]


class PurchasingService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        divisions: DivisionService,
        late_entry_days: int = DEFAULT_LATE_ENTRY_DAYS,
        identity_key: bytes | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        #: every division a command names must exist in the register at the command's date
        self.divisions = divisions
        self.late_entry_days = late_entry_days
        self.identity_key = identity_key  # staff's resident IDs are kept as blind indexes

    # Contractors ---------------------------------------------------------------------------

    def register_contractor(self, command: RegisterContractor) -> Contractor:
        code = parse_credit_code(command.credit_code, field="credit_code").code
        existing = contractor_id_for(code)
        if self.store.exists(existing):
            raise Duplicate(
                f"credit code {code} is registered already as contractor {existing}",
                field="credit_code",
            )
        contractor = Contractor.register(
            name=command.name,
            contractor_type=command.contractor_type,
            credit_code=code,
            institution_class=command.institution_class,
            provenance=command.provenance,
        )
        self.store.save(contractor)
        return contractor

    def ban_contractor(self, command: BanContractor) -> Contractor:
        contractor = self.store.get(Contractor, command.contractor_id)
        contractor.ban(
            start=command.start,
            end=command.end,
            reason=command.reason,
            deciding_unit=command.deciding_unit,
            provenance=command.provenance,
        )
        self.divisions.require(command.deciding_unit, command.start, "deciding_unit")
        self.store.save(contractor)
        return contractor

    # Contracts -----------------------------------------------------------------------------

    def award_contract(self, command: AwardContract) -> Contract:
        contractor = self.store.get(Contractor, command.contractor_id)
        today = self.clock.today()
        contract = Contract.award(
            contractor=contractor,
            purchaser=command.purchaser,
            work_items=command.work_items,
            service_area=command.service_area,
            start=command.start,
            end=command.end,
            value=command.value,
            funding_source=command.funding_source,
            awarded_on=command.awarded_on or today,
            today=today,
            provenance=command.provenance,
        )
        self.divisions.require(command.purchaser, command.awarded_on or today, "purchaser")
        self.divisions.require_all(_area(command.service_area), command.start)
        self.store.save(contract, contractor)
        return contract

    def amend_contract(self, command: AmendContract) -> Contract:
        contract = self._contract(command)
        contractor = self.store.get(Contractor, contract.contractor_id)
        today = self.clock.today()
        contract.amend(
            contractor=contractor,
            effective_from=command.effective_from or today,
            today=today,
            reason=command.reason,
            provenance=command.provenance,
            value=command.value,
            start=command.start,
            end=command.end,
            work_items=command.work_items,
            service_area=command.service_area,
        )
        if command.service_area is not None:
            self.divisions.require_all(_area(command.service_area), command.effective_from or today)
        self.store.save(contract, contractor)
        return contract

    def renew_contract(self, command: RenewContract) -> Contract:
        contract = self._contract(command)
        contractor = self.store.get(Contractor, contract.contractor_id)
        today = self.clock.today()
        contract.renew(
            contractor=contractor,
            new_end=command.new_end,
            added_value=command.added_value,
            reason=command.reason,
            effective_from=command.effective_from or today,
            today=today,
            provenance=command.provenance,
        )
        self.store.save(contract, contractor)
        return contract

    def record_contract_expiry(self, command: RecordContractExpiry) -> Contract:
        contract = self._contract(command)
        contract.record_expiry(today=self.clock.today(), provenance=command.provenance)
        self.store.save(contract)
        return contract

    def invoice_contract(self, command: InvoiceContract) -> Contract:
        contract = self._contract(command)
        contract.invoice(
            invoice_number=command.invoice_number,
            period_start=command.period_start,
            period_end=command.period_end,
            amount=command.amount,
            provenance=command.provenance,
        )
        self.store.save(contract)
        return contract

    def evaluate_contract(self, command: EvaluateContract) -> Contract:
        contract = self._contract(command)
        contract.evaluate(
            period_start=command.period_start,
            period_end=command.period_end,
            score=command.score,
            provenance=command.provenance,
        )
        self.store.save(contract)
        return contract

    def record_violation(self, command: RecordViolation) -> Contract:
        contract = self._contract(command)
        contract.record_violation(
            kind=command.kind,
            severity=command.severity,
            description=command.description,
            evidence=command.evidence,
            provenance=command.provenance,
        )
        self.store.save(contract)
        return contract

    def impose_penalty(self, command: ImposePenalty) -> Contract:
        contract = self._contract(command)
        contract.impose_penalty(
            violation=command.violation,
            kind=command.kind,
            basis=command.basis,
            amount=command.amount,
            provenance=command.provenance,
        )
        self.store.save(contract)
        return contract

    def terminate_contract(self, command: TerminateContract) -> Contract:
        contract = self._contract(command)
        contract.terminate(
            effective_at=command.effective_at,
            basis=command.basis,
            reason=command.reason,
            provenance=command.provenance,
        )
        self.store.save(contract)
        return contract

    def _contract(self, command: ContractCommand) -> Contract:
        contract = self.store.get(Contract, command.contract_id)
        check_expected_version(contract, command.expected_version)
        return contract

    # The contract check --------------------------------------------------------------------

    def check_contract(
        self,
        contract_id: UUID,
        *,
        work_item: WorkItem,
        division: DivisionCode,
        at: dt.datetime,
        contractor_credit_code: str | None = None,
        recorded_on: dt.date | None = None,
    ) -> Contract:
        """The contract check: raise OutsideContract naming why, or return the contract.

        ``contractor_credit_code`` is the acting organisation when contractor staff record work:
        it must be the contract's own contractor; ``recorded_on``, the day work is being
        recorded (a late entry must come within the late-entry window).
        """
        contract = self.store.get(Contract, contract_id)
        if contractor_credit_code is not None and (
            contractor_credit_code != contract.contractor_credit_code
        ):
            raise OutsideContract(
                f"contract {contract_id} is not a contract of organisation "
                f"{contractor_credit_code}",
                field="contract_id",
            )
        contractor = self.store.get(Contractor, contract.contractor_id)
        contract.check_covers(
            contractor=contractor,
            work_item=work_item,
            division=division,
            at=at,
            recorded_on=recorded_on,
            late_entry_days=self.late_entry_days,
        )
        return contract

    def contract_check(
        self,
        *,
        contract_id: UUID,
        contractor_credit_code: str,
        work_item: WorkItem,
        division: DivisionCode,
        at: dt.datetime,
    ) -> UUID:
        """The contract check as the relief case asks it (domain/case.py ``ContractCheck``):
        contractor staff's own contract covers this work; the contractor's id."""
        return self.check_contract(
            contract_id,
            work_item=work_item,
            division=division,
            at=at,
            contractor_credit_code=contractor_credit_code,
            recorded_on=self.clock.today(),
        ).contractor_id

    # Staff ---------------------------------------------------------------------------------

    def hire_staff(self, command: HireStaff) -> StaffMember:
        contract = self.store.get(Contract, command.contract_id) if command.contract_id else None
        staff = StaffMember.hire(
            name=command.name,
            kind=command.kind,
            government_unit=command.government_unit,
            contract=contract,
            resident_id=command.resident_id,
            key=self.identity_key,
            provenance=command.provenance,
        )
        if command.government_unit is not None:
            self.divisions.require(command.government_unit, self.clock.today(), "government_unit")
        self.store.save(staff)
        return staff

    def assign_staff(self, command: AssignStaff) -> StaffMember:
        staff = self._staff(command)
        staff.assign(
            division=command.division,
            provenance=command.provenance,
            contract=self.staff_contract(staff),
        )
        self.divisions.require(command.division, self.clock.today(), "division")
        self.store.save(staff)
        return staff

    def record_staff_training(self, command: RecordStaffTraining) -> StaffMember:
        staff = self._staff(command)
        staff.record_training(
            course=command.course,
            completed_on=command.completed_on,
            hours=command.hours,
            provenance=command.provenance,
        )
        self.store.save(staff)
        return staff

    def rate_staff(self, command: RateStaff) -> StaffMember:
        staff = self._staff(command)
        staff.rate(period=command.period, rating=command.rating, provenance=command.provenance)
        self.store.save(staff)
        return staff

    def remove_staff(self, command: RemoveStaff) -> StaffMember:
        staff = self._staff(command)
        staff.remove(on=command.on, reason=command.reason, provenance=command.provenance)
        self.store.save(staff)
        return staff

    def link_sign_in(self, command: LinkSignIn) -> StaffMember:
        """Link a sign-in to the staff record, in one save with the ``SignIn`` that says which
        record holds it (refused while another record that is not removed does)."""
        staff = self._staff(command)
        staff.link_sign_in(
            issuer=command.issuer, subject=command.subject, provenance=command.provenance
        )
        existing = self._sign_in(command.issuer, command.subject)
        holder = None
        if existing is not None and existing.staff_id is not None:
            holder = self.store.get(StaffMember, existing.staff_id)
        sign_in = SignIn.link(
            issuer=command.issuer,
            subject=command.subject,
            staff=staff,
            holder=holder,
            existing=existing,
            provenance=command.provenance,
        )
        self.store.save(staff, sign_in)
        return staff

    def unlink_sign_in(self, command: UnlinkSignIn) -> StaffMember:
        staff = self._staff(command)
        staff.unlink_sign_in(
            issuer=command.issuer, subject=command.subject, provenance=command.provenance
        )
        sign_in = self._sign_in(command.issuer, command.subject)
        touched: list[Aggregate] = [staff]
        if sign_in is not None:
            sign_in.unlink(staff_id=staff.id, provenance=command.provenance)
            touched.append(sign_in)
        self.store.save(*touched)
        return staff

    def signed_in_staff(self, issuer: str, subject: str) -> UUID | None:
        """The staff record a sign-in is linked to, if any (one small aggregate's read)."""
        sign_in = self._sign_in(issuer, subject)
        return sign_in.staff_id if sign_in is not None else None

    def _sign_in(self, issuer: str, subject: str) -> SignIn | None:
        try:
            return self.store.get(SignIn, sign_in_id(issuer, subject))
        except NotFound:
            return None

    def staff_contract(self, staff: StaffMember) -> Contract | None:
        """The contract that pays a contractor's staff member (None for government staff)."""
        return paying_contract(self.store, staff)

    def _staff(self, command: StaffCommand) -> StaffMember:
        staff = self.store.get(StaffMember, command.staff_id)
        check_expected_version(staff, command.expected_version)
        return staff
