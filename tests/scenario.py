"""Ready-made histories written through the application, for integration and e2e tests."""

from __future__ import annotations

import random
from uuid import UUID

from domain.case import ReliefCase
from domain.household import Household, MemberInput
from infra.ledger import ReliefLedger
from tests.factories import BY_CLERK, approver, resident_id, village


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
