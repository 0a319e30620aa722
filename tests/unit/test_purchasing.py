"""Rules of the purchase of relief services: contractors, contracts, staff (DOMAIN.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from domain.catalogue import NON_PURCHASABLE, WorkItem, WorkKind
from domain.contract import Contract, EventAtPosition, EventOfAggregate
from domain.contractor import Contractor
from domain.credit_code import parse_credit_code
from domain.errors import (
    BillingAboveValue,
    ContractClosed,
    ContractorBanned,
    Duplicate,
    InvalidIdentifier,
    InvalidPurchaser,
    InvalidState,
    InvalidValue,
    NotEligible,
    NotPermitted,
    NotPurchasable,
    OutsideContract,
)
from domain.identifiers import DivisionCode
from domain.staff import StaffMember
from tests.factories import (
    BY_APPROVER,
    BY_CLERK,
    BY_OFFICER,
    BY_SUPERVISOR,
    contractor_staff,
    credit_code,
)

D = dt.date
UTC8 = dt.timezone(dt.timedelta(hours=8))


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=UTC8)


def contractor(kind: str = "social_organisation", category: str = "52", **kw: str) -> Contractor:
    return Contractor.register(
        name="Sunshine Social Work Centre",
        contractor_type=kind,
        credit_code=credit_code(category),
        provenance=BY_OFFICER,
        **kw,
    )


def award(who: Contractor | None = None, **overrides: object) -> Contract:
    fields: dict[str, object] = {
        "purchaser": "440103",
        "work_items": ["household_investigation", "psychological_counselling"],
        "service_area": ["440103001", "440103002"],
        "start": D(2026, 1, 1),
        "end": D(2026, 12, 31),
        "value": "100000.00",
        "funding_source": "special_relief_funds",
        "awarded_on": D(2025, 12, 20),
        "provenance": BY_OFFICER,
    }
    fields.update(overrides)
    fields.setdefault("today", fields["awarded_on"])
    return Contract.award(contractor=who or contractor(), **fields)  # type: ignore[arg-type]


class TestCreditCode:
    def test_the_standards_example_validates(self) -> None:
        code = parse_credit_code("91350100M000100Y43")
        assert code.category == "91" and code.division == "350100"

    @pytest.mark.parametrize(
        ("code", "fault"),
        [
            ("91350100M000100Y4", "length"),
            ("91350100M000100YI3", "characters"),
            ("91350100M000100Z43", "characters"),
            ("A1350100M000100Y43", "category"),
            ("91990100M000100Y43", "division-code"),
            ("91350100M000100Y44", "check-character"),
        ],
    )
    def test_malformed_codes_are_refused_naming_the_fault(self, code: str, fault: str) -> None:
        with pytest.raises(InvalidIdentifier) as refused:
            parse_credit_code(code, field="credit_code")
        assert refused.value.fault == fault


class TestContractorRegister:
    @pytest.mark.parametrize(
        ("kind", "category", "klass"),
        [
            ("social_organisation", "51", None),
            ("social_organisation", "52", None),
            ("social_organisation", "53", None),
            ("social_organisation_exempt", "13", None),
            ("public_institution", "12", "public_welfare_ii"),
            ("public_institution", "12", "production_business"),
            ("enterprise", "91", None),
            ("enterprise", "93", None),
            ("enterprise", "Y1", None),
        ],
    )
    def test_eligible_kinds_register(self, kind: str, category: str, klass: str | None) -> None:
        kwargs = {"institution_class": klass} if klass else {}
        registered = contractor(kind, category, **kwargs)
        assert registered.contractor_type.value == kind
        assert registered.id  # derived from the credit code

    def test_the_id_is_derived_from_the_credit_code(self) -> None:
        code = credit_code()
        a = Contractor.register(
            name="A", contractor_type="social_organisation", credit_code=code, provenance=BY_OFFICER
        )
        b = Contractor.register(
            name="B", contractor_type="social_organisation", credit_code=code, provenance=BY_OFFICER
        )
        assert a.id == b.id

    def test_a_government_organ_is_not_eligible(self) -> None:
        with pytest.raises(NotEligible):
            contractor("social_organisation", "11")

    @pytest.mark.parametrize(
        ("kind", "category"),
        [("social_organisation", "91"), ("enterprise", "52"), ("public_institution", "52")],
    )
    def test_declared_type_must_agree_with_the_code(self, kind: str, category: str) -> None:
        with pytest.raises(InvalidValue) as refused:
            contractor(kind, category, institution_class="public_welfare_ii")
        assert refused.value.field in ("credit_code", "institution_class")

    @pytest.mark.parametrize("klass", ["public_welfare_i", "administrative"])
    def test_only_class_ii_or_production_institutions_are_eligible(self, klass: str) -> None:
        with pytest.raises(NotEligible) as refused:
            contractor("public_institution", "12", institution_class=klass)
        assert refused.value.field == "institution_class"

    def test_a_public_institution_must_state_its_class(self) -> None:
        with pytest.raises(InvalidValue):
            contractor("public_institution", "12")

    def test_only_institutions_have_a_class(self) -> None:
        with pytest.raises(InvalidValue):
            contractor("enterprise", "91", institution_class="public_welfare_ii")

    def test_unknown_type_and_empty_name_are_refused(self) -> None:
        with pytest.raises(InvalidValue):
            contractor("charity_shop", "52")
        with pytest.raises(InvalidValue):
            Contractor.register(
                name=" ",
                contractor_type="enterprise",
                credit_code=credit_code("91"),
                provenance=BY_OFFICER,
            )


class TestBans:
    def test_a_ban_blocks_new_work_while_it_runs(self) -> None:
        c = contractor()
        c.ban(
            start=D(2026, 3, 1),
            end=D(2027, 2, 28),
            reason="falsified visits",
            deciding_unit="440103",
            provenance=BY_SUPERVISOR,
        )
        with pytest.raises(ContractorBanned):
            award(c, awarded_on=D(2026, 3, 1))
        with pytest.raises(ContractorBanned):
            award(c, awarded_on=D(2027, 2, 28))
        assert award(c, awarded_on=D(2027, 3, 1))  # the day after the ban ends
        assert award(c, awarded_on=D(2026, 2, 28))  # before it starts

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"start": D(2026, 5, 1), "end": D(2026, 4, 1)}, InvalidValue),
            ({"reason": ""}, InvalidValue),
            ({"deciding_unit": "440103001"}, InvalidValue),
            ({"provenance": BY_CLERK}, NotPermitted),
        ],
    )
    def test_malformed_bans_are_refused(self, kwargs: dict, error: type) -> None:
        fields = {
            "start": D(2026, 3, 1),
            "end": D(2026, 9, 1),
            "reason": "breach",
            "deciding_unit": "4401",
            "provenance": BY_SUPERVISOR,
        }
        fields.update(kwargs)
        c = contractor()
        with pytest.raises(error):
            c.ban(**fields)
        assert c.bans == []


class TestAward:
    def test_award_records_the_work_on_the_contractor_too(self) -> None:
        c = contractor()
        c.collect_events()
        contract = award(c)
        assert [type(e).__name__ for e in c.collect_events()] == ["WorkTakenOn"]
        assert contract.status(D(2026, 6, 1)) == "in_force"
        assert contract.status(D(2025, 12, 25)) == "awarded"
        assert contract.status(D(2027, 1, 1)) == "expired"

    @pytest.mark.parametrize("purchaser", ["44", "4401", "440103"])
    def test_county_level_or_higher_may_purchase(self, purchaser: str) -> None:
        assert award(purchaser=purchaser).purchaser == purchaser

    @pytest.mark.parametrize("purchaser", ["440103001", "440103001001"])
    def test_a_township_or_village_may_not_purchase(self, purchaser: str) -> None:
        with pytest.raises(InvalidPurchaser):
            award(purchaser=purchaser)

    @pytest.mark.parametrize("item", sorted(NON_PURCHASABLE))
    def test_government_functions_are_refused_by_name(self, item: str) -> None:
        with pytest.raises(NotPurchasable) as refused:
            award(work_items=["household_investigation", item])
        assert item in refused.value.message

    def test_both_catalogues_are_purchasable(self) -> None:
        every = [item.value for item in WorkItem]
        assert {item.kind for item in WorkItem} == {WorkKind.TRANSACTIONAL, WorkKind.SERVICE}
        assert len(award(work_items=every).terms.work_items) == 13

    @pytest.mark.parametrize(
        "overrides",
        [
            {"work_items": []},
            {"work_items": ["cooking"]},
            {"work_items": ["care_and_nursing", "care_and_nursing"]},
            {"service_area": []},
            {"service_area": ["440104001"]},  # another county than the purchaser
            {"service_area": ["440103001001"]},  # a village
            {"end": D(2025, 12, 31)},
            {"value": "0"},
            {"value": "-5"},
            {"value": "10.001"},
            {"funding_source": "lottery"},
        ],
    )
    def test_malformed_awards_are_refused(self, overrides: dict) -> None:
        with pytest.raises(InvalidValue):
            award(**overrides)

    def test_an_award_cannot_be_dated_forward_or_backdated_around_a_ban(self) -> None:
        with pytest.raises(InvalidValue) as refused:
            award(awarded_on=D(2026, 2, 1), today=D(2026, 1, 31))
        assert refused.value.field == "awarded_on"
        c = contractor()
        c.ban(
            start=D(2026, 3, 1),
            end=D(2026, 8, 31),
            reason="breach",
            deciding_unit="440103",
            provenance=BY_SUPERVISOR,
        )
        with pytest.raises(ContractorBanned):  # decided during the ban, dated before it
            award(c, awarded_on=D(2026, 2, 1), today=D(2026, 3, 15))

    def test_contractor_staff_cannot_award(self) -> None:
        with pytest.raises(NotPermitted):
            award(provenance=contractor_staff(credit_code()))


class TestAmendRenewExpire:
    def test_amendments_carry_a_reason_and_an_effective_date(self) -> None:
        c = contractor()
        contract = award(c)
        contract.amend(
            contractor=c,
            today=D(2026, 6, 1),
            effective_from=D(2026, 7, 1),
            reason="second township",
            service_area=["440103001", "440103002", "440103003"],
            provenance=BY_OFFICER,
        )
        assert contract.terms_on(D(2026, 6, 30)).service_area == ("440103001", "440103002")
        assert "440103003" in contract.terms_on(D(2026, 7, 1)).service_area
        with pytest.raises(InvalidValue):
            contract.amend(
                contractor=c,
                today=D(2026, 6, 1),
                effective_from=D(2026, 7, 1),
                reason="",
                value="1",
                provenance=BY_OFFICER,
            )
        with pytest.raises(InvalidValue):
            contract.amend(
                contractor=c,
                today=D(2026, 6, 1),
                effective_from=D(2026, 7, 1),
                reason="same",
                value="100000.00",
                provenance=BY_OFFICER,
            )

    def test_a_banned_contractor_cannot_be_amended_into_more_work(self) -> None:
        c = contractor()
        contract = award(c)
        c.ban(
            start=D(2026, 5, 1),
            end=D(2026, 10, 31),
            reason="breach",
            deciding_unit="440103",
            provenance=BY_SUPERVISOR,
        )
        for more in (
            {"value": "150000"},
            {"end": D(2027, 6, 30)},
            {
                "work_items": [
                    "household_investigation",
                    "psychological_counselling",
                    "care_and_nursing",
                ]
            },
        ):
            with pytest.raises(ContractorBanned):
                contract.amend(
                    contractor=c,
                    today=D(2026, 6, 1),
                    effective_from=D(2026, 6, 1),
                    reason="more",
                    provenance=BY_OFFICER,
                    **more,
                )
        # Less work is allowed while banned.
        contract.amend(
            contractor=c,
            today=D(2026, 6, 1),
            effective_from=D(2026, 6, 1),
            reason="cut",
            value="80000",
            provenance=BY_OFFICER,
        )
        with pytest.raises(ContractorBanned):
            contract.renew(
                contractor=c,
                today=D(2026, 11, 1),
                new_end=D(2027, 6, 30),
                added_value="1000",
                reason="renewal",
                effective_from=D(2026, 6, 1),
                provenance=BY_OFFICER,
            )
        contract.renew(
            contractor=c,
            today=D(2026, 11, 1),
            new_end=D(2027, 6, 30),
            added_value="1000",
            reason="renewal",
            effective_from=D(2026, 11, 1),
            provenance=BY_OFFICER,
        )
        assert contract.terms.end == D(2027, 6, 30) and contract.terms.value == Decimal("81000")

    def test_value_cannot_drop_below_what_was_billed(self) -> None:
        c = contractor()
        contract = award(c)
        contract.invoice(
            invoice_number="F1",
            period_start=D(2026, 1, 1),
            period_end=D(2026, 3, 31),
            amount="60000",
            provenance=BY_OFFICER,
        )
        with pytest.raises(BillingAboveValue):
            contract.amend(
                contractor=c,
                today=D(2026, 6, 1),
                effective_from=D(2026, 4, 1),
                reason="cut",
                value="50000",
                provenance=BY_OFFICER,
            )

    def test_renewal_must_extend(self) -> None:
        c = contractor()
        contract = award(c)
        with pytest.raises(InvalidValue):
            contract.renew(
                contractor=c,
                today=D(2026, 11, 1),
                new_end=D(2026, 12, 31),
                added_value="0",
                reason="r",
                effective_from=D(2026, 6, 1),
                provenance=BY_OFFICER,
            )

    def test_expiry_only_after_the_end_and_once(self) -> None:
        c = contractor()
        contract = award(c)
        with pytest.raises(InvalidState):
            contract.record_expiry(today=D(2026, 12, 31), provenance=BY_OFFICER)
        contract.record_expiry(today=D(2027, 1, 1), provenance=BY_OFFICER)
        assert contract.status(D(2027, 1, 1)) == "expired"
        with pytest.raises(InvalidState):
            contract.record_expiry(today=D(2027, 1, 2), provenance=BY_OFFICER)
        with pytest.raises(ContractClosed):
            contract.amend(
                contractor=c,
                today=D(2026, 6, 1),
                effective_from=D(2027, 1, 2),
                reason="late",
                value="1",
                provenance=BY_OFFICER,
            )


class TestInvoices:
    def test_cumulative_billing_never_exceeds_the_value(self) -> None:
        contract = award(value="1000.00")
        for n, amount in enumerate(("400.00", "500.00", "100.00"), start=1):
            contract.invoice(
                invoice_number=f"F{n}",
                period_start=D(2026, n, 1),
                period_end=D(2026, n, 28),
                amount=amount,
                provenance=BY_OFFICER,
            )
        assert contract.billed == Decimal("1000.00")
        with pytest.raises(BillingAboveValue):
            contract.invoice(
                invoice_number="F4",
                period_start=D(2026, 4, 1),
                period_end=D(2026, 4, 30),
                amount="0.01",
                provenance=BY_OFFICER,
            )

    def test_duplicate_numbers_and_periods_outside_the_term_are_refused(self) -> None:
        contract = award()
        contract.invoice(
            invoice_number="F1",
            period_start=D(2026, 1, 1),
            period_end=D(2026, 1, 31),
            amount="10",
            provenance=BY_OFFICER,
        )
        with pytest.raises(Duplicate):
            contract.invoice(
                invoice_number="F1",
                period_start=D(2026, 2, 1),
                period_end=D(2026, 2, 28),
                amount="10",
                provenance=BY_OFFICER,
            )
        with pytest.raises(OutsideContract):
            contract.invoice(
                invoice_number="F2",
                period_start=D(2025, 12, 1),
                period_end=D(2025, 12, 31),
                amount="10",
                provenance=BY_OFFICER,
            )

    def test_no_invoice_for_work_after_termination(self) -> None:
        contract = award()
        contract.terminate(
            effective_at=at(D(2026, 6, 15)),
            basis="contract",
            reason="falsified records",
            provenance=BY_OFFICER,
        )
        contract.invoice(
            invoice_number="F1",
            period_start=D(2026, 6, 1),
            period_end=D(2026, 6, 15),
            amount="10",
            provenance=BY_OFFICER,
        )
        with pytest.raises(ContractClosed):
            contract.invoice(
                invoice_number="F2",
                period_start=D(2026, 7, 1),
                period_end=D(2026, 7, 31),
                amount="10",
                provenance=BY_OFFICER,
            )


class TestPerformanceAndMisconduct:
    def test_the_contractor_cannot_evaluate_itself(self) -> None:
        c = contractor()
        contract = award(c)
        with pytest.raises(NotPermitted):
            contract.evaluate(
                period_start=D(2026, 1, 1),
                period_end=D(2026, 6, 30),
                score=99,
                provenance=contractor_staff(c.credit_code),
            )
        with pytest.raises(InvalidValue):
            contract.evaluate(
                period_start=D(2026, 1, 1),
                period_end=D(2026, 6, 30),
                score=101,
                provenance=BY_OFFICER,
            )
        contract.evaluate(
            period_start=D(2026, 1, 1),
            period_end=D(2026, 6, 30),
            score="58.5",
            provenance=BY_OFFICER,
        )
        assert contract.evaluations[0].score == Decimal("58.5")

    def test_violations_need_supervision_and_evidence(self) -> None:
        contract = award()
        with pytest.raises(NotPermitted):
            contract.record_violation(
                kind="falsification",
                severity="grave",
                description="d",
                evidence=[EventAtPosition(5)],
                provenance=BY_OFFICER,
            )
        for evidence in ([], [EventAtPosition(0)], [EventOfAggregate(contract.id, 0)]):
            with pytest.raises(InvalidValue):
                contract.record_violation(
                    kind="falsification",
                    severity="grave",
                    description="d",
                    evidence=evidence,
                    provenance=BY_SUPERVISOR,
                )
        number = contract.record_violation(
            kind="falsification",
            severity="grave",
            description="home visits never made",
            evidence=[EventAtPosition(17), EventOfAggregate(contract.id, 1)],
            provenance=BY_SUPERVISOR,
        )
        assert number == 1

    def test_penalties_follow_a_violation(self) -> None:
        contract = award()
        with pytest.raises(InvalidValue):
            contract.impose_penalty(
                violation=1, kind="warning", basis="art. 5", provenance=BY_SUPERVISOR
            )
        contract.record_violation(
            kind="breach",
            severity="serious",
            description="late",
            evidence=[EventAtPosition(3)],
            provenance=BY_SUPERVISOR,
        )
        with pytest.raises(InvalidValue):
            contract.impose_penalty(
                violation=1, kind="fine", basis="art. 5", provenance=BY_SUPERVISOR
            )
        with pytest.raises(InvalidValue):
            contract.impose_penalty(
                violation=1, kind="warning", basis="art. 5", amount="10", provenance=BY_SUPERVISOR
            )
        contract.impose_penalty(
            violation=1,
            kind="fine",
            basis="contract art. 12",
            amount="5000",
            provenance=BY_SUPERVISOR,
        )
        assert contract.penalties[0].amount == Decimal("5000.00")

    def test_termination_once_by_the_government_with_a_time_zone(self) -> None:
        c = contractor()
        contract = award(c)
        with pytest.raises(NotPermitted):
            contract.terminate(
                effective_at=at(D(2026, 6, 1)),
                basis="law",
                reason="r",
                provenance=contractor_staff(c.credit_code),
            )
        with pytest.raises(InvalidValue):
            contract.terminate(
                effective_at=dt.datetime(2026, 6, 1), basis="law", reason="r", provenance=BY_OFFICER
            )
        with pytest.raises(InvalidValue):
            contract.terminate(
                effective_at=at(D(2026, 6, 1)), basis="whim", reason="r", provenance=BY_OFFICER
            )
        contract.terminate(
            effective_at=at(D(2026, 6, 1)), basis="law", reason="fraud", provenance=BY_APPROVER
        )
        with pytest.raises(InvalidState):
            contract.terminate(
                effective_at=at(D(2026, 6, 2)), basis="law", reason="again", provenance=BY_APPROVER
            )


class TestContractCheck:
    def covers(
        self,
        contract: Contract,
        c: Contractor,
        item: str = "household_investigation",
        division: str = "440103001005",
        when: dt.datetime | None = None,
    ) -> None:
        contract.check_covers(
            contractor=c,
            work_item=WorkItem(item),
            division=DivisionCode(division),
            at=when or at(D(2026, 5, 5)),
        )

    def test_covered_work_passes(self) -> None:
        c = contractor()
        self.covers(award(c), c)

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"item": "care_and_nursing"}, "work_item"),
            ({"division": "440103009001"}, "division"),
            ({"when": at(D(2027, 1, 1))}, "contract_id"),
            ({"when": at(D(2025, 12, 31))}, "contract_id"),
        ],
    )
    def test_each_way_of_falling_outside_is_named(self, kwargs: dict, field: str) -> None:
        c = contractor()
        with pytest.raises(OutsideContract) as refused:
            self.covers(award(c), c, **kwargs)
        assert refused.value.field == field

    def test_after_termination_and_during_a_ban(self) -> None:
        c = contractor()
        contract = award(c)
        contract.terminate(
            effective_at=at(D(2026, 6, 1), 9), basis="contract", reason="r", provenance=BY_OFFICER
        )
        self.covers(contract, c, when=at(D(2026, 6, 1), 8))
        with pytest.raises(OutsideContract, match="terminated"):
            self.covers(contract, c, when=at(D(2026, 6, 1), 9))
        other = contractor()
        later = award(other)
        other.ban(
            start=D(2026, 8, 1),
            end=D(2026, 8, 31),
            reason="r",
            deciding_unit="440103",
            provenance=BY_SUPERVISOR,
        )
        with pytest.raises(OutsideContract, match="banned"):
            self.covers(later, other, when=at(D(2026, 8, 15)))
        with pytest.raises(OutsideContract, match="another contractor"):
            self.covers(later, c)

    def test_coverage_follows_the_terms_in_force_on_the_day(self) -> None:
        c = contractor()
        contract = award(c)
        contract.amend(
            contractor=c,
            today=D(2026, 6, 1),
            effective_from=D(2026, 7, 1),
            reason="scope cut",
            work_items=["psychological_counselling"],
            provenance=BY_OFFICER,
        )
        self.covers(contract, c, when=at(D(2026, 6, 30)))  # old terms still in force
        with pytest.raises(OutsideContract):
            self.covers(contract, c, when=at(D(2026, 7, 1)))


class TestStaff:
    def test_employed_by_exactly_one_of_unit_or_contract(self) -> None:
        with pytest.raises(InvalidValue):
            StaffMember.hire(name="Li", kind="handling_staff", provenance=BY_OFFICER)
        with pytest.raises(InvalidValue):
            StaffMember.hire(
                name="Li",
                kind="handling_staff",
                government_unit="440103",
                contract=award(),
                provenance=BY_OFFICER,
            )

    @pytest.mark.parametrize(
        ("kind", "division", "ok"),
        [
            ("handling_staff", "440103", True),
            ("handling_staff", "440103001", True),
            ("handling_staff", "440103001001", False),
            ("village_coordinator", "440103001001", True),
            ("village_coordinator", "440103001", False),
        ],
    )
    def test_assignment_levels(self, kind: str, division: str, ok: bool) -> None:
        staff = StaffMember.hire(
            name="Li", kind=kind, government_unit="440103", provenance=BY_OFFICER
        )
        if ok:
            staff.assign(division=division, provenance=BY_OFFICER)
            assert staff.assignment == division
        else:
            with pytest.raises(InvalidValue):
                staff.assign(division=division, provenance=BY_OFFICER)

    def test_contract_staff_work_inside_the_contract_area_and_term(self) -> None:
        c = contractor()
        contract = award(c)
        staff = StaffMember.hire(
            name="Wang", kind="village_coordinator", contract=contract, provenance=BY_OFFICER
        )
        with pytest.raises(InvalidValue):
            staff.assign(division="440103009001", provenance=BY_OFFICER, contract=contract)
        staff.assign(division="440103001001", provenance=BY_OFFICER, contract=contract)
        assert staff.is_active_on(D(2026, 6, 1), contract)
        assert not staff.is_active_on(D(2027, 1, 1), contract)  # the contract has ended
        contract.terminate(
            effective_at=at(D(2026, 9, 1)), basis="law", reason="r", provenance=BY_OFFICER
        )
        assert not staff.is_active_on(D(2026, 9, 1), contract)
        with pytest.raises(InvalidState):
            StaffMember.hire(
                name="Zhao", kind="handling_staff", contract=contract, provenance=BY_OFFICER
            )

    def test_training_rating_and_removal(self) -> None:
        staff = StaffMember.hire(
            name="Li", kind="handling_staff", government_unit="440103", provenance=BY_OFFICER
        )
        staff.assign(division="440103", provenance=BY_OFFICER)
        staff.record_training(
            course="means testing", completed_on=D(2026, 3, 1), hours=16, provenance=BY_OFFICER
        )
        with pytest.raises(InvalidValue):
            staff.record_training(
                course="x", completed_on=D(2026, 3, 1), hours=0, provenance=BY_OFFICER
            )
        staff.rate(period="2026H1", rating="poor", provenance=BY_OFFICER)
        with pytest.raises(InvalidValue):
            staff.rate(period="2026H1", rating="awful", provenance=BY_OFFICER)
        assert staff.is_active_on(D(2026, 7, 1))
        staff.remove(on=D(2026, 7, 2), reason="weakest performer", provenance=BY_OFFICER)
        assert not staff.is_active_on(D(2026, 7, 2))
        with pytest.raises(InvalidState):
            staff.assign(division="440103001", provenance=BY_OFFICER)


def test_an_amendment_cannot_be_backdated_behind_a_later_one() -> None:
    c = contractor()
    contract = award(c)
    contract.amend(
        contractor=c,
        today=D(2026, 6, 1),
        effective_from=D(2026, 9, 1),
        reason="from autumn",
        value="120000",
        provenance=BY_OFFICER,
    )
    with pytest.raises(InvalidValue) as refused:
        contract.amend(
            contractor=c,
            today=D(2026, 6, 2),
            effective_from=D(2026, 7, 1),
            reason="earlier",
            work_items=["household_investigation"],
            provenance=BY_OFFICER,
        )
    assert refused.value.field == "effective_from"


def test_contractor_staff_do_not_manage_relief_staff() -> None:
    worker = contractor_staff(credit_code())
    with pytest.raises(NotPermitted):
        StaffMember.hire(
            name="Li", kind="handling_staff", government_unit="440103", provenance=worker
        )
    staff = StaffMember.hire(
        name="Li", kind="handling_staff", government_unit="440103", provenance=BY_OFFICER
    )
    for command, kwargs in (
        ("assign", {"division": "440103"}),
        ("record_training", {"course": "c", "completed_on": D(2026, 1, 1), "hours": 1}),
        ("rate", {"period": "2026", "rating": "excellent"}),
        ("remove", {"on": D(2026, 1, 1), "reason": "r"}),
    ):
        with pytest.raises(NotPermitted):
            getattr(staff, command)(provenance=worker, **kwargs)
