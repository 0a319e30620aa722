"""Commands for households, people and relief cases.

A case claims its applicant's slot for its programme (on the Person aggregate) in the same
atomic save that records it, so two applications racing for the same person and programme
anywhere in the province cannot both be saved. A death is recorded once on the person and, in
the same save, on the household and on every active case of that person.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from domain.case import MeansTest, ReliefCase
from domain.catalogue import WorkItem
from domain.household import Household, MemberInput
from domain.identifiers import DivisionCode, parse_resident_id
from domain.person import Person, person_id_for
from domain.provenance import Provenance
from infra.ledger_base import LedgerBase


class CaseCommands(LedgerBase):
    name = "relief"

    # People --------------------------------------------------------------------------------

    def person_id(self, resident_id: str) -> UUID:
        return person_id_for(resident_id, self.identity_key)

    def find_person(self, resident_id: str) -> Person | None:
        number = parse_resident_id(resident_id, field="resident_id").number
        person_id = self.person_id(number)
        return self._get(Person, person_id) if self._exists(person_id) else None

    def _person_for(
        self, member: MemberInput, household_id: UUID, provenance: Provenance
    ) -> Person:
        number, name = member.resident_id, member.name
        existing = self.find_person(number)
        if existing is None:
            return Person.register(
                resident_id=number,
                name=name,
                household_id=household_id,
                key=self.identity_key,
                provenance=provenance,
            )
        existing.check_alive()
        existing.join_household(household_id, provenance)
        return existing

    def record_death(self, *, resident_id: str, on: dt.date, provenance: Provenance) -> Person:
        person = self.find_person(resident_id)
        if person is None:
            from domain.errors import NotFound

            raise NotFound("no person with that resident ID number is known", field="resident_id")
        person.record_death(on=on, today=self.today(), provenance=provenance)
        touched: list[Any] = [person]
        if person.household_id is not None:
            household = self.get_household(person.household_id)
            household.note_death(resident_id=person.resident_id, on=on, provenance=provenance)
            touched.append(household)
        for case_id in person.cases:
            case = self.get_case(case_id)
            if case.is_active:
                case.note_beneficiary_death(on=on, provenance=provenance)
                touched.append(case)
        self.save(*touched)
        return person

    # Households ----------------------------------------------------------------------------

    def get_household(self, household_id: UUID) -> Household:
        return self._get(Household, household_id)

    def register_household(
        self,
        *,
        registered_division: str,
        residence_division: str,
        members: list[MemberInput],
        provenance: Provenance,
    ) -> Household:
        household = Household.register(
            registered_division=registered_division,
            residence_division=residence_division,
            members=members,
            today=self.today(),
            provenance=provenance,
        )
        people = [self._person_for(m, household.id, provenance) for m in members]
        self.save(household, *people)
        return household

    def add_household_member(
        self,
        household_id: UUID,
        *,
        member: MemberInput,
        by_birth: bool,
        provenance: Provenance,
    ) -> Household:
        household = self.get_household(household_id)
        household.add_member(
            member=member, by_birth=by_birth, today=self.today(), provenance=provenance
        )
        person = self._person_for(member, household.id, provenance)
        self.save(household, person)
        return household

    def move_out_member(
        self, household_id: UUID, *, resident_id: str, on: dt.date, provenance: Provenance
    ) -> Household:
        household = self.get_household(household_id)
        household.move_out(resident_id=resident_id, on=on, provenance=provenance)
        person = self.find_person(resident_id)
        touched: list[Any] = [household]
        if person is not None:
            person.leave_household(provenance)
            touched.append(person)
        self.save(*touched)
        return household

    # Cases ---------------------------------------------------------------------------------

    def get_case(self, case_id: UUID, *, version: int | None = None) -> ReliefCase:
        return self._get(ReliefCase, case_id, version=version)

    def _contract_check(
        self,
        *,
        contract_id: UUID,
        contractor_credit_code: str,
        work_item: WorkItem,
        division: DivisionCode,
        at: dt.datetime,
    ) -> UUID:
        contract = self.check_contract(  # type: ignore[attr-defined]  # from PurchasingCommands
            contract_id,
            work_item=work_item,
            division=division,
            at=at,
            contractor_credit_code=contractor_credit_code,
        )
        contractor_id: UUID = contract.contractor_id
        return contractor_id

    def receive_application(
        self,
        *,
        household_id: UUID,
        applicant_id: str,
        programme: str,
        window_division: str,
        provenance: Provenance,
    ) -> ReliefCase:
        household = self.get_household(household_id)
        case = ReliefCase.receive(
            household=household,
            applicant_id=applicant_id,
            programme=programme,
            window_division=window_division,
            provenance=provenance,
        )
        person = self._get(Person, self.person_id(case.applicant_id))
        person.check_alive()
        person.claim(programme=case.programme.value, case_id=case.id, provenance=provenance)
        self.save(case, person)
        return case

    def _on_case(
        self, case_id: UUID, expected_version: int | None, command: str, **kwargs: Any
    ) -> ReliefCase:
        case = self.get_case(case_id)
        self._check_expected_version(case, expected_version)
        getattr(case, command)(**kwargs)
        if not case.is_active:  # rejected or closed: free the person's programme slot
            person = self._get(Person, self.person_id(case.applicant_id))
            person.release(
                programme=case.programme.value, case_id=case.id, provenance=kwargs["provenance"]
            )
            self.save(case, person)
        else:
            self.save(case)
        return case

    def assign_case(
        self,
        case_id: UUID,
        *,
        staff_id: UUID,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> ReliefCase:
        staff = self.get_staff(staff_id)  # type: ignore[attr-defined]
        return self._on_case(
            case_id,
            expected_version,
            "assign",
            staff=staff,
            contract=self.staff_contract(staff),  # type: ignore[attr-defined]
            today=self.today(),
            provenance=provenance,
        )

    def investigate_case(
        self,
        case_id: UUID,
        *,
        means_test: MeansTest,
        contract_id: UUID | None,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> ReliefCase:
        return self._on_case(
            case_id,
            expected_version,
            "investigate",
            means_test=means_test,
            contract_id=contract_id,
            check=self._contract_check,
            now=self.now(),
            provenance=provenance,
        )

    def recommend_case(
        self,
        case_id: UUID,
        *,
        recommendation: str,
        reasons: str,
        monthly_amount: object | None,
        contract_id: UUID | None,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> ReliefCase:
        return self._on_case(
            case_id,
            expected_version,
            "recommend",
            recommendation=recommendation,
            reasons=reasons,
            monthly_amount=monthly_amount,
            contract_id=contract_id,
            check=self._contract_check,
            now=self.now(),
            provenance=provenance,
        )

    def approve_case(
        self,
        case_id: UUID,
        *,
        monthly_amount: object,
        start_date: dt.date,
        reasons: str,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> ReliefCase:
        return self._on_case(
            case_id,
            expected_version,
            "approve",
            monthly_amount=monthly_amount,
            start_date=start_date,
            reasons=reasons,
            provenance=provenance,
        )

    def reject_case(
        self,
        case_id: UUID,
        *,
        reasons: str,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> ReliefCase:
        return self._on_case(
            case_id, expected_version, "reject", reasons=reasons, provenance=provenance
        )

    def record_payment(
        self,
        case_id: UUID,
        *,
        period: str,
        amount: object,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> ReliefCase:
        return self._on_case(
            case_id,
            expected_version,
            "record_payment",
            period=period,
            amount=amount,
            today=self.today(),
            provenance=provenance,
        )

    def record_service(
        self,
        case_id: UUID,
        *,
        work_item: str,
        contract_id: UUID | None,
        start: dt.datetime,
        end: dt.datetime,
        place: str,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> ReliefCase:
        return self._on_case(
            case_id,
            expected_version,
            "record_service",
            work_item=work_item,
            contract_id=contract_id,
            start=start,
            end=end,
            place=place,
            check=self._contract_check,
            now=self.now(),
            provenance=provenance,
        )

    def review_case(
        self,
        case_id: UUID,
        *,
        provenance: Provenance,
        expected_version: int | None = None,
        **kwargs: Any,
    ) -> ReliefCase:
        return self._on_case(case_id, expected_version, "review", provenance=provenance, **kwargs)

    def suspend_case(
        self,
        case_id: UUID,
        *,
        reason: str,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> ReliefCase:
        return self._on_case(
            case_id, expected_version, "suspend", reason=reason, provenance=provenance
        )

    def resume_case(
        self,
        case_id: UUID,
        *,
        reason: str,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> ReliefCase:
        return self._on_case(
            case_id, expected_version, "resume", reason=reason, provenance=provenance
        )

    def close_case(
        self,
        case_id: UUID,
        *,
        reason_code: str,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> ReliefCase:
        return self._on_case(
            case_id, expected_version, "close", reason_code=reason_code, provenance=provenance
        )

    def correct_case_record(
        self,
        case_id: UUID,
        *,
        corrects_version: int,
        changes: dict[str, Any],
        reason: str,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> ReliefCase:
        return self._on_case(
            case_id,
            expected_version,
            "correct",
            corrects_version=corrects_version,
            changes=changes,
            reason=reason,
            provenance=provenance,
        )
