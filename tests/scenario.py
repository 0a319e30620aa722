"""Ready-made histories written through the application, for integration and e2e tests."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from uuid import UUID

from domain.case import HomeVisit, IncomeItem, MeansTest, ReliefCase
from domain.commands.cases import (
    ApproveCase,
    CloseCase,
    InvestigateCase,
    MoveOutMember,
    ReceiveApplication,
    RecommendCase,
    RecordPayment,
    RegisterHousehold,
    ResumeCase,
    SuspendCase,
)
from domain.commands.purchasing import (
    AmendContract,
    AssignStaff,
    AwardContract,
    HireStaff,
    LinkSignIn,
    RegisterContractor,
    RemoveStaff,
    TerminateContract,
    UnlinkSignIn,
)
from domain.commands.standards import SetStandard
from domain.household import Household, HouseholdMember
from infra.runtime import Runtime
from tests.factories import (
    BY_CLERK,
    BY_OFFICER,
    approver,
    credit_code,
    hire_staff_for,
    officer,
    resident_id,
    village,
)


def household(
    runtime: Runtime,
    county: str = "440103",
    *,
    members: int = 1,
    township: str = "001",
    village_: str = "001",
) -> Household:
    address = county
    people = [HouseholdMember(resident_id(address=address), "Applicant", "head")]
    people += [
        HouseholdMember(
            resident_id(address=address, born="20100101"), f"Child {chr(65 + n)}", "child"
        )
        for n in range(members - 1)
    ]
    code = village(county, township, village_)
    return runtime.services.cases.register_household(
        RegisterHousehold(
            registered_division=code,
            residence_division=code,
            members=tuple(people),
            provenance=BY_CLERK,
        )
    )


def application(
    runtime: Runtime,
    county: str = "440103",
    programme: str = "dibao",
    *,
    window: str | None = None,
    village_: str = "001",
) -> ReliefCase:
    home = household(runtime, county, village_=village_)
    head = next(iter(home.members))
    return runtime.services.cases.receive_application(
        ReceiveApplication(
            household_id=home.id,
            applicant_id=head,
            programme=programme,
            window_division=window or f"{county}001",
            provenance=BY_CLERK,
        )
    )


COUNTIES = ("440103", "440104", "440305", "440606")


def write_history(runtime: Runtime, cases: int, *, seed: int = 7) -> list[UUID]:
    """Receive ``cases`` applications across counties and programmes; close about a third."""
    rng = random.Random(seed)
    received = []
    for _ in range(cases):
        county = rng.choice(COUNTIES)
        case = application(
            runtime,
            county,
            rng.choice(("dibao", "tekun", "temporary")),
            village_=f"{rng.randint(1, 3):03d}",
        )
        received.append(case.id)
        if rng.random() < 0.35:
            runtime.services.cases.close_case(
                CloseCase(case_id=case.id, reason_code="voluntary", provenance=approver(county))
            )
    return received


def means_test(place: str = "440103001001", visitor: str = "officer-1") -> MeansTest:
    return MeansTest(
        (IncomeItem("wages", Decimal("300")),),
        (),
        1,
        HomeVisit(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), place, visitor),
    )


def approve(runtime: Runtime, case: ReliefCase) -> None:
    """Investigate, recommend and approve a received case through the county's officers
    (staff records of the county, as every decision-maker is)."""
    county = case.county.code
    investigator = hire_staff_for(runtime.services, officer(county))
    runtime.services.cases.investigate_case(
        InvestigateCase(
            case_id=case.id,
            means_test=means_test(case.registered_division.code),
            contract_id=None,
            provenance=investigator,
        )
    )
    runtime.services.cases.recommend_case(
        RecommendCase(
            case_id=case.id,
            recommendation="approve",
            reasons="below the line",
            monthly_amount="900",
            contract_id=None,
            provenance=investigator,
        )
    )
    runtime.services.cases.approve_case(
        ApproveCase(
            case_id=case.id,
            monthly_amount="900",
            start_date=runtime.services.clock.today(),
            reasons="approved",
            provenance=hire_staff_for(runtime.services, approver(county)),
        )
    )


def set_standard(runtime: Runtime, amount: str, *, reason: str | None = None) -> None:
    """Guangzhou's (4401) dibao standard from 2000-01-01; another amount corrects it."""
    runtime.services.standards.set_standard(
        SetStandard(
            division="4401",
            programme="dibao",
            effective_from=dt.date(2000, 1, 1),
            monthly_amount=amount,
            source="city notice (test)",
            reason=reason,
            provenance=approver("4401"),
        )
    )


def write_rich_history(runtime: Runtime, *, seed: int = 11) -> None:
    """Cases through approval, suspension and closure; staff hired, moved and removed; a
    contract awarded, amended and terminated: every kind of event the projections read."""
    rng = random.Random(seed)
    set_standard(runtime, "1000")  # the means tests are placed against it ...
    case_ids = write_history(runtime, 30, seed=seed)
    set_standard(runtime, "1010", reason="typing error")  # ... and again once it is corrected
    for case_id in case_ids:
        case = runtime.ledger.get_case(case_id)
        if case.is_active and rng.random() < 0.7:
            approve(runtime, case)
            if rng.random() < 0.3:
                runtime.services.cases.suspend_case(
                    SuspendCase(
                        case_id=case_id, reason="check", provenance=approver(case.county.code)
                    )
                )
                if rng.random() < 0.5:
                    runtime.services.cases.resume_case(
                        ResumeCase(
                            case_id=case_id, reason="ok", provenance=approver(case.county.code)
                        )
                    )
            elif rng.random() < 0.3:
                runtime.services.cases.close_case(
                    CloseCase(
                        case_id=case_id,
                        reason_code="income_above_line",
                        provenance=approver(case.county.code),
                    )
                )
    contractor = runtime.services.purchasing.register_contractor(
        RegisterContractor(
            name="Care",
            contractor_type="social_organisation",
            credit_code=credit_code(),
            institution_class=None,
            provenance=BY_OFFICER,
        )
    )
    today = runtime.services.clock.today()
    contract = runtime.services.purchasing.award_contract(
        AwardContract(
            contractor_id=contractor.id,
            purchaser="440103",
            work_items=("household_investigation",),
            service_area=("440103",),
            start=today - dt.timedelta(days=10),
            end=today + dt.timedelta(days=100),
            value="5000",
            funding_source="relief_work_funds",
            provenance=BY_OFFICER,
        )
    )
    runtime.services.purchasing.amend_contract(
        AmendContract(
            contract_id=contract.id,
            reason="longer",
            end=today + dt.timedelta(days=200),
            provenance=BY_OFFICER,
        )
    )
    for n in range(6):
        county = COUNTIES[n % len(COUNTIES)]
        staff = runtime.services.purchasing.hire_staff(
            HireStaff(
                name=f"Staff {n}",
                kind="handling_staff",
                provenance=BY_OFFICER,
                **{"contract_id": contract.id}
                if county == "440103"
                else {"government_unit": county},
            )
        )
        runtime.services.purchasing.assign_staff(
            AssignStaff(staff_id=staff.id, division=f"{county}001", provenance=BY_OFFICER)
        )
        if n < 2:  # sign-ins linked (and one unlinked again): the SignIn aggregate too
            idp, subject = "https://idp.example", f"s-{n}"
            runtime.services.purchasing.link_sign_in(
                LinkSignIn(staff_id=staff.id, issuer=idp, subject=subject, provenance=BY_OFFICER)
            )
            if n == 1:
                runtime.services.purchasing.unlink_sign_in(
                    UnlinkSignIn(
                        staff_id=staff.id, issuer=idp, subject=subject, provenance=BY_OFFICER
                    )
                )
        if n == 4:
            runtime.services.purchasing.assign_staff(
                AssignStaff(staff_id=staff.id, division=f"{county}002", provenance=BY_OFFICER)
            )
        if n == 5:
            runtime.services.purchasing.remove_staff(
                RemoveStaff(staff_id=staff.id, on=today, reason="left", provenance=BY_OFFICER)
            )
    runtime.services.purchasing.terminate_contract(
        TerminateContract(
            contract_id=contract.id,
            effective_at=runtime.services.clock.now(),
            basis="contract",
            reason="ended",
            provenance=BY_OFFICER,
        )
    )
    # A household that loses a member (the red flags keep each loss).
    family = household(runtime, "440104", members=2)
    child = next(r for r, m in family.members.items() if m.relation.value == "child")
    runtime.services.cases.move_out_member(
        MoveOutMember(household_id=family.id, resident_id=child, on=today, provenance=BY_CLERK)
    )


def paid_case(runtime: Runtime) -> ReliefCase:
    """A case approved and paid for the current month, as it stands after the payment."""
    case = application(runtime)
    approve(runtime, case)
    return runtime.services.cases.record_payment(
        RecordPayment(
            case_id=case.id,
            period=runtime.services.clock.today().strftime("%Y-%m"),
            amount=Decimal("900"),
            provenance=approver(who="payer"),
        )
    )
