"""The application services over the library's in-memory store: each command handled by name,
its events saved together or not at all, the clock the services are given.

(The same services over PostgreSQL are exercised by the integration and e2e tests.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import pytest

from domain.case import HomeVisit, IncomeItem, MeansTest, ReliefCase
from domain.clock import BUSINESS_TZ, SetClock
from domain.commands.cases import (
    ApproveCase,
    InvestigateCase,
    ReceiveApplication,
    RecommendCase,
    RecordPayment,
    RegisterHousehold,
)
from domain.commands.policy import LoadStaffingPolicy
from domain.commands.purchasing import AwardContract, RegisterContractor
from domain.commands.supervision import CloseInvestigation, OpenInvestigation, RecordFindings
from domain.contract import Contract, EventAtPosition, EventOfAggregate
from domain.contractor import Contractor
from domain.division import DIVISION_NAMESPACE as DIVISION_NS
from domain.division import Division, DivisionEntry, ListedDivision, MappingRegister
from domain.errors import (
    BanTerms,
    InvalidValue,
    PaymentAboveAmountInForce,
    PaymentInAdvance,
    PolicyAuthorityOnly,
    SupervisorsDoNotOperateCases,
    UnknownDivision,
    VersionMismatch,
)
from domain.household import HouseholdMember
from domain.investigation import BanOrder, CitedAlert, PenaltyOrder, VerdictInput, ViolationOrder
from domain.provenance import Actor, Provenance, Role
from domain.staffing import LoadOutcome, StaffingBandTables, band_tables_id
from infra.divisions_file import read_division_file
from infra.ledger import ReliefLedger
from services import Services
from tests.factories import (
    BY_CLERK,
    BY_OFFICER,
    BY_SUPERVISOR,
    IDENTITY_KEY,
    approver,
    credit_code,
    hire_staff_for,
    officer,
    resident_id,
)

NOW = dt.datetime(2026, 6, 15, 10, 0, tzinfo=BUSINESS_TZ)
VILLAGE = "440103001001"


class Recording(ReliefLedger):
    """The in-memory store, noting what each save held (to see what was saved together)."""

    def __init__(self) -> None:
        super().__init__(env={})
        self.saves: list[list[str]] = []

    def save(self, *objs, **kwargs):
        self.saves.append([type(e).__qualname__ for a in objs for e in a.pending_events])
        return super().save(*objs, **kwargs)


@pytest.fixture()
def store() -> Recording:
    return Recording()


TEST_DIVISIONS = read_division_file(
    Path(__file__).resolve().parents[1] / "fixtures" / "test-divisions.csv"
)


class StoreRegister(MappingRegister):
    """The register as the services' store holds it: the divisions saved there (read back
    from the aggregates, as the read model would)."""

    def __init__(self, store: Recording, preloaded: list[DivisionEntry]) -> None:
        super().__init__(preloaded)
        self.store = store

    def lookup(self, code: str, on_date: dt.date) -> DivisionEntry | None:
        found = super().lookup(code, on_date)
        if found is None and self.store.exists(uuid.uuid5(DIVISION_NS, code)):
            division = self.store.get(Division, uuid.uuid5(DIVISION_NS, code))
            found = MappingRegister(division.entries()).lookup(code, on_date)
        return found


def listed_register() -> MappingRegister:
    """The test division list (tests/fixtures/test-divisions.csv) as an in-memory register."""
    return MappingRegister(
        DivisionEntry(d.code, d.name, d.level, d.parent, TEST_DIVISIONS.effective_from)
        for d in TEST_DIVISIONS.divisions
    )


@pytest.fixture()
def register() -> MappingRegister:
    return listed_register()


@pytest.fixture()
def services(store: Recording, register: MappingRegister) -> Services:
    return Services.over(
        store,
        clock=SetClock(NOW),
        identity_key=IDENTITY_KEY,
        register=register,
    )


def approved_case(services: Services) -> ReliefCase:
    head = resident_id()
    cases = services.cases
    home = cases.register_household(
        RegisterHousehold(
            registered_division=VILLAGE,
            residence_division=VILLAGE,
            members=(HouseholdMember(head, "Chen Hua", "head"),),
            provenance=BY_CLERK,
        )
    )
    case = cases.receive_application(
        ReceiveApplication(
            household_id=home.id,
            applicant_id=head,
            programme="dibao",
            window_division="440103001",
            provenance=BY_CLERK,
        )
    )
    visit = HomeVisit(NOW - dt.timedelta(days=2), VILLAGE, "officer-1")
    investigator = hire_staff_for(services, officer())  # decision-makers are staff records
    cases.investigate_case(
        InvestigateCase(
            case_id=case.id,
            means_test=MeansTest((IncomeItem("wages", Decimal("400")),), (), 1, visit),
            provenance=investigator,
        )
    )
    cases.recommend_case(
        RecommendCase(
            case_id=case.id,
            recommendation="approve",
            reasons="below the line",
            monthly_amount=Decimal("900"),
            provenance=investigator,
        )
    )
    return cases.approve_case(
        ApproveCase(
            case_id=case.id,
            monthly_amount=Decimal("900"),
            start_date=dt.date(2026, 5, 1),
            reasons="eligible",
            provenance=hire_staff_for(services, approver()),
        )
    )


def test_a_payment_is_one_command_one_event_one_save(services: Services, store: Recording) -> None:
    case = approved_case(services)
    paid = services.cases.record_payment(
        RecordPayment(
            case_id=case.id, period="2026-06", amount=Decimal("900"), provenance=officer()
        )
    )
    assert store.saves[-1] == ["ReliefCase.PaymentRecorded"]
    assert store.get(ReliefCase, case.id).payments[paid.version].amount == Decimal("900.00")
    with pytest.raises(PaymentAboveAmountInForce):
        services.cases.record_payment(
            RecordPayment(
                case_id=case.id, period="2026-05", amount=Decimal("901"), provenance=officer()
            )
        )
    with pytest.raises(VersionMismatch):
        services.cases.record_payment(
            RecordPayment(
                case_id=case.id,
                period="2026-05",
                amount=Decimal("900"),
                provenance=officer(),
                expected_version=case.version,
            )
        )
    supervisor = Provenance(Actor("supervisor-1", Role.SUPERVISOR, "440103"))
    with pytest.raises(SupervisorsDoNotOperateCases):
        services.cases.record_payment(
            RecordPayment(
                case_id=case.id, period="2026-05", amount=Decimal("900"), provenance=supervisor
            )
        )
    assert store.get(ReliefCase, case.id).version == paid.version


def test_the_services_judge_today_on_the_clock_they_are_given(services: Services) -> None:
    """June 2026 on the services' clock: July has not begun, whatever the system's date."""
    case = approved_case(services)
    with pytest.raises(PaymentInAdvance):
        services.cases.record_payment(
            RecordPayment(
                case_id=case.id, period="2026-07", amount=Decimal("900"), provenance=officer()
            )
        )


def contractor_and_contract(services: Services) -> tuple[Contractor, Contract]:
    purchasing = services.purchasing
    contractor = purchasing.register_contractor(
        RegisterContractor(
            name="Sunshine Social Work Centre",
            contractor_type="social_organisation",
            credit_code=credit_code(),
            provenance=BY_OFFICER,
        )
    )
    contract = purchasing.award_contract(
        AwardContract(
            contractor_id=contractor.id,
            purchaser="440103",
            work_items=("care_and_nursing", "household_investigation"),
            service_area=("440103",),
            start=dt.date(2026, 1, 1),
            end=dt.date(2026, 12, 31),
            value=Decimal("100000"),
            funding_source="relief_work_funds",
            provenance=BY_OFFICER,
        )
    )
    return contractor, contract


def test_an_award_saves_the_contract_and_the_work_on_its_contractor_together(
    services: Services, store: Recording
) -> None:
    contractor, contract = contractor_and_contract(services)
    assert store.saves[-1] == ["Contract.Awarded", "Contractor.WorkTakenOn"]
    assert contract.awarded_on == NOW.date()  # today, on the services' clock
    assert store.get(Contractor, contractor.id).contracts == [contract.id]


def test_a_closure_with_sanctions_is_one_save_and_nothing_when_one_is_refused(
    services: Services, store: Recording
) -> None:
    contractor, contract = contractor_and_contract(services)
    alert = uuid.uuid4()
    supervision = services.supervision
    opened = supervision.open_investigation(
        OpenInvestigation(
            subject_kind="contractor",
            subject_id=contractor.id,
            alerts=(CitedAlert(alert, "work_outside_scope", (3, 4)),),
            grounds="services outside the contract",
            provenance=BY_SUPERVISOR,
        )
    )
    judged = supervision.record_findings(
        RecordFindings(
            investigation_id=opened.id,
            summary="confirmed",
            verdicts=(VerdictInput(alert, "confirmed"),),
            provenance=BY_SUPERVISOR,
        )
    )
    order = ViolationOrder(
        contract_id=contract.id,
        kind="falsification",
        severity="grave",
        description="visits never made",
        penalty=PenaltyOrder("fine", "clause 9", Decimal("2000")),
        ban=BanOrder(dt.date(2026, 7, 1), dt.date(2027, 6, 30), "falsification", "440103001"),
    )
    saves = len(store.saves)
    with pytest.raises(BanTerms) as refused:  # a township may not ban: nothing is saved
        supervision.close_investigation(
            CloseInvestigation(
                investigation_id=opened.id,
                outcome="violation",
                summary="falsified",
                violation=order,
                provenance=BY_SUPERVISOR,
            )
        )
    assert refused.value.field == "violation.ban.deciding_unit"
    assert len(store.saves) == saves
    assert store.get(Contract, contract.id).violations == {}
    closed = supervision.close_investigation(
        CloseInvestigation(
            investigation_id=opened.id,
            outcome="violation",
            summary="falsified",
            violation=dataclasses.replace(
                order,
                ban=BanOrder(dt.date(2026, 7, 1), dt.date(2027, 6, 30), "falsification", "440103"),
            ),
            provenance=BY_SUPERVISOR,
        )
    )
    assert store.saves[-1] == [
        "Investigation.Closed",
        "Contract.ViolationRecorded",
        "Contract.PenaltyImposed",
        "Contractor.Banned",
    ]
    violation = store.get(Contract, contract.id).violations[1]
    assert violation.evidence == (
        EventAtPosition(3),
        EventAtPosition(4),
        EventOfAggregate(opened.id, judged.version),
    )
    assert closed.closure is not None and closed.closure.violation_number == 1


def test_policy_is_loaded_by_an_approving_or_supervising_authority(
    services: Services, store: Recording
) -> None:
    document = {
        "name": "test bands",
        "effective_from": "2026-01-01",
        "source": "test notice",
        "county": [{"households_from": 0, "minimum": 2}],
        "township": [{"households_from": 0, "minimum": 1}],
        "village": {"minimum": 1, "review_above": 2},
    }
    with pytest.raises(PolicyAuthorityOnly):
        services.policy.load_staffing_policy(
            LoadStaffingPolicy(document=document, provenance=BY_OFFICER)
        )
    assert store.saves == []  # a refusal records nothing
    loaded = services.policy.load_staffing_policy(
        LoadStaffingPolicy(document=document, provenance=approver())
    )
    assert loaded.outcome is LoadOutcome.ADOPTED and loaded.version.table.name == "test bands"
    again = services.policy.load_staffing_policy(
        LoadStaffingPolicy(document=document, provenance=approver())
    )
    assert again.outcome is LoadOutcome.UNCHANGED and again.version == loaded.version
    assert store.saves == [["StaffingBandTables.Opened", "StaffingBandTables.BandTableAdopted"]]
    changed = {**document, "county": [{"households_from": 0, "minimum": 3}]}
    without_reason = dataclasses.replace(approver(), reason=None)
    with pytest.raises(InvalidValue) as no_reason:
        services.policy.load_staffing_policy(
            LoadStaffingPolicy(document=changed, provenance=without_reason)
        )
    assert no_reason.value.field == "reason"
    corrected = services.policy.load_staffing_policy(
        LoadStaffingPolicy(document={**changed, "reason": "misprint"}, provenance=approver())
    )
    assert corrected.outcome is LoadOutcome.CORRECTED
    assert (corrected.version.revision, corrected.version.corrects) == (2, 1)
    # read back from the store: both versions, each with its table
    tables = store.get(StaffingBandTables, band_tables_id())
    assert [v.table.county.minimum_for(0) for v in tables.history()] == [2, 3]
    assert services.policy.tables()[0].county.minimum_for(0) == 3


# The division register -----------------------------------------------------------------------


def test_a_household_in_a_village_the_register_lacks_is_refused_naming_the_field(
    services: Services, store: Recording
) -> None:
    with pytest.raises(UnknownDivision) as refused:
        services.cases.register_household(
            RegisterHousehold(
                registered_division="440103001099",
                residence_division=VILLAGE,
                members=(HouseholdMember(resident_id(), "陈华", "head"),),
                provenance=BY_CLERK,
            )
        )
    assert refused.value.field == "registered_division"
    assert store.saves == []


def test_an_award_whose_service_area_the_register_lacks_is_refused(services: Services) -> None:
    contractor = services.purchasing.register_contractor(
        RegisterContractor(
            name="社工服务中心",
            contractor_type="social_organisation",
            credit_code=credit_code(),
            provenance=BY_OFFICER,
        )
    )
    with pytest.raises(UnknownDivision) as refused:
        services.purchasing.award_contract(
            AwardContract(
                contractor_id=contractor.id,
                purchaser="440103",
                work_items=("household_investigation",),
                service_area=("440103", "440103015"),
                start=dt.date(2026, 1, 1),
                end=dt.date(2026, 12, 31),
                value=Decimal("100000"),
                funding_source="relief_work_funds",
                provenance=officer(),
            )
        )
    assert refused.value.field == "service_area[1]"


def test_loading_a_list_twice_writes_it_once_and_a_newer_list_its_differences(
    store: Recording,
) -> None:
    from services.divisions import DivisionService

    by = Provenance(Actor("import", Role.SYSTEM, "44"))
    service = DivisionService(store, StoreRegister(store, []))
    listed = [
        ListedDivision("44", "省"),
        ListedDivision("4401", "市"),
        ListedDivision("440103", "区"),
    ]
    first = service.load_division_list(listed, by, effective_from=dt.date(2000, 1, 1))
    assert (first.established, first.written) == (3, 3)

    class Current(StoreRegister):
        def current(self) -> Mapping[str, DivisionEntry]:
            return {
                code: store.get(Division, uuid.uuid5(DIVISION_NS, code)).entries()[-1]
                for code in ("44", "4401", "440103")
            }

    service = DivisionService(store, Current(store, []))
    again = service.load_division_list(listed, by, effective_from=dt.date(2000, 1, 1))
    assert again.written == 0
    newer = [ListedDivision("44", "省"), ListedDivision("4401", "新市")]
    changed = service.load_division_list(newer, by, effective_from=dt.date(2024, 1, 1))
    assert (changed.established, changed.renamed, changed.abolished) == (0, 1, 1)
    district = store.get(Division, uuid.uuid5(DIVISION_NS, "440103"))
    assert district.valid_to == dt.date(2024, 1, 1)
    assert service.register.lookup("4401", dt.date(2024, 1, 1)).name == "新市"  # type: ignore[union-attr]
