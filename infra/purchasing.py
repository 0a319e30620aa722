"""Commands for the purchase of relief services: contractors, contracts and staff.

Every command that gives a contractor work saves the contract's event and the contractor's
``WorkTakenOn`` event in one atomic save, and a ban changes the contractor too: of an award and
a ban that race, optimistic concurrency lets exactly one succeed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from domain.catalogue import WorkItem
from domain.contract import Contract
from domain.contractor import Contractor, contractor_id_for
from domain.credit_code import parse_credit_code
from domain.errors import Duplicate, OutsideContract
from domain.identifiers import DivisionCode
from domain.provenance import Provenance
from domain.staff import StaffMember
from infra.ledger_base import LedgerBase


class PurchasingCommands(LedgerBase):
    name = "relief"

    # Contractors ---------------------------------------------------------------------------

    def register_contractor(
        self,
        *,
        name: str,
        contractor_type: str,
        credit_code: str,
        institution_class: str | None,
        provenance: Provenance,
    ) -> Contractor:
        code = parse_credit_code(credit_code, field="credit_code").code
        existing = contractor_id_for(code)
        if self._exists(existing):
            raise Duplicate(
                f"credit code {code} is registered already as contractor {existing}",
                field="credit_code",
            )
        contractor = Contractor.register(
            name=name,
            contractor_type=contractor_type,
            credit_code=code,
            institution_class=institution_class,
            provenance=provenance,
        )
        self.save(contractor)
        return contractor

    def get_contractor(self, contractor_id: UUID) -> Contractor:
        return self._get(Contractor, contractor_id)

    def ban_contractor(
        self,
        contractor_id: UUID,
        *,
        start: dt.date,
        end: dt.date,
        reason: str,
        deciding_unit: str,
        provenance: Provenance,
    ) -> Contractor:
        contractor = self.get_contractor(contractor_id)
        contractor.ban(
            start=start, end=end, reason=reason, deciding_unit=deciding_unit, provenance=provenance
        )
        self.save(contractor)
        return contractor

    # Contracts -----------------------------------------------------------------------------

    def get_contract(self, contract_id: UUID) -> Contract:
        return self._get(Contract, contract_id)

    def award_contract(
        self,
        *,
        contractor_id: UUID,
        purchaser: str,
        work_items: list[str],
        service_area: list[str],
        start: dt.date,
        end: dt.date,
        value: object,
        funding_source: str,
        provenance: Provenance,
        awarded_on: dt.date | None = None,
    ) -> Contract:
        contractor = self.get_contractor(contractor_id)
        contract = Contract.award(
            contractor=contractor,
            purchaser=purchaser,
            work_items=work_items,
            service_area=service_area,
            start=start,
            end=end,
            value=value,
            funding_source=funding_source,
            awarded_on=awarded_on or self.today(),
            today=self.today(),
            provenance=provenance,
        )
        self.save(contract, contractor)
        return contract

    def amend_contract(
        self,
        contract_id: UUID,
        *,
        reason: str,
        provenance: Provenance,
        effective_from: dt.date | None = None,
        expected_version: int | None = None,
        **changes: Any,
    ) -> Contract:
        contract = self.get_contract(contract_id)
        self._check_expected_version(contract, expected_version)
        contractor = self.get_contractor(contract.contractor_id)
        contract.amend(
            contractor=contractor,
            effective_from=effective_from or self.today(),
            today=self.today(),
            reason=reason,
            provenance=provenance,
            **changes,
        )
        self.save(contract, contractor)
        return contract

    def renew_contract(
        self,
        contract_id: UUID,
        *,
        new_end: dt.date,
        added_value: object,
        reason: str,
        provenance: Provenance,
        effective_from: dt.date | None = None,
    ) -> Contract:
        contract = self.get_contract(contract_id)
        contractor = self.get_contractor(contract.contractor_id)
        contract.renew(
            contractor=contractor,
            new_end=new_end,
            added_value=added_value,
            reason=reason,
            effective_from=effective_from or self.today(),
            today=self.today(),
            provenance=provenance,
        )
        self.save(contract, contractor)
        return contract

    def record_contract_expiry(self, contract_id: UUID, *, provenance: Provenance) -> Contract:
        contract = self.get_contract(contract_id)
        contract.record_expiry(today=self.today(), provenance=provenance)
        self.save(contract)
        return contract

    def _on_contract(self, contract_id: UUID, command: str, **kwargs: Any) -> Contract:
        contract = self.get_contract(contract_id)
        getattr(contract, command)(**kwargs)
        self.save(contract)
        return contract

    def invoice_contract(self, contract_id: UUID, **kwargs: Any) -> Contract:
        return self._on_contract(contract_id, "invoice", **kwargs)

    def evaluate_contract(self, contract_id: UUID, **kwargs: Any) -> Contract:
        return self._on_contract(contract_id, "evaluate", **kwargs)

    def record_violation(self, contract_id: UUID, **kwargs: Any) -> Contract:
        return self._on_contract(contract_id, "record_violation", **kwargs)

    def impose_penalty(self, contract_id: UUID, **kwargs: Any) -> Contract:
        return self._on_contract(contract_id, "impose_penalty", **kwargs)

    def terminate_contract(self, contract_id: UUID, **kwargs: Any) -> Contract:
        return self._on_contract(contract_id, "terminate", **kwargs)

    def check_contract(
        self,
        contract_id: UUID,
        *,
        work_item: WorkItem,
        division: DivisionCode,
        at: dt.datetime,
        contractor_credit_code: str | None = None,
    ) -> Contract:
        """The contract check: raise OutsideContract naming why, or return the contract.

        ``contractor_credit_code`` is the acting organisation when contractor staff record work:
        it must be the contract's own contractor.
        """
        contract = self.get_contract(contract_id)
        if contractor_credit_code is not None and (
            contractor_credit_code != contract.contractor_credit_code
        ):
            raise OutsideContract(
                f"contract {contract_id} is not a contract of organisation "
                f"{contractor_credit_code}",
                field="contract_id",
            )
        contractor = self.get_contractor(contract.contractor_id)
        contract.check_covers(contractor=contractor, work_item=work_item, division=division, at=at)
        return contract

    # Staff ---------------------------------------------------------------------------------

    def get_staff(self, staff_id: UUID) -> StaffMember:
        return self._get(StaffMember, staff_id)

    def hire_staff(
        self,
        *,
        name: str,
        kind: str,
        provenance: Provenance,
        government_unit: str | None = None,
        contract_id: UUID | None = None,
    ) -> StaffMember:
        contract = self.get_contract(contract_id) if contract_id else None
        staff = StaffMember.hire(
            name=name,
            kind=kind,
            government_unit=government_unit,
            contract=contract,
            provenance=provenance,
        )
        self.save(staff)
        return staff

    def assign_staff(self, staff_id: UUID, *, division: str, provenance: Provenance) -> StaffMember:
        staff = self.get_staff(staff_id)
        contract = self.get_contract(staff.contract_id) if staff.contract_id else None
        staff.assign(division=division, provenance=provenance, contract=contract)
        self.save(staff)
        return staff

    def _on_staff(self, staff_id: UUID, command: str, **kwargs: Any) -> StaffMember:
        staff = self.get_staff(staff_id)
        getattr(staff, command)(**kwargs)
        self.save(staff)
        return staff

    def record_staff_training(self, staff_id: UUID, **kwargs: Any) -> StaffMember:
        return self._on_staff(staff_id, "record_training", **kwargs)

    def rate_staff(self, staff_id: UUID, **kwargs: Any) -> StaffMember:
        return self._on_staff(staff_id, "rate", **kwargs)

    def remove_staff(self, staff_id: UUID, **kwargs: Any) -> StaffMember:
        return self._on_staff(staff_id, "remove", **kwargs)

    def staff_contract(self, staff: StaffMember) -> Contract | None:
        return self.get_contract(staff.contract_id) if staff.contract_id else None
