"""Staff are people: a staff record names its person (the blind index of the resident ID), and
the same person on several rosters is one person to the workload and conflict rules; a
decision-maker who belongs to the applicant's household is in conflict without declaring it."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from domain.case import HomeVisit, IncomeItem, MeansTest
from domain.commands.cases import InvestigateCase, ReceiveApplication, RegisterHousehold
from domain.commands.purchasing import AssignStaff, HireStaff
from domain.household import HouseholdMember
from domain.provenance import Role
from infra.runtime import Runtime
from tests.factories import BY_CLERK, BY_OFFICER, hire_staff_for, officer, resident_id
from tests.integration.test_red_flags import (
    alerts,
    approved_case,
    at,
    by_subject,
    contract_for,
    decide,
    positions,
    serve,
    staff_actor,
)
from tests.scenario import application

pytestmark = pytest.mark.integration


def hire(
    runtime: Runtime,
    name: str,
    number: str | None = None,
    contract_id: uuid.UUID | None = None,
    kind: str = "handling_staff",
) -> str:
    """A staff record (on a contract's roster, else the county bureau's), assigned to the
    county: its actor id."""
    staff = runtime.services.purchasing.hire_staff(
        HireStaff(
            name=name,
            kind=kind,
            government_unit=None if contract_id else "440103",
            contract_id=contract_id,
            resident_id=number,
            provenance=BY_OFFICER,
        )
    )
    runtime.services.purchasing.assign_staff(
        AssignStaff(staff_id=staff.id, division="440103", provenance=BY_OFFICER)
    )
    return str(staff.id)


def visit(runtime: Runtime, visitor: str, when: dt.datetime) -> None:
    case = application(runtime, "440103")
    runtime.services.cases.investigate_case(
        InvestigateCase(
            case_id=case.id,
            means_test=MeansTest(
                (IncomeItem("wages", Decimal("300")),),
                (),
                1,
                HomeVisit(when, case.registered_division.code, visitor),
            ),
            contract_id=None,
            provenance=hire_staff_for(runtime.services, officer()),
        )
    )


def test_one_person_on_two_rosters_has_one_day(runtime: Runtime) -> None:
    yesterday = runtime.services.clock.today() - dt.timedelta(days=1)
    first, code1 = contract_for(runtime, items=["psychological_counselling"])
    second, code2 = contract_for(runtime, items=["psychological_counselling"])
    case = approved_case(runtime)

    # The same person on two contractors' rosters, serving at overlapping times.
    chen = resident_id(born="19800101")
    a = hire(runtime, "Chen", chen, first.id)
    b = hire(runtime, "Chen", chen, second.id)
    one = serve(
        runtime,
        case,
        at(yesterday, 9),
        at(yesterday, 10),
        by=staff_actor(a, Role.CONTRACTOR_STAFF, code1),
        contract_id=first.id,
    )
    two = serve(
        runtime,
        case,
        at(yesterday, 9, 30),
        at(yesterday, 10, 30),
        by=staff_actor(b, Role.CONTRACTOR_STAFF, code2),
        contract_id=second.id,
    )
    # Near miss: two different people at the same times.
    c = hire(runtime, "Liu", resident_id(born="19810101"), first.id)
    d = hire(runtime, "Ma", resident_id(born="19820101"), second.id)
    serve(
        runtime,
        case,
        at(yesterday, 14),
        at(yesterday, 15),
        by=staff_actor(c, Role.CONTRACTOR_STAFF, code1),
        contract_id=first.id,
    )
    serve(
        runtime,
        case,
        at(yesterday, 14, 30),
        at(yesterday, 15, 30),
        by=staff_actor(d, Role.CONTRACTOR_STAFF, code2),
        contract_id=second.id,
    )

    # Home visits: two under a bureau record and two under a contractor record of one person
    # (ceiling 3 a day in these tests); the near miss splits four between two people.
    zhou = resident_id(born="19830101")
    bureau, roster = hire(runtime, "Zhou", zhou), hire(runtime, "Zhou", zhou, first.id)
    e, f = (
        hire(runtime, "Sun", resident_id(born="19840101")),
        hire(runtime, "Wu", resident_id(born="19850101")),
    )
    for n, visitor in enumerate((bureau, roster, bureau, roster, e, f, e, f)):
        visit(runtime, visitor, at(yesterday, 8 + n))

    overlapping = alerts(runtime, "overlapping_records")
    assert len(overlapping) == 1
    found = overlapping[0]
    case_positions = positions(runtime.ledger, case.id)
    assert {case_positions[one], case_positions[two]} <= set(found["evidence"])
    assert found["subject_id"] in {a, b}
    assert "several rosters" in found["reason"] and a in found["reason"] and b in found["reason"]
    ceiling = alerts(runtime, "home_visits_over_ceiling")
    assert [x["subject_id"] in {bureau, roster} for x in ceiling] == [True]
    assert "4 home visits" in ceiling[0]["reason"]


def test_a_person_learned_later_rejudges_their_days(runtime: Runtime) -> None:
    """Two records hired without an ID overlap; nothing is flagged until both declare the
    same person, and then the person's day is flagged."""
    yesterday = runtime.services.clock.today() - dt.timedelta(days=1)
    contract, code = contract_for(runtime, items=["psychological_counselling"])
    case = approved_case(runtime)
    a, b = hire(runtime, "Hu", None, contract.id), hire(runtime, "Hu", None, contract.id)
    serve(
        runtime,
        case,
        at(yesterday, 9),
        at(yesterday, 10),
        by=staff_actor(a, Role.CONTRACTOR_STAFF, code),
        contract_id=contract.id,
    )
    serve(
        runtime,
        case,
        at(yesterday, 9, 30),
        at(yesterday, 10, 30),
        by=staff_actor(b, Role.CONTRACTOR_STAFF, code),
        contract_id=contract.id,
    )
    assert alerts(runtime, "overlapping_records") == []
    number, key = resident_id(born="19860101"), runtime.settings.identity_key()
    for actor in (a, b):
        staff = runtime.ledger.get_staff(uuid.UUID(actor))
        staff.declare_interests(resident_id=number, relatives=[], key=key, provenance=BY_OFFICER)
        runtime.ledger.save(staff)
    found = alerts(runtime, "overlapping_records")
    assert [x["status"] for x in found] == ["open"]


def test_a_household_member_deciding_is_in_conflict_without_declaring(runtime: Runtime) -> None:
    services = runtime.services
    head, member = resident_id(), resident_id(born="19700101")
    home = services.cases.register_household(
        RegisterHousehold(
            registered_division="440103001001",
            residence_division="440103001001",
            members=(
                HouseholdMember(head, "Head", "head"),
                HouseholdMember(member, "Ye", "spouse"),
            ),
            provenance=BY_CLERK,
        )
    )
    case = services.cases.receive_application(
        ReceiveApplication(
            household_id=home.id,
            applicant_id=head,
            programme="dibao",
            window_division="440103001",
            provenance=BY_CLERK,
        )
    )
    # The approver is a staff record of the household's member: no declaration at all.
    approver = hire(runtime, "Ye", member, kind="approver")
    decide(runtime, case, decider=staff_actor(approver, Role.APPROVER))
    # Near miss: an approver with a staff record of someone outside the household.
    other = hire(runtime, "Qian", resident_id(born="19710101"), kind="approver")
    decide(runtime, application(runtime, "440103"), decider=staff_actor(other, Role.APPROVER))
    # Across rosters: a relative declared on a contractor's record of a person counts when
    # the same person investigates under the bureau's record.
    contract, _ = contract_for(runtime, items=["household_investigation"])
    niece_case = application(runtime, "440103")
    guo = resident_id(born="19720101")
    on_roster, at_bureau = hire(runtime, "Guo", guo, contract.id), hire(runtime, "Guo", guo)
    staff = runtime.ledger.get_staff(uuid.UUID(on_roster))
    staff.declare_interests(
        resident_id=guo,
        relatives=[(niece_case.applicant_id, "other")],
        key=runtime.settings.identity_key(),
        provenance=BY_OFFICER,
    )
    runtime.ledger.save(staff)
    decide(runtime, niece_case, investigator=staff_actor(at_bureau))

    found: dict[str, Any] = by_subject(alerts(runtime, "conflict_of_interest"))
    assert set(found) == {approver, at_bureau}
    assert "belong to the applicant's household" in found[approver]["reason"]
    assert "declared other" in found[at_bureau]["reason"]
