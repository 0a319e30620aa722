"""Every rule of the relief case (issue 3), each refusal asserted."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from domain.case import (
    Asset,
    CaseStatus,
    HomeVisit,
    IncomeItem,
    MeansTest,
    ReliefCase,
    parse_correction,
)
from domain.catalogue import WorkItem
from domain.contract import Contract
from domain.contractor import Contractor
from domain.errors import (
    BeneficiaryDeceased,
    CaseAlreadyClosed,
    Duplicate,
    DuplicateActiveCase,
    InvalidIdentifier,
    InvalidState,
    InvalidValue,
    NotPermitted,
    OutsideContract,
    SeparationOfDuties,
)
from domain.household import Household, HouseholdMember
from domain.identifiers import DivisionCode
from domain.person import Person, person_id_for
from domain.staff import StaffMember
from tests.factories import (
    BY_CLERK,
    BY_OFFICER,
    IDENTITY_KEY,
    approver,
    contractor_staff,
    credit_code,
    officer,
    resident_id,
)

D = dt.date
TZ = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=TZ)
TODAY = NOW.date()
VILLAGE = "440103001001"


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=TZ)


def household(registered: str = VILLAGE, extra: int = 0) -> Household:
    members = [HouseholdMember(resident_id(), "Chen Hua", "head")]
    members += [
        HouseholdMember(resident_id(born="20150101"), f"Child {chr(ord('A') + n)}", "child")
        for n in range(extra)
    ]
    return Household.register(
        registered_division=registered,
        residence_division=registered,
        members=members,
        today=D(2026, 6, 1),
        provenance=BY_CLERK,
    )


def receive(
    home: Household | None = None, window: str = "440103001", programme: str = "dibao"
) -> ReliefCase:
    home = home or household()
    return ReliefCase.receive(
        household=home,
        applicant_id=next(iter(home.members)),
        programme=programme,
        window_division=window,
        provenance=BY_CLERK,
    )


class Contracts:
    """The contract check backed by real Contract aggregates (as the application does)."""

    def __init__(self) -> None:
        self.contractor = Contractor.register(
            name="Care Co",
            contractor_type="social_organisation",
            credit_code=credit_code("52"),
            provenance=BY_OFFICER,
        )
        self.contract = Contract.award(
            contractor=self.contractor,
            purchaser="440103",
            work_items=["household_investigation", "psychological_counselling"],
            service_area=["440103001"],
            start=D(2026, 1, 1),
            end=D(2026, 12, 31),
            value="100000",
            funding_source="special_relief_funds",
            awarded_on=D(2025, 12, 1),
            today=D(2025, 12, 1),
            provenance=BY_OFFICER,
        )
        self.staff = contractor_staff(self.contractor.credit_code)

    def __call__(
        self,
        *,
        contract_id: uuid.UUID,
        contractor_credit_code: str,
        work_item: WorkItem,
        division: DivisionCode,
        at: dt.datetime,
    ) -> uuid.UUID:
        if contract_id != self.contract.id:
            raise OutsideContract("unknown contract", field="contract_id")
        if contractor_credit_code != self.contractor.credit_code:
            raise OutsideContract("not this contractor's contract", field="contract_id")
        self.contract.check_covers(
            contractor=self.contractor, work_item=work_item, division=division, at=at
        )
        return self.contractor.id


def means_test(
    visitor: str = "officer-1", when: dt.datetime | None = None, place: str = VILLAGE
) -> MeansTest:
    return MeansTest(
        income_items=(IncomeItem("wages", Decimal("600")),),
        assets=(Asset("savings", Decimal("2000")),),
        household_size=2,
        home_visit=HomeVisit(when or at(D(2026, 6, 10)), place, visitor),
    )


def investigated(
    case: ReliefCase | None = None, contracts: Contracts | None = None, by: Any = None
) -> ReliefCase:
    case = case or receive()
    contracts = contracts or Contracts()
    case.investigate(
        means_test=means_test(),
        contract_id=None,
        check=contracts,
        now=NOW,
        provenance=by or officer(),
    )
    return case


def recommended(case: ReliefCase | None = None) -> ReliefCase:
    case = investigated(case)
    case.recommend(
        recommendation="approve",
        reasons="income below the line",
        monthly_amount="900",
        contract_id=None,
        check=Contracts(),
        now=NOW,
        provenance=officer(),
    )
    return case


MARCH_1 = D(2026, 3, 1)


def approved(
    case: ReliefCase | None = None, start: dt.date = MARCH_1, amount: str = "900"
) -> ReliefCase:
    case = recommended(case)
    case.approve(
        monthly_amount=amount,
        start_date=start,
        reasons="meets the dibao line",
        provenance=approver(),
    )
    return case


class TestHousehold:
    def test_registration_needs_villages_members_and_one_head(self) -> None:
        assert household(extra=2).size == 3
        with pytest.raises(InvalidIdentifier):
            household(registered="440103001")
        with pytest.raises(InvalidValue, match="at least one"):
            Household.register(
                registered_division=VILLAGE,
                residence_division=VILLAGE,
                members=[],
                today=D(2026, 6, 1),
                provenance=BY_CLERK,
            )
        number = resident_id()
        for members in (
            [HouseholdMember(number, "A", "head"), HouseholdMember(number, "A", "child")],
            [HouseholdMember(resident_id(), "A", "child")],
            [
                HouseholdMember(resident_id(), "A", "head"),
                HouseholdMember(resident_id(), "B", "head"),
            ],
        ):
            with pytest.raises(InvalidValue):
                Household.register(
                    registered_division=VILLAGE,
                    residence_division=VILLAGE,
                    members=members,
                    today=D(2026, 6, 1),
                    provenance=BY_CLERK,
                )

    def test_member_ids_are_validated_naming_the_member(self) -> None:
        with pytest.raises(InvalidIdentifier) as refused:
            Household.register(
                registered_division=VILLAGE,
                residence_division=VILLAGE,
                members=[HouseholdMember("440103198503071235", "A", "head")],
                today=D(2026, 6, 1),
                provenance=BY_CLERK,
            )
        assert refused.value.field == "members[0].resident_id"
        with pytest.raises(InvalidIdentifier):  # born after today
            Household.register(
                registered_division=VILLAGE,
                residence_division=VILLAGE,
                members=[HouseholdMember(resident_id(born="20261201"), "A", "head")],
                today=D(2026, 6, 1),
                provenance=BY_CLERK,
            )

    def test_births_moves_and_deaths_are_events(self) -> None:
        home = household(extra=1)
        baby = resident_id(born="20260501")
        home.add_member(
            member=HouseholdMember(baby, "Baby", "child"),
            by_birth=True,
            today=D(2026, 6, 1),
            provenance=BY_CLERK,
        )
        with pytest.raises(InvalidValue):
            home.add_member(
                member=HouseholdMember(resident_id(), "X", "head"),
                by_birth=False,
                today=D(2026, 6, 1),
                provenance=BY_CLERK,
            )
        with pytest.raises(InvalidState):
            home.add_member(
                member=HouseholdMember(baby, "Baby", "child"),
                by_birth=True,
                today=D(2026, 6, 1),
                provenance=BY_CLERK,
            )
        head = next(iter(home.members))
        with pytest.raises(InvalidState, match="new head"):
            home.move_out(resident_id=head, on=D(2026, 6, 2), provenance=BY_CLERK)
        home.move_out(resident_id=baby, on=D(2026, 6, 2), provenance=BY_CLERK)
        home.note_death(resident_id=head, on=D(2026, 6, 3), provenance=BY_CLERK)
        assert [type(e).__name__ for e in home.collect_events()] == [
            "Registered",
            "MemberAdded",
            "MemberMovedOut",
            "MemberDied",
        ]
        assert home.size == 1
        with pytest.raises(InvalidState):
            home.present_member(baby)


class TestPerson:
    def person(self) -> Person:
        return Person.register(
            resident_id=resident_id(),
            name="Chen",
            key=IDENTITY_KEY,
            household_id=uuid.uuid4(),
            provenance=BY_CLERK,
        )

    def test_the_id_is_a_keyed_hash_of_the_number(self) -> None:
        number = resident_id()
        assert person_id_for(number, IDENTITY_KEY) == person_id_for(number.lower(), IDENTITY_KEY)
        assert person_id_for(number, IDENTITY_KEY) != person_id_for(number, b"other key")
        assert number not in str(person_id_for(number, IDENTITY_KEY))

    def test_one_active_case_per_programme_naming_the_existing_case(self) -> None:
        person, first, second = self.person(), uuid.uuid4(), uuid.uuid4()
        person.claim(programme="dibao", case_id=first, provenance=BY_CLERK)
        with pytest.raises(DuplicateActiveCase) as refused:
            person.claim(programme="dibao", case_id=second, provenance=BY_CLERK)
        assert refused.value.existing_case_id == str(first)
        assert str(first) in refused.value.message
        person.claim(programme="temporary", case_id=second, provenance=BY_CLERK)
        person.release(programme="dibao", case_id=first, provenance=BY_CLERK)
        person.claim(programme="dibao", case_id=uuid.uuid4(), provenance=BY_CLERK)

    def test_a_death_is_recorded_once(self) -> None:
        person = self.person()
        with pytest.raises(InvalidValue):
            person.record_death(on=D(2026, 7, 1), today=D(2026, 6, 1), provenance=BY_CLERK)
        with pytest.raises(InvalidValue):
            person.record_death(on=D(1900, 1, 1), today=D(2026, 6, 1), provenance=BY_CLERK)
        person.record_death(on=D(2026, 5, 20), today=D(2026, 6, 1), provenance=BY_CLERK)
        with pytest.raises(InvalidState, match="recorded already"):
            person.record_death(on=D(2026, 5, 21), today=D(2026, 6, 1), provenance=BY_CLERK)
        with pytest.raises(InvalidState):
            person.check_alive()


class TestIntake:
    def test_routed_to_the_hukou_county_and_cross_region_transferred(self) -> None:
        local = receive(window="440103002")
        assert not local.cross_region
        assert [type(e).__name__ for e in local.collect_events()] == ["ApplicationReceived"]
        far = receive(window="440305001001")
        assert far.cross_region and far.received_county == "440305"
        assert far.county.code == "440103"
        events = far.collect_events()
        assert [type(e).__name__ for e in events] == ["ApplicationReceived", "Transferred"]
        assert (events[1].from_county, events[1].to_county) == ("440305", "440103")

    def test_window_level_applicant_and_who_receives(self) -> None:
        with pytest.raises(InvalidValue):
            receive(window="440103")
        home = household()
        with pytest.raises(InvalidValue):
            ReliefCase.receive(
                household=home,
                applicant_id=resident_id(),
                programme="dibao",
                window_division="440103001",
                provenance=BY_CLERK,
            )
        with pytest.raises(InvalidValue):
            receive(programme="pension")
        with pytest.raises(NotPermitted):
            ReliefCase.receive(
                household=home,
                applicant_id=next(iter(home.members)),
                programme="dibao",
                window_division="440103001",
                provenance=contractor_staff(credit_code()),
            )


class TestHandling:
    def staff(self, kind: str = "handling_staff", where: str = "440103001") -> StaffMember:
        member = StaffMember.hire(
            name="Li", kind=kind, government_unit="440103", provenance=BY_OFFICER
        )
        member.assign(division=where, provenance=BY_OFFICER)
        return member

    def test_assignment_to_active_handling_staff_of_the_county(self) -> None:
        case = receive()
        case.assign(contract=None, staff=self.staff(), today=D(2026, 6, 1), provenance=officer())
        assert case.status is CaseStatus.UNDER_INVESTIGATION
        with pytest.raises(InvalidValue):
            case.assign(
                contract=None,
                staff=self.staff(where="440305001"),
                today=D(2026, 6, 1),
                provenance=officer(),
            )
        with pytest.raises(InvalidValue):
            case.assign(
                contract=None,
                staff=self.staff("village_coordinator", VILLAGE),
                today=D(2026, 6, 1),
                provenance=officer(),
            )
        removed = self.staff()
        removed.remove(on=D(2026, 5, 1), reason="left", provenance=BY_OFFICER)
        with pytest.raises(InvalidState):
            case.assign(contract=None, staff=removed, today=D(2026, 6, 1), provenance=officer())

    def test_government_or_covered_contractor_staff_investigate(self) -> None:
        contracts = Contracts()
        case = receive()
        case.investigate(
            means_test=means_test(visitor="worker-1"),
            contract_id=contracts.contract.id,
            check=contracts,
            now=NOW,
            provenance=contracts.staff,
        )
        event = case.collect_events()[-1]
        assert event.contractor_id == contracts.contractor.id
        assert case.status is CaseStatus.INVESTIGATED
        investigated(receive())  # government staff, no contract

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"contract": False}, InvalidValue),  # contractor staff must name the contract
            ({"when": at(D(2025, 12, 20))}, OutsideContract),  # before the term
        ],
    )
    def test_contractor_investigation_outside_its_contract_is_refused(
        self, kwargs: dict[str, Any], error: type
    ) -> None:
        contracts = Contracts()
        case = receive()
        test = means_test(
            visitor="worker-1", when=kwargs.get("when"), place=kwargs.get("place", VILLAGE)
        )
        with pytest.raises(error):
            case.investigate(
                means_test=test,
                check=contracts,
                now=NOW,
                contract_id=None if kwargs.get("contract") is False else contracts.contract.id,
                provenance=contracts.staff,
            )
        assert case.status is CaseStatus.RECEIVED

    def test_a_terminated_contract_covers_no_investigation(self) -> None:
        contracts = Contracts()
        contracts.contract.terminate(
            effective_at=at(D(2026, 6, 1)), basis="law", reason="r", provenance=BY_OFFICER
        )
        with pytest.raises(OutsideContract, match="terminated"):
            receive().investigate(
                means_test=means_test(),
                contract_id=contracts.contract.id,
                check=contracts,
                now=NOW,
                provenance=contracts.staff,
            )

    def test_malformed_means_tests_are_refused(self) -> None:
        case = receive()
        for test in (
            MeansTest((), (), 0, HomeVisit(at(D(2026, 6, 1)), VILLAGE, "v")),
            MeansTest(
                (IncomeItem("", Decimal("1")),),
                (),
                1,
                HomeVisit(at(D(2026, 6, 1)), VILLAGE, "v"),
            ),
            MeansTest(
                (IncomeItem("wage", Decimal("-1")),),
                (),
                1,
                HomeVisit(at(D(2026, 6, 1)), VILLAGE, "v"),
            ),
            MeansTest((), (), 1, HomeVisit(at(D(2026, 7, 1)), VILLAGE, "v")),  # future visit
            MeansTest((), (), 1, HomeVisit(dt.datetime(2026, 6, 1), VILLAGE, "v")),  # naive
            MeansTest((), (), 1, HomeVisit(at(D(2026, 6, 1)), "440103001", "v")),  # township
        ):
            with pytest.raises((InvalidValue, InvalidIdentifier)):
                case.investigate(
                    means_test=test,
                    contract_id=None,
                    check=Contracts(),
                    now=NOW,
                    provenance=officer(),
                )

    def test_who_may_investigate(self) -> None:
        for by in (approver(), contractor_staff(credit_code()).__class__(actor=approver().actor)):
            with pytest.raises(NotPermitted):
                receive().investigate(
                    means_test=means_test(),
                    contract_id=None,
                    check=Contracts(),
                    now=NOW,
                    provenance=by,
                )
        with pytest.raises(InvalidValue):  # government staff work under no contract
            receive().investigate(
                means_test=means_test(),
                contract_id=uuid.uuid4(),
                check=Contracts(),
                now=NOW,
                provenance=officer(),
            )

    def test_recommendation_follows_an_investigation(self) -> None:
        case = receive()
        with pytest.raises(InvalidState):
            case.recommend(
                recommendation="approve",
                reasons="r",
                monthly_amount="1",
                contract_id=None,
                check=Contracts(),
                now=NOW,
                provenance=officer(),
            )
        investigated(case)
        with pytest.raises(InvalidValue):
            case.recommend(
                recommendation="approve",
                reasons="r",
                monthly_amount=None,
                contract_id=None,
                check=Contracts(),
                now=NOW,
                provenance=officer(),
            )
        with pytest.raises(InvalidValue):
            case.recommend(
                recommendation="reject",
                reasons="r",
                monthly_amount="10",
                contract_id=None,
                check=Contracts(),
                now=NOW,
                provenance=officer(),
            )
        case.recommend(
            recommendation="reject",
            reasons="assets above the line",
            monthly_amount=None,
            contract_id=None,
            check=Contracts(),
            now=NOW,
            provenance=officer(),
        )
        assert case.status is CaseStatus.RECOMMENDED


class TestDecision:
    def test_only_an_approver_of_the_county_decides(self) -> None:
        for by in (officer(), approver("440305"), contractor_staff(credit_code()), BY_CLERK):
            case = recommended()
            with pytest.raises(NotPermitted):
                case.approve(
                    monthly_amount="900", start_date=D(2026, 3, 1), reasons="r", provenance=by
                )
            with pytest.raises(NotPermitted):
                case.reject(reasons="r", provenance=by)
            assert case.status is CaseStatus.RECOMMENDED

    def test_the_investigator_may_not_decide(self) -> None:
        case = receive()
        case.investigate(
            means_test=means_test(visitor="visitor-9"),
            contract_id=None,
            check=Contracts(),
            now=NOW,
            provenance=officer(who="officer-7"),
        )
        case.recommend(
            recommendation="approve",
            reasons="r",
            monthly_amount="900",
            contract_id=None,
            check=Contracts(),
            now=NOW,
            provenance=officer(who="officer-7"),
        )
        for who in ("officer-7", "visitor-9"):
            with pytest.raises(SeparationOfDuties):
                case.approve(
                    monthly_amount="900",
                    start_date=D(2026, 3, 1),
                    reasons="r",
                    provenance=approver(who=who),
                )
        case.approve(
            monthly_amount="900",
            start_date=D(2026, 3, 1),
            reasons="r",
            provenance=approver(who="approver-2"),
        )

    def test_approval_needs_a_recommendation_and_records_the_terms(self) -> None:
        case = investigated()
        with pytest.raises(InvalidState):
            case.approve(
                monthly_amount="900", start_date=D(2026, 3, 1), reasons="r", provenance=approver()
            )
        approved(receive())
        case = approved()
        assert case.status is CaseStatus.APPROVED
        assert case.decision is not None and case.decision.monthly_amount == Decimal("900.00")
        with pytest.raises(InvalidValue):
            approved(amount="0")

    def test_rejection_closes_the_application(self) -> None:
        case = recommended()
        case.reject(reasons="assets above the line", provenance=approver())
        assert case.status is CaseStatus.REJECTED and not case.is_active
        with pytest.raises(CaseAlreadyClosed):
            case.record_payment(today=TODAY, period="2026-03", amount="900", provenance=officer())


class TestPayments:
    def test_paid_per_period_by_government_from_the_approved_start(self) -> None:
        case = approved(start=D(2026, 3, 15))
        case.record_payment(today=TODAY, period="2026-03", amount="900", provenance=officer())
        case.record_payment(today=TODAY, period="2026-04", amount="450.50", provenance=approver())
        with pytest.raises(InvalidValue, match="before the approved start"):
            case.record_payment(today=TODAY, period="2026-02", amount="900", provenance=officer())
        with pytest.raises(Duplicate):
            case.record_payment(today=TODAY, period="2026-03", amount="900", provenance=officer())
        with pytest.raises(InvalidValue, match="above the approved"):
            case.record_payment(
                today=TODAY, period="2026-05", amount="900.01", provenance=officer()
            )
        with pytest.raises(NotPermitted):
            case.record_payment(
                today=TODAY,
                period="2026-05",
                amount="900",
                provenance=contractor_staff(credit_code()),
            )
        with pytest.raises(NotPermitted):
            case.record_payment(today=TODAY, period="2026-05", amount="900", provenance=BY_CLERK)
        with pytest.raises(InvalidValue):
            case.record_payment(today=TODAY, period="2026-13", amount="900", provenance=officer())

    def test_not_during_suspension_nor_after_closure(self) -> None:
        case = approved()
        case.suspend(reason="income check pending", provenance=approver())
        with pytest.raises(InvalidState, match="suspended"):
            case.record_payment(today=TODAY, period="2026-04", amount="900", provenance=officer())
        case.resume(reason="check done", provenance=approver())
        case.record_payment(today=TODAY, period="2026-04", amount="900", provenance=officer())
        case.close(reason_code="income_above_line", provenance=approver())
        with pytest.raises(CaseAlreadyClosed):
            case.record_payment(today=TODAY, period="2026-05", amount="900", provenance=officer())

    def test_not_for_a_period_after_the_beneficiarys_death(self) -> None:
        case = approved()
        case.note_beneficiary_death(on=D(2026, 5, 10), provenance=BY_CLERK)
        case.record_payment(today=TODAY, period="2026-05", amount="900", provenance=officer())
        with pytest.raises(BeneficiaryDeceased):
            case.record_payment(today=TODAY, period="2026-06", amount="900", provenance=officer())

    def test_temporary_assistance_is_paid_once(self) -> None:
        case = approved(receive(programme="temporary"))
        case.record_payment(today=TODAY, period="2026-03", amount="900", provenance=officer())
        with pytest.raises(Duplicate, match="once"):
            case.record_payment(today=TODAY, period="2026-04", amount="900", provenance=officer())


class TestServices:
    def serve(self, case: ReliefCase, contracts: Contracts, **overrides: Any) -> None:
        fields: dict[str, Any] = {
            "work_item": "psychological_counselling",
            "contract_id": contracts.contract.id,
            "start": at(D(2026, 6, 10), 9),
            "end": at(D(2026, 6, 10), 10),
            "place": VILLAGE,
            "check": contracts,
            "now": NOW,
            "provenance": contracts.staff,
        }
        fields.update(overrides)
        case.record_service(**fields)

    def test_a_covered_service_is_recorded_with_its_contract(self) -> None:
        case, contracts = approved(), Contracts()
        self.serve(case, contracts)
        event = case.collect_events()[-1]
        assert event.contract_id == contracts.contract.id
        assert event.contractor_id == contracts.contractor.id
        self.serve(case, contracts, contract_id=None, provenance=officer())  # government staff

    @pytest.mark.parametrize(
        ("overrides", "error"),
        [
            ({"work_item": "care_and_nursing"}, OutsideContract),  # not in scope
            ({"work_item": "household_investigation"}, InvalidValue),  # not a service
            ({"work_item": "benefit_payment"}, Exception),  # a government function
            ({"place": "440103002001"}, OutsideContract),
            ({"contract_id": None}, InvalidValue),
            ({"end": at(D(2026, 6, 10), 9)}, InvalidValue),
            ({"end": at(D(2026, 6, 12), 9)}, InvalidValue),
            ({"start": at(D(2026, 6, 16), 9), "end": at(D(2026, 6, 16), 10)}, InvalidValue),
        ],
    )
    def test_refusals(self, overrides: dict[str, Any], error: type) -> None:
        case = approved()
        with pytest.raises(error):
            self.serve(case, Contracts(), **overrides)
        assert case.services == {}

    def test_not_after_termination_death_or_before_approval(self) -> None:
        contracts = Contracts()
        contracts.contract.terminate(
            effective_at=at(D(2026, 6, 10), 9), basis="contract", reason="r", provenance=BY_OFFICER
        )
        with pytest.raises(OutsideContract, match="terminated"):
            self.serve(approved(), contracts)
        case = approved()
        case.note_beneficiary_death(on=D(2026, 6, 9), provenance=BY_CLERK)
        with pytest.raises(BeneficiaryDeceased):
            self.serve(case, Contracts())
        with pytest.raises(InvalidState):
            self.serve(recommended(), Contracts())


class TestReviewSuspensionClosure:
    def test_a_review_may_adjust_the_amount_from_a_date(self) -> None:
        case = approved()
        case.review(
            outcome="adjust",
            notes="income fell",
            new_monthly_amount="1000",
            effective_from=D(2026, 5, 1),
            provenance=approver(who="approver-9"),
        )
        case.record_payment(today=TODAY, period="2026-05", amount="1000", provenance=officer())
        with pytest.raises(InvalidValue):
            case.record_payment(today=TODAY, period="2026-04", amount="1000", provenance=officer())
        with pytest.raises(InvalidValue):
            case.review(
                outcome="adjust",
                notes="n",
                new_monthly_amount="1",
                provenance=approver(who="approver-9"),
            )
        with pytest.raises(InvalidValue):
            case.review(outcome="continue", notes="n", new_monthly_amount="1", provenance=officer())
        case.review(outcome="continue", notes="annual check", provenance=officer())
        with pytest.raises(NotPermitted):
            case.review(outcome="continue", notes="n", provenance=contractor_staff(credit_code()))

    def test_suspension_and_resumption_by_the_county_approver(self) -> None:
        case = approved()
        with pytest.raises(NotPermitted):
            case.suspend(reason="r", provenance=officer())
        with pytest.raises(InvalidState):
            case.resume(reason="r", provenance=approver())
        case.suspend(reason="r", provenance=approver())
        with pytest.raises(InvalidState):
            case.suspend(reason="r", provenance=approver())
        case.resume(reason="r", provenance=approver())
        assert case.status is CaseStatus.APPROVED

    @pytest.mark.parametrize(
        "reason", ["income_above_line", "death", "moved_away", "voluntary", "fraud_found"]
    )
    def test_closure_reasons(self, reason: str) -> None:
        case = approved()
        case.close(reason_code=reason, provenance=approver())
        assert case.closure_reason is not None and case.closure_reason.value == reason
        with pytest.raises(CaseAlreadyClosed):
            case.close(reason_code=reason, provenance=approver())

    def test_closure_refusals(self) -> None:
        case = approved()
        with pytest.raises(InvalidValue):
            case.close(reason_code="bored", provenance=approver())
        with pytest.raises(NotPermitted):
            case.close(reason_code="voluntary", provenance=contractor_staff(credit_code()))
        application = receive()
        application.close(reason_code="voluntary", provenance=approver())  # withdrawn
        assert application.status is CaseStatus.CLOSED


class TestCorrections:
    def test_a_payment_correction_names_the_event_and_keeps_the_original(self) -> None:
        case = approved()
        case.record_payment(today=TODAY, period="2026-03", amount="900", provenance=officer())
        paid_version = case.version
        case.correct(
            corrects_version=paid_version,
            correction=parse_correction({"amount": "800"}),
            reason="double-counted a day",
            provenance=officer(),
        )
        events = case.collect_events()
        assert type(events[-2]).__name__ == "PaymentRecorded" and events[-2].amount == 900
        assert events[-1].corrects_version == paid_version
        assert case.payments[paid_version].amount == Decimal("800")
        case.correct(
            corrects_version=paid_version,
            correction=parse_correction({"amount": "0"}),
            reason="void",
            provenance=officer(),
        )
        case.record_payment(today=TODAY, period="2026-03", amount="900", provenance=officer())

    def test_service_and_investigation_corrections(self) -> None:
        case = approved()
        contracts = Contracts()
        TestServices().serve(case, contracts)
        service_version = case.version
        case.correct(
            corrects_version=service_version,
            correction=parse_correction({"void": True}),
            reason="never happened",
            provenance=officer(),
        )
        assert case.services[service_version].void is True
        investigation_version = next(iter(case.investigations))
        case.correct(
            corrects_version=investigation_version,
            correction=parse_correction({"household_size": 3}),
            reason="a child was missed",
            provenance=officer(),
        )
        assert case.investigations[investigation_version].means_test.household_size == 3

    def test_correction_refusals(self) -> None:
        case = approved()
        case.record_payment(today=TODAY, period="2026-03", amount="900", provenance=officer())
        version = case.version
        for changes in ({"period": "2026-04"}, {"amount": "-1"}):
            with pytest.raises(InvalidValue):
                case.correct(
                    corrects_version=version,
                    correction=parse_correction(changes),
                    reason="r",
                    provenance=officer(),
                )
        with pytest.raises(InvalidValue):
            case.correct(
                corrects_version=1,
                correction=parse_correction({"amount": "1"}),
                reason="r",
                provenance=officer(),
            )
        with pytest.raises(InvalidValue):
            case.correct(
                corrects_version=version,
                correction=parse_correction({"amount": "1"}),
                reason=" ",
                provenance=officer(),
            )
        with pytest.raises(NotPermitted):
            case.correct(
                corrects_version=version,
                correction=parse_correction({"amount": "1"}),
                reason="r",
                provenance=contractor_staff(credit_code()),
            )


def test_replaying_the_events_rebuilds_the_same_case() -> None:
    case = approved()
    case.record_payment(today=TODAY, period="2026-03", amount="900", provenance=officer())
    case.close(reason_code="moved_away", provenance=approver())
    replayed = None
    for event in case.collect_events():
        replayed = event.mutate(replayed)
    assert replayed is not None and replayed.summary() == case.summary()


class TestLoopholesClosed:
    """Ways around the payment and decision rules that a review found, each refused."""

    def test_no_payment_in_advance_nor_for_a_month_begun_in_suspension(self) -> None:
        case = approved()
        with pytest.raises(InvalidValue, match="not begun"):
            case.record_payment(today=TODAY, period="2026-07", amount="900", provenance=officer())
        case.suspensions.append((D(2026, 4, 1), D(2026, 5, 10)))  # as Suspended/Resumed do
        with pytest.raises(InvalidState, match="suspended"):
            case.record_payment(today=TODAY, period="2026-05", amount="900", provenance=officer())
        case.record_payment(today=TODAY, period="2026-06", amount="900", provenance=officer())

    def test_suspension_intervals_follow_the_events(self) -> None:
        case = approved()
        case.suspend(reason="check", provenance=approver())
        case.resume(reason="done", provenance=approver())
        [(start, end)] = case.suspensions
        assert start == end  # suspended and resumed on the same day: no month begins inside

    def test_a_payment_correction_stays_under_the_amount_and_void_is_final(self) -> None:
        case = approved()
        case.record_payment(today=TODAY, period="2026-03", amount="900", provenance=officer())
        version = case.version
        with pytest.raises(InvalidValue, match="above"):
            case.correct(
                corrects_version=version,
                correction=parse_correction({"amount": "901"}),
                reason="r",
                provenance=officer(),
            )
        case.correct(
            corrects_version=version,
            correction=parse_correction({"amount": "0"}),
            reason="void",
            provenance=officer(),
        )
        case.record_payment(today=TODAY, period="2026-03", amount="900", provenance=officer())
        with pytest.raises(InvalidState, match="voided"):
            case.correct(
                corrects_version=version,
                correction=parse_correction({"amount": "500"}),
                reason="revive",
                provenance=officer(),
            )

    def test_changing_the_amount_is_the_approvers_decision(self) -> None:
        case = approved()
        with pytest.raises(NotPermitted):
            case.review(
                outcome="adjust",
                notes="n",
                new_monthly_amount="5000",
                effective_from=D(2026, 5, 1),
                provenance=officer(),
            )
        case.review(
            outcome="adjust",
            notes="n",
            new_monthly_amount="1000",
            effective_from=D(2026, 5, 1),
            provenance=approver(who="approver-9"),
        )

    def test_correcting_the_means_test_makes_one_an_investigator(self) -> None:
        case = recommended()
        version = next(iter(case.investigations))
        case.correct(
            corrects_version=version,
            correction=parse_correction({"household_size": 3}),
            reason="r",
            provenance=approver(who="approver-5"),
        )
        with pytest.raises(SeparationOfDuties):
            case.approve(
                monthly_amount="900",
                start_date=MARCH_1,
                reasons="r",
                provenance=approver(who="approver-5"),
            )

    def test_the_contract_must_cover_the_household_not_just_the_visit(self) -> None:
        contracts = Contracts()  # covers township 440103001 only
        elsewhere = receive(household("440103002001"), window="440103002")
        with pytest.raises(OutsideContract):
            elsewhere.investigate(
                means_test=means_test(visitor="worker-1", place=VILLAGE),
                contract_id=contracts.contract.id,
                check=contracts,
                now=NOW,
                provenance=contracts.staff,
            )

    def test_contract_staff_of_an_ended_contract_cannot_take_cases(self) -> None:
        contracts = Contracts()
        worker = StaffMember.hire(
            name="W", kind="handling_staff", contract=contracts.contract, provenance=BY_OFFICER
        )
        worker.assign(division="440103001", contract=contracts.contract, provenance=BY_OFFICER)
        receive().assign(
            staff=worker, contract=contracts.contract, today=TODAY, provenance=officer()
        )
        contracts.contract.terminate(
            effective_at=at(D(2026, 6, 1)), basis="law", reason="r", provenance=BY_OFFICER
        )
        with pytest.raises(InvalidState, match="not active"):
            receive().assign(
                staff=worker, contract=contracts.contract, today=TODAY, provenance=officer()
            )

    @pytest.mark.parametrize(
        "changes",
        [
            {"income_items": ["x"]},
            {"assets": "many"},
            {"household_size": "3"},
            {"income_items": [{"source": 7, "monthly_amount": "1"}]},
        ],
    )
    def test_malformed_corrections_are_refused_not_crashes(self, changes: dict) -> None:
        case = recommended()
        with pytest.raises(InvalidValue):
            case.correct(
                corrects_version=next(iter(case.investigations)),
                correction=parse_correction(changes),
                reason="r",
                provenance=officer(),
            )

    @pytest.mark.parametrize(
        ("period", "amount"),
        [("9999-12", "1"), ("2026-03", "1e30"), ("2026-03", "NaN"), ("1899-12", "1")],
    )
    def test_extreme_values_are_refused_not_crashes(self, period: str, amount: str) -> None:
        with pytest.raises(InvalidValue):
            approved().record_payment(
                today=TODAY, period=period, amount=amount, provenance=officer()
            )
