"""Each business rule refuses with its own exception, under the problem type clients see; one
check per rule (who does government work, and case work); days judged on the business clock."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from domain.case import (
    Asset,
    IncomeItem,
    MeansTestCorrection,
    PaymentCorrection,
    ReliefCase,
    ServiceVoided,
    parse_correction,
)
from domain.catalogue import WorkItem
from domain.clock import BUSINESS_TZ, SetClock, business_date
from domain.errors import (
    DomainError,
    GovernmentWorkOnly,
    InvalidState,
    InvalidValue,
    NothingToCorrect,
    NotPermitted,
    OutsideContract,
    PaymentAboveAmountInForce,
    SupervisorsDoNotOperateCases,
)
from domain.identifiers import DivisionCode
from domain.provenance import Actor, Provenance, Role
from domain.staff import StaffMember
from tests.factories import BY_CLERK, credit_code
from tests.unit.test_case import household
from tests.unit.test_purchasing import award, contractor

SUPERVISOR = Provenance(Actor("supervisor-1", Role.SUPERVISOR, "440103"))
AUDITOR = Provenance(Actor("auditor-1", Role.AUDITOR, "44"))


def as_role(role: Role, organisation: str = "440103") -> Provenance:
    return Provenance(Actor(f"{role.value}-1", role, organisation))


def test_a_named_rule_is_its_problem_type_for_clients() -> None:
    refusal = PaymentAboveAmountInForce("too much", field="amount")
    assert isinstance(refusal, InvalidValue)
    assert refusal.rule == InvalidValue.rule == "invalid-value"
    assert refusal.problem_title() == InvalidValue.problem_title()
    assert GovernmentWorkOnly.problem_title() == NotPermitted.problem_title()
    assert InvalidValue.problem_title().startswith("A value is outside what the domain accepts")


def test_every_named_rule_sits_under_a_problem_type() -> None:
    def subclasses(kind: type[DomainError]) -> set[type[DomainError]]:
        return {kind} | {s for c in kind.__subclasses__() for s in subclasses(c)}

    for refusal in subclasses(DomainError) - {DomainError}:
        assert refusal.rule != DomainError.rule, refusal
        assert refusal.__doc__, refusal  # says which rule refused


class TestGovernmentWork:
    """Contractor staff and the read-only roles never do government work; supervision does
    government work (it terminates and bans when it closes an investigation) but never
    operates cases."""

    def test_contractor_staff_and_read_only_roles_are_refused_everywhere(self) -> None:
        home = household()
        for by in (as_role(Role.CONTRACTOR_STAFF, credit_code()), AUDITOR):
            with pytest.raises(GovernmentWorkOnly):
                award(provenance=by)
            with pytest.raises(GovernmentWorkOnly):
                StaffMember.hire(
                    name="W", kind="handling_staff", government_unit="440103", provenance=by
                )
            with pytest.raises(GovernmentWorkOnly):
                ReliefCase.receive(
                    household=home,
                    applicant_id=next(iter(home.members)),
                    programme="dibao",
                    window_division="440103001",
                    provenance=by,
                )

    def test_supervision_terminates_contracts_and_manages_staff_but_operates_no_case(
        self,
    ) -> None:
        contract = award()
        contract.terminate(
            effective_at=dt.datetime(2026, 3, 1, tzinfo=BUSINESS_TZ),
            basis="contract",
            reason="falsified records",
            provenance=SUPERVISOR,
        )
        StaffMember.hire(
            name="W", kind="handling_staff", government_unit="440103", provenance=SUPERVISOR
        )
        home = household()
        with pytest.raises(SupervisorsDoNotOperateCases):
            ReliefCase.receive(
                household=home,
                applicant_id=next(iter(home.members)),
                programme="dibao",
                window_division="440103001",
                provenance=SUPERVISOR,
            )
        ReliefCase.receive(
            household=home,
            applicant_id=next(iter(home.members)),
            programme="dibao",
            window_division="440103001",
            provenance=BY_CLERK,
        )


def test_the_contract_check_judges_the_business_day_of_the_moment() -> None:
    """A term ending 31 December covers 31 December in China Standard Time only: 20:00 in
    New York on the 31st is already 1 January in Guangdong."""
    owner = contractor()
    contract = award(owner)
    late = dt.datetime(2026, 12, 31, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert business_date(late) == dt.date(2027, 1, 1)
    with pytest.raises(OutsideContract, match="outside the contract term"):
        contract.check_covers(
            contractor=owner,
            work_item=WorkItem.PSYCHOLOGICAL_COUNSELLING,
            division=DivisionCode("440103001001"),
            at=late,
        )
    contract.check_covers(
        contractor=owner,
        work_item=WorkItem.PSYCHOLOGICAL_COUNSELLING,
        division=DivisionCode("440103001001"),
        at=late - dt.timedelta(hours=10),  # 23:00 on the 31st in Guangdong
    )


def test_a_set_clock_shows_its_moment_in_business_time() -> None:
    clock = SetClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert clock.today() == dt.date(2026, 1, 1)
    clock.set(dt.datetime(2026, 1, 1, 17, 0, tzinfo=dt.UTC))
    assert clock.today() == dt.date(2026, 1, 2)
    assert clock.at(dt.date(2026, 3, 4), 9) == dt.datetime(2026, 3, 4, 9, tzinfo=BUSINESS_TZ)
    with pytest.raises(ValueError):
        clock.set(dt.datetime(2026, 1, 1))


class TestCorrectionsFromRequests:
    def test_each_kind_of_change_is_its_typed_correction(self) -> None:
        assert parse_correction({"amount": "800"}) == PaymentCorrection(Decimal("800.00"))
        assert parse_correction({"amount": 0}) == PaymentCorrection(Decimal("0.00"))
        assert parse_correction({"void": True}) == ServiceVoided()
        assert parse_correction(
            {"household_size": 3, "income_items": [{"source": "wages", "monthly_amount": "5"}]}
        ) == MeansTestCorrection(
            household_size=3, income_items=(IncomeItem("wages", Decimal("5.00")),)
        )
        assert parse_correction({"assets": [{"kind": "car", "value": "1"}]}) == (
            MeansTestCorrection(assets=(Asset("car", Decimal("1.00")),))
        )

    @pytest.mark.parametrize(
        "changes",
        [{}, {"period": "2026-04"}, {"void": False}, {"amount": "1", "void": True}],
    )
    def test_other_changes_name_what_may_change(self, changes: dict[str, object]) -> None:
        with pytest.raises(NothingToCorrect) as refused:
            parse_correction(changes)
        assert refused.value.field == "changes"
        assert isinstance(refused.value, InvalidValue)
        assert not isinstance(refused.value, InvalidState)
