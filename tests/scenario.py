"""Ready-made histories written through the application, for integration and e2e tests."""

from __future__ import annotations

import datetime as dt
import random
from uuid import UUID

from domain.case import HomeVisit, MeansTest, ReliefCase
from domain.household import Household, MemberInput
from infra.ledger import ReliefLedger
from tests.factories import (
    BY_CLERK,
    BY_OFFICER,
    approver,
    credit_code,
    officer,
    resident_id,
    village,
)


def household(
    ledger: ReliefLedger,
    county: str = "440103",
    *,
    members: int = 1,
    township: str = "001",
    village_: str = "001",
) -> Household:
    address = county
    people = [MemberInput(resident_id(address=address), "Applicant", "head")]
    people += [
        MemberInput(resident_id(address=address, born="20100101"), f"Child {n}", "child")
        for n in range(members - 1)
    ]
    code = village(county, township, village_)
    return ledger.register_household(
        registered_division=code, residence_division=code, members=people, provenance=BY_CLERK
    )


def application(
    ledger: ReliefLedger,
    county: str = "440103",
    programme: str = "dibao",
    *,
    window: str | None = None,
    village_: str = "001",
) -> ReliefCase:
    home = household(ledger, county, village_=village_)
    head = next(iter(home.members))
    return ledger.receive_application(
        household_id=home.id,
        applicant_id=head,
        programme=programme,
        window_division=window or f"{county}001",
        provenance=BY_CLERK,
    )


COUNTIES = ("440103", "440104", "440305", "440606")


def write_history(ledger: ReliefLedger, cases: int, *, seed: int = 7) -> list[UUID]:
    """Receive ``cases`` applications across counties and programmes; close about a third."""
    rng = random.Random(seed)
    received = []
    for _ in range(cases):
        county = rng.choice(COUNTIES)
        case = application(
            ledger,
            county,
            rng.choice(("dibao", "tekun", "temporary")),
            village_=f"{rng.randint(1, 3):03d}",
        )
        received.append(case.id)
        if rng.random() < 0.35:
            ledger.close_case(case.id, reason_code="voluntary", provenance=approver(county))
    return received


def means_test(place: str = "440103001001", visitor: str = "officer-1") -> MeansTest:
    return MeansTest(
        [{"source": "wages", "monthly_amount": "300"}],
        [],
        1,
        HomeVisit(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), place, visitor),
    )


def approve(ledger: ReliefLedger, case: ReliefCase) -> None:
    """Investigate, recommend and approve a received case through the county's officers."""
    county = case.county.code
    ledger.investigate_case(
        case.id,
        means_test=means_test(case.registered_division.code),
        contract_id=None,
        provenance=officer(county),
    )
    ledger.recommend_case(
        case.id,
        recommendation="approve",
        reasons="below the line",
        monthly_amount="900",
        contract_id=None,
        provenance=officer(county),
    )
    ledger.approve_case(
        case.id,
        monthly_amount="900",
        start_date=ledger.today(),
        reasons="approved",
        provenance=approver(county),
    )


def write_rich_history(ledger: ReliefLedger, *, seed: int = 11) -> None:
    """Cases through approval, suspension and closure; staff hired, moved and removed; a
    contract awarded, amended and terminated: every kind of event the projections read."""
    rng = random.Random(seed)
    case_ids = write_history(ledger, 30, seed=seed)
    for case_id in case_ids:
        case = ledger.get_case(case_id)
        if case.is_active and rng.random() < 0.7:
            approve(ledger, case)
            if rng.random() < 0.3:
                ledger.suspend_case(case_id, reason="check", provenance=approver(case.county.code))
                if rng.random() < 0.5:
                    ledger.resume_case(case_id, reason="ok", provenance=approver(case.county.code))
            elif rng.random() < 0.3:
                ledger.close_case(
                    case_id, reason_code="income_above_line", provenance=approver(case.county.code)
                )
    contractor = ledger.register_contractor(
        name="Care",
        contractor_type="social_organisation",
        credit_code=credit_code(),
        institution_class=None,
        provenance=BY_OFFICER,
    )
    today = ledger.today()
    contract = ledger.award_contract(
        contractor_id=contractor.id,
        purchaser="440103",
        work_items=["household_investigation"],
        service_area=["440103"],
        start=today - dt.timedelta(days=10),
        end=today + dt.timedelta(days=100),
        value="5000",
        funding_source="relief_work_funds",
        provenance=BY_OFFICER,
    )
    ledger.amend_contract(
        contract.id, reason="longer", end=today + dt.timedelta(days=200), provenance=BY_OFFICER
    )
    for n in range(6):
        county = COUNTIES[n % len(COUNTIES)]
        staff = ledger.hire_staff(
            name=f"Staff {n}",
            kind="handling_staff",
            provenance=BY_OFFICER,
            **({"contract_id": contract.id} if county == "440103" else {"government_unit": county}),
        )
        ledger.assign_staff(staff.id, division=f"{county}001", provenance=BY_OFFICER)
        if n == 4:
            ledger.assign_staff(staff.id, division=f"{county}002", provenance=BY_OFFICER)
        if n == 5:
            ledger.remove_staff(staff.id, on=today, reason="left", provenance=BY_OFFICER)
    ledger.terminate_contract(
        contract.id,
        effective_at=ledger.now(),
        basis="contract",
        reason="ended",
        provenance=BY_OFFICER,
    )


def paid_case(ledger: ReliefLedger) -> ReliefCase:
    """A case approved and paid for the current month, as it stands after the payment."""
    case = application(ledger)
    approve(ledger, case)
    ledger.record_payment(
        case.id,
        period=ledger.today().strftime("%Y-%m"),
        amount="900",
        provenance=approver(who="payer"),
    )
    return ledger.get_case(case.id)
