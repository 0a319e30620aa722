"""The household over time: a case still paid at the old amount after its household lost a
member since the last means test is flagged; reviewed, within the grace, or lost before the
means test, it is not. The person who left is matched with the household they went to."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from domain.case import HomeVisit, IncomeItem, MeansTest
from domain.clock import SetClock
from domain.commands.cases import (
    ApproveCase,
    InvestigateCase,
    MoveOutMember,
    ReceiveApplication,
    RecommendCase,
    RecordDeath,
    RecordPayment,
    RegisterHousehold,
    ReviewCase,
)
from domain.household import HouseholdMember
from infra.runtime import Runtime
from infra.settings import Settings
from projections.red_flags.queries import query_alerts
from tests.factories import BY_CLERK, approver, hire_staff_for, officer, resident_id
from tests.integration.test_red_flags import Flags, run

pytestmark = pytest.mark.integration

D = dt.date


@pytest.fixture()
def clock() -> SetClock:
    clock = SetClock(dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC))
    clock.at(D(2026, 1, 5))
    return clock


@pytest.fixture()
def story(settings: Settings, clock: SetClock) -> Iterator[Runtime]:
    opened = Runtime.open(settings, clock=clock)
    yield opened
    opened.close()


class Case:
    def __init__(self, runtime: Runtime, clock: SetClock) -> None:
        self.runtime, self.clock, self.cases = runtime, clock, runtime.services.cases
        self.head, self.member = resident_id(), resident_id(born="19900101")
        clock.at(D(2026, 1, 5))
        self.home = self.cases.register_household(
            RegisterHousehold(
                registered_division="440103001001",
                residence_division="440103001001",
                members=(
                    HouseholdMember(self.head, "Head", "head"),
                    HouseholdMember(self.member, "Member", "child"),
                ),
                provenance=BY_CLERK,
            )
        )
        self.id = self.cases.receive_application(
            ReceiveApplication(
                household_id=self.home.id,
                applicant_id=self.head,
                programme="dibao",
                window_division="440103001",
                provenance=BY_CLERK,
            )
        ).id

    def investigate(self, day: dt.date) -> None:
        self.clock.at(day, 15)
        self.cases.investigate_case(
            InvestigateCase(
                case_id=self.id,
                means_test=MeansTest(
                    (IncomeItem("wages", Decimal(600)),),
                    (),
                    2,
                    HomeVisit(self.clock.at(day, 10), "440103001001", "officer-1"),
                ),
                contract_id=None,
                provenance=hire_staff_for(self.runtime.services, officer()),
            )
        )
        self.clock.at(day, 15)

    def approve(self) -> None:
        self.investigate(D(2026, 1, 10))
        self.cases.recommend_case(
            RecommendCase(
                case_id=self.id,
                recommendation="approve",
                reasons="below",
                monthly_amount=Decimal(900),
                provenance=hire_staff_for(self.runtime.services, officer()),
            )
        )
        self.clock.at(D(2026, 1, 20))
        self.cases.approve_case(
            ApproveCase(
                case_id=self.id,
                monthly_amount=Decimal(900),
                start_date=D(2026, 2, 1),
                reasons="below",
                provenance=hire_staff_for(self.runtime.services, approver()),
            )
        )

    def pay(self, month: int) -> None:
        self.clock.at(D(2026, month, 5))
        self.cases.record_payment(
            RecordPayment(
                case_id=self.id,
                period=f"2026-{month:02d}",
                amount=Decimal(900),
                provenance=officer(),
            )
        )

    def move_out(self, day: dt.date) -> None:
        self.clock.at(day)
        self.cases.move_out_member(
            MoveOutMember(
                household_id=self.home.id, resident_id=self.member, on=day, provenance=BY_CLERK
            )
        )

    def review(self, day: dt.date) -> None:
        self.clock.at(day)
        self.cases.review_case(
            ReviewCase(
                case_id=self.id,
                outcome="continue",
                notes="household checked",
                provenance=officer(),
            )
        )


def flagged(runtime: Runtime) -> dict[str, dict[str, Any]]:
    run(runtime, Flags)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        found = query_alerts(cursor, rule="household_shrank_unreviewed", limit=100)[0]
    return {a["subject_id"]: a for a in found if a["status"] == "open"}


def test_a_shrunken_household_paid_unreviewed_is_flagged(story: Runtime, clock: SetClock) -> None:
    moved = Case(story, clock)  # a member moves out, then heads a household of their own
    moved.approve()
    died = Case(story, clock)  # a member dies
    died.approve()
    reviewed = Case(story, clock)  # twin: reviewed after the move
    reviewed.approve()
    graced = Case(story, clock)  # twin: paid only for months within the grace
    graced.approve()
    before = Case(story, clock)  # twin: the member left before the means test
    before.move_out(D(2026, 1, 8))
    before.approve()

    for case in (moved, died, reviewed, graced, before):
        case.pay(2)
    for case in (moved, reviewed, graced):
        case.move_out(D(2026, 2, 10))
    clock.at(D(2026, 2, 11))
    story.services.cases.record_death(
        RecordDeath(resident_id=died.member, on=D(2026, 2, 9), provenance=BY_CLERK)
    )
    clock.at(D(2026, 2, 12))
    elsewhere = story.services.cases.register_household(
        RegisterHousehold(
            registered_division="440103001002",
            residence_division="440103001002",
            members=(HouseholdMember(moved.member, "Member", "head"),),
            provenance=BY_CLERK,
        )
    )
    reviewed.review(D(2026, 3, 20))
    for case in (moved, died, reviewed, graced, before):
        case.pay(3)  # March begins within 31 days of the change
    for case in (moved, died, reviewed, before):
        case.pay(4)

    found = flagged(story)
    assert set(found) == {str(moved.id), str(died.id)}
    assert "moved out" in found[str(moved.id)]["reason"]
    assert str(elsewhere.id) in found[str(moved.id)]["reason"]  # matched across both
    assert "died" in found[str(died.id)]["reason"]
    assert "2026-04" in found[str(moved.id)]["reason"]
    assert "2026-03" not in found[str(moved.id)]["reason"]

    # A review clears it: the amount was looked at for the household as it now is.
    moved.review(D(2026, 4, 20))
    assert str(moved.id) in flagged(story)  # April's payment came before the review
    moved.pay(5)
    assert "2026-05" not in flagged(story)[str(moved.id)]["reason"]
