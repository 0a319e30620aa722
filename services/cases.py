"""Households, people and relief cases: one handler per command.

A case claims its applicant's slot for its programme (on the Person aggregate) in the same
atomic save that records it, so two applications racing for the same person and programme
anywhere in the province cannot both be saved; a rejection or closure releases the slot in the
save that records it. A death is recorded once on the person and, in the same save, on the
household and on every active case of that person.

Every decision-maker is a staff record: investigating, recommending, approving, rejecting and
adjusting a case are refused unless the actor id names an active staff record of the county
(or of the named contract's contractor). The API has put the staff record's id there for a
linked sign-in; the handler looks the record up and ``check_decision_maker`` judges it, before
anything is saved.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.case import ContractCheck, ReliefCase, ReviewOutcome
from domain.clock import Clock, business_date
from domain.commands.cases import (
    AddHouseholdMember,
    ApproveCase,
    AssignCase,
    CaseCommand,
    CloseCase,
    CorrectCaseRecord,
    InvestigateCase,
    MoveOutMember,
    ReceiveApplication,
    RecommendCase,
    RecordDeath,
    RecordPayment,
    RecordService,
    RegisterHousehold,
    RejectCase,
    ResumeCase,
    ReviewCase,
    SuspendCase,
)
from domain.contract import Contract
from domain.errors import NotFound
from domain.household import Household, HouseholdMember
from domain.identifiers import parse_resident_id
from domain.person import Person, person_id_for
from domain.provenance import Provenance
from domain.staff import StaffMember, check_decision_maker
from services.divisions import DivisionService
from services.store import Store, check_expected_version, paying_contract


class CaseService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        identity_key: bytes,
        contract_check: ContractCheck,
        divisions: DivisionService,
    ) -> None:
        self.store = store
        self.clock = clock
        self.identity_key = identity_key
        self.contract_check = contract_check
        #: every division a command names must exist in the register at the command's date
        self.divisions = divisions

    # People --------------------------------------------------------------------------------

    def person_id(self, resident_id: str) -> UUID:
        """The blind index of a resident ID number: the id of that person's aggregate."""
        return person_id_for(resident_id, self.identity_key)

    def find_person(self, resident_id: str) -> Person | None:
        number = parse_resident_id(resident_id, field="resident_id").number
        person_id = self.person_id(number)
        return self.store.get(Person, person_id) if self.store.exists(person_id) else None

    def _person_joining(
        self, member: HouseholdMember, household_id: UUID, provenance: Provenance
    ) -> Person:
        existing = self.find_person(member.resident_id)
        if existing is None:
            return Person.register(
                resident_id=member.resident_id,
                name=member.name,
                household_id=household_id,
                key=self.identity_key,
                provenance=provenance,
            )
        existing.check_alive()
        existing.join_household(household_id, provenance)
        return existing

    def record_death(self, command: RecordDeath) -> Person:
        person = self.find_person(command.resident_id)
        if person is None:
            raise NotFound("no person with that resident ID number is known", field="resident_id")
        by = command.provenance
        person.record_death(on=command.on, today=self.clock.today(), provenance=by)
        touched: list[Aggregate] = [person]
        if person.household_id is not None:
            household = self.store.get(Household, person.household_id)
            household.note_death(resident_id=person.resident_id, on=command.on, provenance=by)
            touched.append(household)
        for case_id in person.cases:
            case = self.store.get(ReliefCase, case_id)
            if case.is_active:
                case.note_beneficiary_death(on=command.on, provenance=by)
                touched.append(case)
        self.store.save(*touched)
        return person

    # Households ----------------------------------------------------------------------------

    def register_household(self, command: RegisterHousehold) -> Household:
        household = Household.register(
            registered_division=command.registered_division,
            residence_division=command.residence_division,
            members=command.members,
            today=self.clock.today(),
            provenance=command.provenance,
        )
        self.divisions.require_all(
            [
                (household.registered_division.code, "registered_division"),
                (household.residence_division.code, "residence_division"),
            ],
            self.clock.today(),
        )
        people = [
            self._person_joining(member, household.id, command.provenance)
            for member in command.members
        ]
        self.store.save(household, *people)
        return household

    def add_household_member(self, command: AddHouseholdMember) -> Household:
        household = self.store.get(Household, command.household_id)
        household.add_member(
            member=command.member,
            by_birth=command.by_birth,
            today=self.clock.today(),
            provenance=command.provenance,
        )
        person = self._person_joining(command.member, household.id, command.provenance)
        self.store.save(household, person)
        return household

    def move_out_member(self, command: MoveOutMember) -> Household:
        household = self.store.get(Household, command.household_id)
        household.move_out(
            resident_id=command.resident_id, on=command.on, provenance=command.provenance
        )
        touched: list[Aggregate] = [household]
        person = self.find_person(command.resident_id)
        if person is not None:
            person.leave_household(command.provenance)
            touched.append(person)
        self.store.save(*touched)
        return household

    # Cases ---------------------------------------------------------------------------------

    def receive_application(self, command: ReceiveApplication) -> ReliefCase:
        household = self.store.get(Household, command.household_id)
        case = ReliefCase.receive(
            household=household,
            applicant_id=command.applicant_id,
            programme=command.programme,
            window_division=command.window_division,
            provenance=command.provenance,
        )
        self.divisions.require(command.window_division, self.clock.today(), "window_division")
        person = self.store.get(Person, self.person_id(case.applicant_id))
        person.check_alive()
        person.claim(programme=case.programme.value, case_id=case.id, provenance=command.provenance)
        self.store.save(case, person)
        return case

    def assign_case(self, command: AssignCase) -> ReliefCase:
        case = self._case(command)
        staff = self.store.get(StaffMember, command.staff_id)
        case.assign(
            staff=staff,
            contract=paying_contract(self.store, staff),
            today=self.clock.today(),
            provenance=command.provenance,
        )
        return self._save(case, command)

    def investigate_case(self, command: InvestigateCase) -> ReliefCase:
        case = self._case(command)
        case.investigate(
            means_test=command.means_test,
            contract_id=command.contract_id,
            check=self.contract_check,
            now=self.clock.now(),
            provenance=command.provenance,
        )
        visit = command.means_test.home_visit
        self.divisions.require(visit.place, business_date(visit.visited_at), "home_visit.place")
        self._check_decision_maker(case, command.provenance, command.contract_id)
        return self._save(case, command)

    def recommend_case(self, command: RecommendCase) -> ReliefCase:
        case = self._case(command)
        case.recommend(
            recommendation=command.recommendation,
            reasons=command.reasons,
            monthly_amount=command.monthly_amount,
            contract_id=command.contract_id,
            check=self.contract_check,
            now=self.clock.now(),
            provenance=command.provenance,
        )
        self._check_decision_maker(case, command.provenance, command.contract_id)
        return self._save(case, command)

    def approve_case(self, command: ApproveCase) -> ReliefCase:
        case = self._case(command)
        case.approve(
            monthly_amount=command.monthly_amount,
            start_date=command.start_date,
            reasons=command.reasons,
            provenance=command.provenance,
        )
        self._check_decision_maker(case, command.provenance)
        return self._save(case, command)

    def reject_case(self, command: RejectCase) -> ReliefCase:
        case = self._case(command)
        case.reject(reasons=command.reasons, provenance=command.provenance)
        self._check_decision_maker(case, command.provenance)
        return self._save(case, command)

    def record_payment(self, command: RecordPayment) -> ReliefCase:
        case = self._case(command)
        case.record_payment(
            period=command.period,
            amount=command.amount,
            today=self.clock.today(),
            provenance=command.provenance,
        )
        return self._save(case, command)

    def record_service(self, command: RecordService) -> ReliefCase:
        case = self._case(command)
        case.record_service(
            work_item=command.work_item,
            contract_id=command.contract_id,
            start=command.start,
            end=command.end,
            place=command.place,
            check=self.contract_check,
            now=self.clock.now(),
            provenance=command.provenance,
        )
        self.divisions.require(command.place, business_date(command.start), "place")
        return self._save(case, command)

    def review_case(self, command: ReviewCase) -> ReliefCase:
        case = self._case(command)
        case.review(
            outcome=command.outcome,
            notes=command.notes,
            new_monthly_amount=command.new_monthly_amount,
            effective_from=command.effective_from,
            provenance=command.provenance,
        )
        if command.outcome == ReviewOutcome.ADJUST.value:  # an eligibility decision
            self._check_decision_maker(case, command.provenance)
        return self._save(case, command)

    def suspend_case(self, command: SuspendCase) -> ReliefCase:
        case = self._case(command)
        case.suspend(reason=command.reason, provenance=command.provenance)
        return self._save(case, command)

    def resume_case(self, command: ResumeCase) -> ReliefCase:
        case = self._case(command)
        case.resume(reason=command.reason, provenance=command.provenance)
        return self._save(case, command)

    def close_case(self, command: CloseCase) -> ReliefCase:
        case = self._case(command)
        case.close(reason_code=command.reason_code, provenance=command.provenance)
        return self._save(case, command)

    def correct_case_record(self, command: CorrectCaseRecord) -> ReliefCase:
        case = self._case(command)
        case.correct(
            corrects_version=command.corrects_version,
            correction=command.correction,
            reason=command.reason,
            provenance=command.provenance,
        )
        return self._save(case, command)

    def acting_staff(self, provenance: Provenance) -> StaffMember | None:
        """The staff record the actor id names (the text of its id), if there is one."""
        try:
            return self.store.get(StaffMember, UUID(provenance.actor.id))
        except (ValueError, NotFound):
            return None

    def _check_decision_maker(
        self, case: ReliefCase, provenance: Provenance, contract_id: UUID | None = None
    ) -> None:
        """Judged after the case's own rules (which name the more precise refusal: a role
        that may not act at all, a contract that does not cover the work) and before saving."""
        staff = self.acting_staff(provenance)
        named = self.store.get(Contract, contract_id) if contract_id is not None else None
        check_decision_maker(
            staff,
            provenance,
            county=case.county.code,
            contractor_id=named.contractor_id if named is not None else None,
            today=self.clock.today(),
            contract=paying_contract(self.store, staff) if staff is not None else None,
        )

    def _case(self, command: CaseCommand) -> ReliefCase:
        case = self.store.get(ReliefCase, command.case_id)
        check_expected_version(case, command.expected_version)
        return case

    def _save(self, case: ReliefCase, command: CaseCommand) -> ReliefCase:
        """Save the case's new events; a rejected or closed case frees its applicant's slot
        for the programme in the same save."""
        if case.is_active:
            self.store.save(case)
            return case
        person = self.store.get(Person, self.person_id(case.applicant_id))
        person.release(
            programme=case.programme.value, case_id=case.id, provenance=command.provenance
        )
        self.store.save(case, person)
        return case
