"""Variants of every injectable red-flag pattern, each with an honest near-miss twin.

``misconduct.py`` injects each pattern in its simplest form (and a few variants of the person,
roster, business-day and purchaser rules). Misconduct rarely takes the simplest form: the fact
sits in another record, the contractor works for several purchasers, the time was sent in
another offset, the person moved between households, the record that makes it misconduct
arrives after the act. ``VARIANTS`` lists, per rule, forms that vary one of those, each as one
small builder ``build(injector, inject)`` that writes the misconduct (``inject=True``) or its
near-miss twin (``inject=False``: honest, as close to the pattern as the rule must tell apart)
through the ledger's commands, and returns the alert subject (a dedicated case, contract,
contractor, staff record, person or village).

A variant the rule cannot catch is listed with ``expected=False``: it is injected and scored,
but counted apart (``Injected.gaps``), never as a recall the rule owes; the README says why.

Every builder draws its random choices from the injector's seeded generator, in the fixed order
of ``VARIANTS``, so the same seed and size give the same labels.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING
from uuid import UUID

from domain.case import HomeVisit, IncomeItem, MeansTest
from domain.clock import Clock
from domain.commands.cases import (
    CloseCase,
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
from domain.commands.purchasing import (
    AmendContract,
    BanContractor,
    EvaluateContract,
    RenewContract,
    TerminateContract,
)
from domain.commands.supervision import DeclareInterests
from domain.household import HouseholdMember
from domain.provenance import Provenance, Role
from tools.synthetic.identities import person_name
from tools.synthetic.misconduct import _actor, _at, _Case, _next_month
from tools.synthetic.province import LINE, County, geography_of

if TYPE_CHECKING:
    from tools.synthetic.misconduct import _Injector

DAY = dt.timedelta(days=1)
UTC = dt.UTC
EAST = dt.timezone(dt.timedelta(hours=14))  # the easternmost offset: its date runs ahead
WEST = dt.timezone(-dt.timedelta(hours=12))  # the westernmost: its date lags behind

Build = Callable[["_Injector", bool], object]


@dataclass(frozen=True)
class Variant:
    """One form of a pattern: what it varies, its honest twin, and how to write either."""

    rule: str
    name: str
    twin: str
    build: Build
    also: tuple[str, ...] = ()  # rules the injected form necessarily breaks too (same subject)
    expected: bool = True  # False: a known gap of the rule (scored apart, see the README)


# Shared building blocks ------------------------------------------------------------------------


def _other_township(s: _Injector, c: County, township: str) -> str:
    """A village of the county outside ``township`` (the province's villages first)."""
    found = next((v for v in s.villages(c.code) if v[:9] != township), None)
    if found is not None:
        return found
    geography = geography_of(s.bulk)
    return next(
        v for t in geography.townships(c.code) if t != township for v in geography.villages(t)
    )


def _village(s: _Injector, c: County | None = None) -> str:
    return s.rng.choice(s.villages((c or s.home).code))


def _tekun(s: _Injector, c: County | None = None) -> _Case:
    c = c or s.home
    return s.beneficiary(c, _village(s, c), programme="tekun")


def _close(s: _Injector, c: County, case: _Case, reason: str = "voluntary") -> None:
    s.services.cases.close_case(
        CloseCase(case_id=case.case_id, reason_code=reason, provenance=c.approver)
    )


def _suspend(s: _Injector, c: County, case: _Case) -> None:
    s.services.cases.suspend_case(
        SuspendCase(case_id=case.case_id, reason="annual check pending", provenance=c.approver)
    )


def _resume(s: _Injector, c: County, case: _Case) -> None:
    s.services.cases.resume_case(
        ResumeCase(case_id=case.case_id, reason="check passed", provenance=c.approver)
    )


def _approved(
    s: _Injector,
    c: County,
    case: _Case,
    *,
    by: Provenance | None = None,
    day: dt.date | None = None,
) -> _Case:
    day = day or s.next_day()
    s.investigate(case, day, s.rng.randrange(300, 800, 10), by=by or c.officer)
    return s.decide(c, case, day, approve=True, amount=600, by=by or c.officer)


def _move_out(s: _Injector, c: County, case: _Case, on: dt.date) -> None:
    """The applicant moves out of the case's household (to head one elsewhere)."""
    s.clock.at(on, 10)
    s.services.cases.move_out_member(
        MoveOutMember(
            household_id=case.household_id,
            resident_id=case.applicant,
            on=on,
            provenance=c.clerk,
        )
    )


def _second_case(
    s: _Injector,
    case: _Case,
    other: County,
    programme: str,
    *,
    same_household: bool,
    joined: Sequence[HouseholdMember] = (),
) -> _Case:
    """A second application of the same person (in ``other``'s county), approved; in a
    household of their own (with ``joined``) unless ``same_household``."""
    day = s.next_day(step=20)
    received = day - dt.timedelta(days=6)
    if same_household:
        s.clock.at(received, 9)
        second = s.services.cases.receive_application(
            ReceiveApplication(
                household_id=case.household_id,
                applicant_id=case.applicant,
                programme=programme,
                window_division=case.village[:9],
                provenance=other.clerk,
            )
        )
        new = dataclasses.replace(case, case_id=second.id)
    else:
        _move_out(s, s.home, case, day - dt.timedelta(days=10))
        member = HouseholdMember(case.applicant, person_name(s.rng), "head")
        new = s.application(
            other, _village(s, other), received, programme=programme, members=[member, *joined]
        )
    return _approved(s, other, new, day=day)


# People in two cases -----------------------------------------------------------------------


def _two_cases(
    s: _Injector,
    inject: bool,
    *,
    first: str,
    second: str,
    across: bool,
    same_household: bool = False,
    suspend: bool = False,
    members: int = 1,
) -> object:
    """The person's first case (``first``) in the home county and a second one (``second``) in
    another county (``across``) or the home county. Injected: both active at once (with
    ``suspend``: the first suspended while the second is approved, then resumed). Twin: the
    first closed before the second is approved (with ``suspend``: left suspended)."""
    c = s.home
    other = s.variant_county("people")[0] if across else c
    joined = [
        HouseholdMember(s.person(c.code, dt.date(1990, 3, 1)), person_name(s.rng), "child")
        for _ in range(members - 1)
    ]
    case = s.beneficiary(c, _village(s), programme=first)
    if suspend:
        _suspend(s, c, case)
    elif not inject:
        _close(s, c, case, "moved_away" if across else "voluntary")
    _second_case(s, case, other, second, same_household=same_household, joined=joined)
    if suspend and inject:
        _resume(s, c, case)
    return s.services.cases.person_id(case.applicant)


# Records a beneficiary could not have received -----------------------------------------------


def _death(s: _Injector, inject: bool, *, form: str) -> object:
    """A death recorded late, after records dated after it (twin: the records end on the day
    of the death, or within the month it began)."""
    c = s.home
    if form in ("payment_next_month", "closed_then_death", "three_months"):
        case = s.beneficiary(c, _village(s))
        assert case.start is not None
        second = _next_month(case.start)
        if form == "payment_next_month":
            # died on the last day of a month; injected: the next month paid
            died = second - DAY
            s.pay(c, case, case.start, second if inject else case.start)
        elif form == "three_months":
            died = second + dt.timedelta(days=20)
            last = _next_month(_next_month(_next_month(second)))
            s.pay(c, case, case.start, last if inject else second)
        else:
            died = second + dt.timedelta(days=3)
            s.pay(c, case, case.start, _next_month(second) if inject else second)
            s.clock.at(s.today - dt.timedelta(days=30), 10)
            _close(s, c, case)
        s.clock.at(s.today - DAY, 11)
        s.services.cases.record_death(
            RecordDeath(resident_id=case.applicant, on=died, provenance=c.officer)
        )
        return case.case_id
    # Services, by a contractor's carer under its contract: dated by the business day.
    case = _tekun(s)
    died = s.today - dt.timedelta(days=25)
    if form == "contract_service_east":
        start = (
            _at(died + DAY, 0, 10).astimezone(EAST) if inject else _at(died, 23, 0).astimezone(UTC)
        )
        length = dt.timedelta(minutes=40)
    else:  # "across_midnight": dated by its start
        start = (
            _at(died + DAY, 0, 10).astimezone(dt.timezone(-dt.timedelta(hours=5)))
            if inject
            else _at(died, 23, 30).astimezone(dt.timezone(-dt.timedelta(hours=5)))
        )
        length = dt.timedelta(hours=1)
    s.serve(case, start, start + length, by=s.county_worker(), contract_id=c.contract_id)
    s.clock.at(s.today - DAY, 11)
    s.services.cases.record_death(
        RecordDeath(resident_id=case.applicant, on=died, provenance=c.officer)
    )
    return case.case_id


def _closure(s: _Injector, inject: bool, *, form: str) -> object:
    """A record dated after the closure, entered by a process whose clock runs ahead (the only
    way through the commands); twin: the same process, a record dated before the closure."""
    c = s.home
    wall = Clock().now()
    if form.startswith("payment"):
        case = s.beneficiary(c, _village(s))
        ahead = 75 if form == "payment_two_months" else 40
        this_month = wall.astimezone(dt.timezone(dt.timedelta(hours=8))).date().replace(day=1)
        period = this_month
        if inject:
            period = _next_month(this_month)
            if form == "payment_two_months":
                period = _next_month(period)
        s.clock.set(wall + dt.timedelta(days=ahead))
        s.services.cases.record_payment(
            RecordPayment(
                case_id=case.case_id,
                period=f"{period:%Y-%m}",
                amount=case.amount or Decimal(100),
                provenance=c.officer,
            )
        )
    else:
        case = _tekun(s)
        zone = {"service_west": WEST, "service_east": EAST}.get(form, UTC)
        start = (wall + dt.timedelta(hours=3)) if inject else (wall - dt.timedelta(hours=3))
        by, contract = (
            (s.county_worker(), c.contract_id) if form == "contract_service" else (_bureau(s), None)
        )
        s.clock.set(wall + dt.timedelta(days=2))
        s.services.cases.record_service(
            RecordService(
                case_id=case.case_id,
                work_item="care_and_nursing",
                contract_id=contract,
                start=start.astimezone(zone),
                end=(start + dt.timedelta(hours=1)).astimezone(zone),
                place=case.village,
                provenance=by,
            )
        )
    s.clock.set(Clock().now())
    _close(s, c, case, "moved_away" if form == "service_west" else "voluntary")
    return case.case_id


def _suspension(s: _Injector, inject: bool, *, form: str) -> object:
    """A service dated inside a suspension, recorded after the resumption (suspensions are
    dated by their recording: a moment of real time); twin: a service starting at the
    resumption, or ended before the suspension."""
    c = s.home
    case = _tekun(s)
    carer = _bureau(s)
    before = Clock().now() - dt.timedelta(seconds=5)
    if not inject and form == "before":
        s.clock.set(Clock().now())
        s.services.cases.record_service(
            RecordService(
                case_id=case.case_id,
                work_item="care_and_nursing",
                contract_id=None,
                start=before - dt.timedelta(minutes=30),
                end=before,
                place=case.village,
                provenance=carer,
            )
        )
    rounds = 2 if form == "second_suspension" else 1
    spans = []
    for _ in range(rounds):
        s.clock.set(Clock().now())
        suspended = s.services.cases.suspend_case(
            SuspendCase(case_id=case.case_id, reason="annual check", provenance=c.approver)
        ).pending_events[-1]
        time.sleep(0.002)
        resumed = s.services.cases.resume_case(
            ResumeCase(case_id=case.case_id, reason="check passed", provenance=c.approver)
        ).pending_events[-1]
        spans.append((suspended.timestamp, resumed.timestamp))
        time.sleep(0.002)
    if inject or form != "before":
        low, high = spans[-1]
        start = low + (high - low) / 2 if inject else high
        zone = {"west": WEST, "east": EAST}.get(form, UTC)
        by, contract = (s.county_worker(), c.contract_id) if form == "contract" else (carer, None)
        s.clock.set(Clock().now())
        s.services.cases.record_service(
            RecordService(
                case_id=case.case_id,
                work_item="care_and_nursing",
                contract_id=contract,
                start=start.astimezone(zone),
                end=max(Clock().now() - dt.timedelta(milliseconds=1), high).astimezone(zone),
                place=case.village,
                provenance=by,
            )
        )
    return case.case_id


def _household(s: _Injector, inject: bool, *, form: str) -> object:
    """A household that lost members after its means test, paid on at the old amount."""
    c = s.home
    members = [
        HouseholdMember(s.person(c.code, dt.date(1996, 2, 1)), person_name(s.rng), "child")
        for _ in range(2)
    ]
    case = s.beneficiary(
        c,
        _village(s),
        programme="tekun" if form == "tekun" else "dibao",
        members=[s.adult(c.code), *members],
    )
    assert case.start is not None
    second = _next_month(case.start)
    last = _next_month(_next_month(_next_month(second)))
    left = case.start + dt.timedelta(days=9)

    def move(member: HouseholdMember, on: dt.date, recorded: dt.date) -> None:
        s.clock.at(recorded, 10)
        s.services.cases.move_out_member(
            MoveOutMember(
                household_id=case.household_id,
                resident_id=member.resident_id,
                on=on,
                provenance=c.clerk,
            )
        )

    if form in ("late_record", "late_death"):
        # the move or death (in the first month) is recorded only after the later months were
        # paid; twin: only the month within the grace was paid
        s.pay(c, case, case.start, last if inject else second)
        if form == "late_record":
            move(members[0], left, s.today - dt.timedelta(days=3))
        else:
            s.clock.at(s.today - dt.timedelta(days=3), 10)
            s.services.cases.record_death(
                RecordDeath(resident_id=members[1].resident_id, on=left, provenance=c.clerk)
            )
        return case.case_id
    if form == "two_left":
        s.pay(c, case, case.start, case.start)
        move(members[0], left, left + DAY)
        s.clock.at(left + dt.timedelta(days=2), 10)
        s.services.cases.record_death(
            RecordDeath(resident_id=members[1].resident_id, on=left + DAY, provenance=c.clerk)
        )
    elif form in ("tekun", "empty_review"):
        s.pay(c, case, case.start, case.start)
        s.clock.at(left + DAY, 10)
        s.services.cases.record_death(
            RecordDeath(resident_id=members[1].resident_id, on=left, provenance=c.clerk)
        )

    if not inject or form == "empty_review":
        s.clock.at(second + dt.timedelta(days=10), 10)
        s.services.cases.review_case(
            ReviewCase(
                case_id=case.case_id,
                outcome="continue",
                notes="both changes checked",
                provenance=c.officer,
            )
        )
    if form == "empty_review" and not inject:
        s.pay(c, case, second, second)
        s.clock.at(_next_month(second) + dt.timedelta(days=2), 10)
        _close(s, c, case, "income_above_line")  # twin: the review ended the payments
        return case.case_id
    s.pay(c, case, second, last)
    return case.case_id


def _household_order(s: _Injector, inject: bool) -> object:
    """Injected: a member moved out after the means test's visit. Twin: the member moved out
    before the visit, which the means test already counted."""
    c = s.home
    member = HouseholdMember(s.person(c.code, dt.date(1997, 2, 1)), person_name(s.rng), "child")
    day = s.next_day()
    case = s.application(
        c, _village(s), day - dt.timedelta(days=6), members=[s.adult(c.code), member]
    )
    moved = day + DAY if inject else day - DAY
    s.clock.at(moved + DAY, 10)
    s.services.cases.move_out_member(
        MoveOutMember(
            household_id=case.household_id,
            resident_id=member.resident_id,
            on=moved,
            provenance=c.clerk,
        )
    )
    s.investigate(case, day, 500, by=c.officer, size=2 if inject else 1)
    approved = s.decide(c, case, day, approve=True, amount=700, by=c.officer)
    assert approved.start is not None
    s.pay(c, approved, approved.start, _next_month(_next_month(_next_month(approved.start))))
    return case.case_id


# Work outside the contract ---------------------------------------------------------------------

_ALL_ITEMS = ["care_and_nursing", "psychological_counselling", "household_investigation"]


def _contract_work(s: _Injector, inject: bool, *, rule: str, form: str) -> object:
    """Work under a contract, then a change recorded later that takes effect from an earlier
    day ``eff`` (an amendment, a termination, a ban). Injected: the work is dated on or after
    ``eff``; twin: before it. ``form`` varies the record carrying the work (a service, a household
    investigation, a recommendation), the offset it was sent in (00:30 Beijing sent in UTC;
    twin 23:30 the day before sent in UTC+14:00), and one rule-specific form."""
    c = s.home
    contractor_id, contract_id, by, recipient = s.contracted_work(
        f"变体服务社{rule[:4]}{form[:4]}", list(_ALL_ITEMS)
    )
    eff = s.today - dt.timedelta(days=30)
    if form == "recommendation" and not inject:
        # a recommendation is dated when it is recorded (now): its twin is recorded the day
        # before the change takes effect
        eff = s.today + DAY
    work_contract = contract_id
    if form == "second_contract":
        # the contractor's second contract, of another purchaser's area: a ban covers it too
        work_contract = s.contract(
            contractor_id,
            c.code,
            c,
            items=list(_ALL_ITEMS),
            awarded=s.today - dt.timedelta(days=80),
        )
        by = s.worker(work_contract, c.code, by.actor.organisation, c)
    work_day = eff + dt.timedelta(days=5) if inject else eff - dt.timedelta(days=5)
    if form == "start_later":  # the term now begins at eff: work before it is outside
        work_day = eff - dt.timedelta(days=5) if inject else eff + dt.timedelta(days=5)
    if form == "restored":  # cut at eff, restored at eff + 10: work in the gap
        work_day = eff + dt.timedelta(days=5) if inject else eff + dt.timedelta(days=12)
    item = "care_and_nursing"
    if form == "offset":
        start = (
            _at(eff, 0, 30).astimezone(UTC) if inject else _at(eff - DAY, 23, 30).astimezone(EAST)
        )
        s.serve(
            recipient, start, start + dt.timedelta(minutes=20), by=by, contract_id=work_contract
        )
        subject_case = recipient
    elif form in ("investigation", "recommendation"):
        item = "household_investigation"
        subject_case = s.application(c, _village(s), eff - dt.timedelta(days=12))
        visit = work_day if form == "investigation" else eff - dt.timedelta(days=8)
        s.investigate(
            subject_case, visit, s.rng.randrange(300, 800, 10), by=by, contract_id=work_contract
        )
        if form == "recommendation":
            s.clock.at(work_day, 15)
            s.services.cases.recommend_case(
                RecommendCase(
                    case_id=subject_case.case_id,
                    recommendation="approve",
                    reasons="per-head income below the line",
                    monthly_amount=Decimal(500),
                    contract_id=work_contract,
                    provenance=by,
                )
            )
    else:
        place = None
        if form == "service_place":  # the service's own place, not the household's village
            work_day = eff + dt.timedelta(days=5)
            township = recipient.village[:9]
            place = _other_township(s, c, township) if inject else None
        s.serve(
            recipient,
            _at(work_day, 9),
            _at(work_day, 11),
            by=by,
            contract_id=work_contract,
            place=place,
        )
        subject_case = recipient
    s.clock.at(s.today - dt.timedelta(days=5), 10)
    purchasing = s.services.purchasing
    if rule == "work_outside_scope":
        purchasing.amend_contract(
            AmendContract(
                contract_id=contract_id,
                reason="work bought elsewhere",
                effective_from=eff,
                work_items=tuple(i for i in _ALL_ITEMS if i != item),
                provenance=c.officer,
            )
        )
        if form == "restored":
            s.clock.at(s.today - dt.timedelta(days=4), 10)
            purchasing.amend_contract(
                AmendContract(
                    contract_id=contract_id,
                    reason="work bought back",
                    effective_from=eff + dt.timedelta(days=10),
                    work_items=tuple(_ALL_ITEMS),
                    provenance=c.officer,
                )
            )
    elif rule == "work_outside_area":
        village = subject_case.village
        geography = geography_of(s.bulk)
        if form == "service_place":  # narrowed to the household's own township
            kept = village[:9]
        else:
            kept = next(t for t in geography.townships(c.code) if not village.startswith(t))
        purchasing.amend_contract(
            AmendContract(
                contract_id=contract_id,
                reason="area split between providers",
                effective_from=eff,
                service_area=(kept,),
                provenance=c.officer,
            )
        )
    elif rule == "work_outside_term":
        purchasing.amend_contract(
            AmendContract(
                contract_id=contract_id,
                reason="term moved",
                effective_from=eff - dt.timedelta(days=60 if form == "start_later" else 20),
                start=eff if form == "start_later" else None,
                end=None if form == "start_later" else eff - DAY,
                provenance=c.officer,
            )
        )
    elif rule == "work_after_termination":
        purchasing.terminate_contract(
            TerminateContract(
                contract_id=contract_id,
                effective_at=_at(eff, 0),
                basis="contract",
                reason="falsified records (弄虚作假)",
                provenance=c.officer,
            )
        )
    else:  # work_by_banned_contractor
        ban_start, ban_end = eff, s.today + dt.timedelta(days=365)
        if form == "second_contract" and not inject:
            # twin: a ban that ended the day before the work
            ban_start, ban_end = work_day - dt.timedelta(days=40), work_day - DAY
        purchasing.ban_contractor(
            BanContractor(
                contractor_id=contractor_id,
                start=ban_start,
                end=ban_end,
                reason="falsified records in another county (弄虚作假)",
                deciding_unit=c.code,
                provenance=s.supervisor(c.code),
            )
        )
    return work_contract


def _terminated_sibling(s: _Injector, inject: bool) -> object:
    """A contractor with two contracts; one is terminated (recorded later, effective earlier).
    Injected: work after the termination under the terminated one; twin: the same work under
    the contract that goes on."""
    c = s.home
    contractor_id, contract_id, by, recipient = s.contracted_work("双约服务社", list(_ALL_ITEMS))
    sibling = s.contract(
        contractor_id, c.code, c, items=list(_ALL_ITEMS), awarded=s.today - dt.timedelta(days=85)
    )
    other_by = s.worker(sibling, c.code, by.actor.organisation, c)
    eff = s.today - dt.timedelta(days=30)
    day = eff + dt.timedelta(days=6)
    worked, who = (contract_id, by) if inject else (sibling, other_by)
    s.serve(recipient, _at(day, 14), _at(day, 16), by=who, contract_id=worked)
    s.clock.at(s.today - dt.timedelta(days=5), 10)
    s.services.purchasing.terminate_contract(
        TerminateContract(
            contract_id=contract_id,
            effective_at=_at(eff, 0),
            basis="contract",
            reason="falsified records (弄虚作假)",
            provenance=c.officer,
        )
    )
    return worked


# Impossible days -------------------------------------------------------------------------------


def _bureau(s: _Injector, number: str | None = None) -> Provenance:
    c = s.home
    staff = s.government_staff(c.code, c.code, c, "护理员", number)
    return _actor(staff, Role.HANDLING_STAFF, c.code, "care")


def _services(
    s: _Injector, spans: Sequence[tuple[Provenance, dt.datetime, dt.datetime, UUID | None]]
) -> None:
    """Each span a service for a tekun beneficiary of its own."""
    for by, start, end, contract in spans:
        s.serve(_tekun(s), start, end, by=by, contract_id=contract)


def _pair_of_records(s: _Injector, inject: bool) -> tuple[Provenance, Provenance, str]:
    """A bureau record and a contractor roster record: one person (injected) or two."""
    c = s.home
    first = s.person(c.code, dt.date(1981, 4, 1))
    second = first if inject else s.person(c.code, dt.date(1981, 5, 1))
    bureau = _bureau(s, first)
    roster = s.worker(c.contract_id, c.code, c.worker.actor.organisation, c, second)
    return bureau, roster, min(bureau.actor.id, roster.actor.id)


def _overlap(s: _Injector, inject: bool, *, form: str) -> object:
    c = s.home
    day = s.today - dt.timedelta(days=52)
    if form == "bureau":  # twin: back to back
        by = _bureau(s)
        _services(
            s,
            [
                (by, _at(day, 9), _at(day, 11), None),
                (by, _at(day, 10 if inject else 11), _at(day, 12 if inject else 13), None),
            ],
        )
        return by.actor.id
    if form == "visit_in_service":  # a home visit during the visitor's own service
        by = _bureau(s)
        _services(s, [(by, _at(day, 9), _at(day, 11), None)])
        case = s.application(c, _village(s), day - dt.timedelta(days=4))
        s.investigate(case, day, 500, by=by, hour=10 if inject else 12)
        return by.actor.id
    if form == "unnamed_person":  # the same person's two records, neither naming the person
        bureau, roster = _bureau(s), s.county_worker()
        subject = min(bureau.actor.id, roster.actor.id)
    else:
        bureau, roster, subject = _pair_of_records(s, inject)
    _services(
        s,
        [
            (bureau, _at(day, 13), _at(day, 15), None),
            (roster, _at(day, 14), _at(day, 16), c.contract_id),
        ],
    )
    return subject


def _hours(s: _Injector, inject: bool, *, form: str) -> object:
    """More than 24 service hours on one business day (which necessarily overlap); twin:
    exactly 24, back to back."""
    c = s.home
    day = s.today - dt.timedelta(days=47)
    cut = 11 if inject else 12  # injected: the second starts an hour before the first ends
    if form == "across_midnight":  # the first began the day before: its part on the day counts
        by = _bureau(s)
        _services(
            s,
            [
                (by, _at(day - DAY, 23), _at(day, 11), None),
                (by, _at(day, 10 if inject else 11), _at(day + DAY, 0), None),
            ],
        )
        return by.actor.id
    if form == "bureau_and_roster":
        bureau, roster, subject = _pair_of_records(s, inject)
        _services(
            s,
            [
                (bureau, _at(day, 0), _at(day, 12), None),
                (roster, _at(day, cut), _at(day + DAY, 0), c.contract_id),
            ],
        )
        return subject
    spans: list[tuple[Provenance, dt.datetime, dt.datetime, UUID | None]]
    if form in ("utc", "east"):
        by = s.county_worker()
        zone = UTC if form == "utc" else EAST
        spans = [
            (by, _at(day, 0).astimezone(zone), _at(day, 12).astimezone(zone), c.contract_id),
            (by, _at(day, cut).astimezone(zone), _at(day + DAY, 0).astimezone(zone), c.contract_id),
        ]
    else:  # bureau
        by = _bureau(s)
        spans = [
            (by, _at(day, 0), _at(day, 12), None),
            (by, _at(day, cut), _at(day + DAY, 0), None),
        ]
    _services(s, spans)
    return by.actor.id


def _visits(s: _Injector, inject: bool, *, form: str) -> object:
    """More home visits on one day than the ceiling (8); twin: eight."""
    c = s.home
    day = s.today - dt.timedelta(days=37)
    count = 9 if inject else 8
    if form == "two_rosters":
        other_id, other_code = s.contractor(c.code, "同行调查事务所", c)
        other = s.contract(
            other_id,
            c.code,
            c,
            items=["household_investigation"],
            awarded=s.today - dt.timedelta(days=150),
        )
        first = s.person(c.code, dt.date(1983, 9, 1))
        second = first if inject else s.person(c.code, dt.date(1983, 10, 1))
        a = s.worker(c.contract_id, c.code, c.worker.actor.organisation, c, first)
        b = s.worker(other, c.code, other_code, c, second)
        plan: Sequence[tuple[Provenance, UUID | None]] = [(a, c.contract_id)] * 5 + [(b, other)] * 4
        subject = a.actor.id  # a person's alert names the record with most of the visits
        count = 9
    elif form == "contract":
        by = s.county_worker()
        plan = [(by, c.contract_id)] * count
        subject = by.actor.id
    elif form == "revisits":  # three households visited three times each (twin: 3, 3, 2)
        by = _bureau(s)
        cases = [s.application(c, _village(s), day - dt.timedelta(days=4)) for _ in range(3)]
        for n in range(count):
            s.investigate(cases[n % 3], day, 500 + n, by=by, hour=8 + n)
        return by.actor.id
    else:  # "midnight": the first visit at 00:30 Beijing sent in UTC (the day before in UTC)
        staff = s.government_staff(c.code, c.code, c, "调查员")
        by = _actor(staff, Role.HANDLING_STAFF, c.code, "household investigation")
        plan = [(by, None)] * (count if form == "west" else 9)
        subject = str(staff)
    for n, (who, contract) in enumerate(plan):
        case = s.application(c, _village(s), day - dt.timedelta(days=4))
        if form in ("midnight", "west"):
            moment = _at(day, 0, 30).astimezone(UTC) if n == 0 else _at(day, 8 + n)
            if n == 0 and not inject:
                moment = _at(day - DAY, 23, 30).astimezone(EAST)
            if form == "west":  # every visit sent from UTC-12, its own date the day before
                moment = _at(day, 8 + n).astimezone(WEST)
            s.clock.set(moment + dt.timedelta(hours=20))
            s.services.cases.investigate_case(
                InvestigateCase(
                    case_id=case.case_id,
                    means_test=MeansTest(
                        (IncomeItem("wages", Decimal(500)),),
                        (),
                        1,
                        HomeVisit(moment, case.village, who.actor.id),
                    ),
                    contract_id=None,
                    provenance=who,
                )
            )
            continue
        if n >= count:
            break
        s.investigate(case, day, 500, by=who, hour=8 + n, contract_id=contract)
    return subject


# The place of a home visit ---------------------------------------------------------------------


def _elsewhere(s: _Injector, inject: bool, *, form: str) -> object:
    c = s.home
    geography = geography_of(s.bulk)
    villages = s.villages(c.code)
    registered = s.rng.choice(villages)
    township = geography.villages(registered[:9])
    neighbour = next((v for v in township if v != registered), registered)
    residence = registered
    day = s.next_day()
    by, contract = c.officer, None
    if form == "lives_elsewhere":  # registered in one village, living in another
        residence = neighbour
        other = next((v for v in township if v not in (registered, neighbour)), None) or (
            _other_township(s, c, registered[:9])
        )
        place = other if inject else residence
    elif form == "other_county":
        place = _village(s, s.approval) if inject else registered
    elif form == "neighbour":
        place = neighbour if inject else registered
    else:  # another township, by the officer or the contractor's investigator under contract
        if form == "contract":
            by, contract = c.worker, c.contract_id
        place = _other_township(s, c, registered[:9]) if inject else registered
    head = s.adult(c.code)
    s.clock.at(day - dt.timedelta(days=6), 9)
    home = s.services.cases.register_household(
        RegisterHousehold(
            registered_division=registered,
            residence_division=residence,
            members=(head,),
            provenance=c.clerk,
        )
    )
    case = s.services.cases.receive_application(
        ReceiveApplication(
            household_id=home.id,
            applicant_id=head.resident_id,
            programme="dibao",
            window_division=registered[:9],
            provenance=c.clerk,
        )
    )
    s.investigate(
        _Case(case.id, home.id, head.resident_id, registered),
        day,
        500,
        by=by,
        contract_id=contract,
        place=place,
    )
    return case.id


# Conflict of interest --------------------------------------------------------------------------


def _declare(s: _Injector, staff: UUID, number: str, relatives: Sequence[str]) -> None:
    s.services.supervision.declare_interests(
        DeclareInterests(
            staff_id=staff,
            resident_id=number,
            relatives=tuple((r, "sibling") for r in relatives),
            provenance=s.home.officer,
        )
    )


def _conflict(s: _Injector, inject: bool, *, form: str) -> object:
    c = s.home
    stranger = s.person(c.code, dt.date(1967, 1, 1))
    if form == "self":  # the approver is the applicant (twin: someone else)
        applicant = s.adult(c.code)
        staff = s.government_staff(
            c.code,
            c.code,
            c,
            "审批员",
            applicant.resident_id if inject else stranger,
            kind="approver",
        )
        approver = _actor(staff, Role.APPROVER, c.code, "county decision")
        s.beneficiary(c, _village(s), members=[applicant], approver=approver)
        return staff
    if form == "rejection":  # rejecting a declared relative's case is acting on it too
        sister = s.adult(c.code)
        staff = s.government_staff(c.code, c.code, c, "审批员", kind="approver")
        _declare(
            s,
            staff,
            s.person(c.code, dt.date(1971, 1, 1)),
            [sister.resident_id if inject else stranger],
        )
        day = s.next_day()
        case = s.application(c, _village(s), day - dt.timedelta(days=6), members=[sister])
        s.investigate(case, day, 1500, by=c.officer)
        s.clock.at(day + dt.timedelta(days=2), 15)
        s.services.cases.recommend_case(
            RecommendCase(
                case_id=case.case_id,
                recommendation="reject",
                reasons="income above the line",
                monthly_amount=None,
                contract_id=None,
                provenance=c.officer,
            )
        )
        s.clock.at(day + dt.timedelta(days=12), 10)
        s.services.cases.reject_case(
            RejectCase(
                case_id=case.case_id,
                reasons="income above the line",
                provenance=_actor(staff, Role.APPROVER, c.code, "county decision"),
            )
        )
        return staff
    if form == "declared_late":  # the declaration arrives after the decision
        sister = s.adult(c.code)
        staff = s.government_staff(c.code, c.code, c, "审批员", kind="approver")
        approver = _actor(staff, Role.APPROVER, c.code, "county decision")
        s.beneficiary(c, _village(s), members=[sister], approver=approver)
        _declare(
            s,
            staff,
            s.person(c.code, dt.date(1970, 1, 1)),
            [sister.resident_id if inject else stranger],
        )
        return staff
    if form == "contract_investigator":  # a contractor's investigator, under its contract
        number = s.person(c.code, dt.date(1979, 1, 1))
        worker = s.worker(c.contract_id, c.code, c.worker.actor.organisation, c, number)
        relative = s.adult(c.code)
        _declare(s, UUID(worker.actor.id), number, [relative.resident_id if inject else stranger])
        day = s.next_day()
        case = s.application(c, _village(s), day - dt.timedelta(days=6), members=[relative])
        s.investigate(case, day, 450, by=worker, contract_id=c.contract_id)
        s.decide(c, case, day, approve=True, amount=650, by=worker, contract_id=c.contract_id)
        return worker.actor.id
    # "relative_in_household": a declared relative lives in the applicant's household
    number = s.person(c.code, dt.date(1977, 1, 1))
    staff = s.government_staff(c.code, c.code, c, "经办员", number)
    officer = _actor(staff, Role.HANDLING_STAFF, c.code, "household investigation")
    relative = HouseholdMember(s.person(c.code, dt.date(1999, 1, 1)), person_name(s.rng), "child")
    _declare(s, staff, number, [relative.resident_id if inject else stranger])
    day = s.next_day()
    case = s.application(
        c, _village(s), day - dt.timedelta(days=6), members=[s.adult(c.code), relative]
    )
    s.investigate(case, day, 450, by=officer, size=2)
    s.decide(c, case, day, approve=True, amount=1100, by=officer)
    return staff


# Contract money --------------------------------------------------------------------------------


def _raised(s: _Injector, inject: bool, *, form: str) -> object:
    c = s.home
    contractor_id, _ = s.contractor(c.code, "评估服务中心", c)
    awarded = s.today - dt.timedelta(days=300)
    contract_id = s.contract(contractor_id, c.code, c, items=["care_and_nursing"], awarded=awarded)
    purchasing = s.services.purchasing
    periods = iter(range(3))

    def evaluate(score: str, ago: int) -> None:
        n = next(periods)
        s.clock.at(s.today - dt.timedelta(days=ago), 10)
        purchasing.evaluate_contract(
            EvaluateContract(
                contract_id=contract_id,
                period_start=awarded + dt.timedelta(days=60 * n),
                period_end=awarded + dt.timedelta(days=60 * n + 59),
                score=Decimal(score),
                provenance=s.supervisor(c.code),
            )
        )

    def amend(value: str, ago: int, **terms: object) -> None:
        s.clock.at(s.today - dt.timedelta(days=ago), 10)
        purchasing.amend_contract(
            AmendContract(
                contract_id=contract_id,
                reason="caseload changed",
                effective_from=s.today - dt.timedelta(days=ago),
                value=Decimal(value),
                provenance=c.officer,
                **terms,  # type: ignore[arg-type]
            )
        )

    if form == "amend":
        evaluate("48" if inject else "75", 40)
        amend("420000", 20)
    elif form == "renewal":
        evaluate("45", 60)
        if not inject:
            evaluate("82", 40)  # a good evaluation after the poor one, before the renewal
        s.clock.at(s.today - dt.timedelta(days=20), 10)
        purchasing.renew_contract(
            RenewContract(
                contract_id=contract_id,
                new_end=awarded + dt.timedelta(days=1100),
                added_value=Decimal("150000"),
                reason="renewed for another year",
                effective_from=s.today - dt.timedelta(days=20),
                provenance=c.officer,
            )
        )
    elif form == "boundary":  # 59 is poor, 60 is not
        evaluate("59" if inject else "60", 40)
        amend("400000", 20)
    elif form == "order":  # a good evaluation, then a poor one, then the raise
        if inject:
            evaluate("85", 100)
            evaluate("50", 60)
            amend("420000", 20)
        else:  # the raise came before the poor evaluation
            amend("420000", 60)
            evaluate("50", 40)
    else:  # "with_scope": raised together with a change of scope; twin: lowered
        evaluate("40", 50)
        if inject:
            amend("450000", 20, work_items=("care_and_nursing", "psychological_counselling"))
        else:
            amend("250000", 20, work_items=("care_and_nursing", "psychological_counselling"))
    return contract_id


def _split(s: _Injector, inject: bool, *, form: str) -> object:
    """Awards to one contractor just under a tender limit within the window. Twins: the same
    contractor and shape with one award out of the band, over the limit, of another item, or
    with terms that never overlap; or three contractors."""
    c = s.home
    geography = geography_of(s.bulk)
    sibling = next(k for k in geography.counties if k[:4] == c.code[:4] and k != c.code)
    care, survey = "care_and_nursing", "household_investigation"
    plans: dict[str, tuple[list[tuple[int, str, str, str, int]], ...]] = {
        # (days ago, value, purchaser, item, term in days)
        "four_awards": (
            [
                (85, "950000", c.code, care, 500),
                (60, "960000", c.code, care, 500),
                (35, "970000", c.code, care, 500),
                (10, "940000", c.code, care, 500),
            ],
            [
                (70, "960000", c.code, care, 500),
                (45, "850000", c.code, care, 500),
                (20, "930000", c.code, care, 500),
            ],
        ),
        "just_under": (
            [
                (75, "999999", c.code, care, 500),
                (50, "999999", c.code, care, 500),
                (25, "999999", c.code, care, 500),
            ],
            [
                (75, "1000000", c.code, care, 500),
                (50, "999999", c.code, care, 500),
                (25, "999999", c.code, care, 500),
            ],
        ),
        "two_counties": (
            [
                (70, "960000", c.code, care, 500),
                (45, "955000", sibling, care, 500),
                (20, "940000", c.code[:4], care, 500),
            ],
            [
                (70, "960000", c.code, care, 500),
                (45, "955000", sibling, care, 500),
                (20, "940000", c.code[:4], survey, 500),
            ],
        ),
        "overlapping_terms": (
            [
                (80, "960000", c.code, care, 400),
                (50, "950000", c.code, care, 400),
                (20, "945000", c.code, care, 400),
            ],
            [
                (300, "960000", c.code, care, 60),
                (200, "950000", c.code, care, 60),
                (100, "945000", c.code, care, 60),
            ],
        ),
    }
    if form == "three_contractors":  # twin: the same awards to three contractors
        plan = [
            (65, "960000", "44", survey, 500),
            (40, "950000", c.code[:4], survey, 500),
            (15, "945000", c.code, survey, 500),
        ]
        first: UUID | None = None
        contractor_id, _ = s.contractor(c.code, "调查拆分中心", c)
        for ago, value, purchaser, item, term in plan:
            if not inject and first is not None:
                contractor_id, _ = s.contractor(c.code, "调查拆分中心", c)
            first = first or contractor_id
            _award(s, contractor_id, purchaser, item, ago, value, term)
        return first
    contractor_id, _ = s.contractor(c.code, "拆分服务中心", c)
    for ago, value, purchaser, item, term in plans[form][0 if inject else 1]:
        _award(s, contractor_id, purchaser, item, ago, value, term)
    return contractor_id


def _award(
    s: _Injector, contractor_id: UUID, purchaser: str, item: str, ago: int, value: str, term: int
) -> None:
    awarded = s.today - dt.timedelta(days=ago)
    s.contract(
        contractor_id,
        purchaser,
        s.home,
        items=[item],
        awarded=awarded,
        value=Decimal(value),
        area=[purchaser if len(purchaser) == 6 else s.home.code],
        end=awarded + dt.timedelta(days=term),
    )


# Statistical rules -----------------------------------------------------------------------------


def _approval(s: _Injector, inject: bool, *, form: str) -> object:
    """A contractor investigating in a county of its own (one per form, with the honest
    background of ``approval_county``) whose households are approved far more often than the
    county's others; twin: a contractor of the same sample shape at the county's own rate."""
    c, shape = s.variant_county(form)
    villages = s.villages(c.code, shape)
    size, high, honest = {
        "minimum_sample": (20, 20, 12),
        "home_contractor": (30, 28, 18),
        "high_not_extreme": (40, 38, 28),
        "two_workers": (30, 29, 18),
        "near_minimum": (26, 25, 15),
    }[form]
    code_county = s.home.code if form == "home_contractor" else c.code
    contractor_id, code = s.contractor(code_county, "家计调查事务所", c)
    contract_id = s.contract(
        contractor_id,
        c.code,
        c,
        items=["household_investigation"],
        awarded=s.today - dt.timedelta(days=1750),
        end=s.today + dt.timedelta(days=365),
    )
    workers = [s.worker(contract_id, c.code, code, c)]
    if form == "two_workers":
        workers.append(s.worker(contract_id, c.code, code, c))
    approved = set(s.rng.sample(range(size), high if inject else honest))
    for n in range(size):
        day = s.next_day()
        case = s.application(c, s.rng.choice(villages), day - dt.timedelta(days=6))
        by = workers[n % len(workers)]
        per_head = s.rng.randrange(300, 990, 5) if n in approved else s.rng.randrange(1000, 2000, 5)
        s.investigate(case, day, per_head, by=by, contract_id=contract_id)
        s.decide(
            c,
            case,
            day,
            approve=n in approved,
            amount=max(100, int(LINE) - per_head),
            by=by,
            contract_id=contract_id,
        )
    return contractor_id


def _means_tests(
    s: _Injector,
    inject: bool,
    c: County,
    plan: Sequence[tuple[str, Provenance, UUID | None]],
    *,
    sizes: Sequence[int] = (1,),
    items: int = 1,
) -> None:
    """Means tests (no decision: the approval counts stay as they are) of new households in
    the (village, investigator, contract) of ``plan``: 21 of 24 just under the line when
    injected, 12 of 24 when honest."""
    under = [True] * (21 if inject else 12) + [False] * (3 if inject else 12)
    s.rng.shuffle(under)
    band = int(LINE) // 10
    for n, is_under in enumerate(under):
        village, by, contract = plan[n % len(plan)]
        size = sizes[n % len(sizes)]
        members = [s.adult(c.code)] + [
            HouseholdMember(s.person(c.code, dt.date(1991, 6, 1)), person_name(s.rng), "child")
            for _ in range(size - 1)
        ]
        day = s.next_day()
        case = s.application(c, village, day - dt.timedelta(days=6), members=members)
        per_head = (
            s.rng.randrange(int(LINE) - band + 5, int(LINE), 5)
            if is_under
            else s.rng.randrange(int(LINE), int(LINE) + band, 5)
        )
        total = per_head * size
        parts = [total // items] * (items - 1)
        incomes = tuple(
            IncomeItem(kind, Decimal(amount))
            for kind, amount in zip(
                ("wages", "pension", "other"), [*parts, total - sum(parts)], strict=False
            )
        )
        s.clock.at(day, 18)
        s.services.cases.investigate_case(
            InvestigateCase(
                case_id=case.case_id,
                means_test=MeansTest(
                    incomes, (), size, HomeVisit(_at(day, 10), village, by.actor.id)
                ),
                contract_id=contract,
                provenance=by,
            )
        )


def _investigators(s: _Injector, c: County, n: int) -> list[Provenance]:
    return [
        _actor(
            s.government_staff(c.code, c.code, c, "调查员"),
            Role.HANDLING_STAFF,
            c.code,
            "household investigation",
        )
        for _ in range(n)
    ]


def _bunching_village(s: _Injector, inject: bool, *, form: str) -> object:
    """Declared incomes bunched under the line in one village, by several investigators (each
    under the minimum sample, so no investigator is flagged); twin: as many on either side."""
    c = s.approval if form == "other_county" else s.home
    village = s.fresh_village(c)
    sizes: tuple[int, ...] = (1,)
    items = 1
    plan: list[tuple[str, Provenance, UUID | None]]
    if form == "contract_workers":
        workers = [s.county_worker() for _ in range(4)]
        plan = [(village, w, c.contract_id) for w in workers]
    else:
        plan = [(village, by, None) for by in _investigators(s, c, 4)]
        if form == "large_households":
            sizes = (2, 3, 4)
        if form == "several_items":
            items = 3
    _means_tests(s, inject, c, plan, sizes=sizes, items=items)
    return village


def _bunching_investigator(s: _Injector, inject: bool, *, form: str) -> object:
    """One investigator's means tests bunched under the line across four villages (each under
    the minimum sample, so no village is flagged); twin: as many on either side."""
    c = s.approval if form == "other_county" else s.home
    villages = s.fresh_villages(c, form, 4)
    sizes: tuple[int, ...] = (1,)
    items = 1
    if form == "two_records":  # one person's bureau and roster records, twelve each
        bureau, roster, _ = _pair_of_records(s, True)
        plan = [(v, r, k) for v in villages for r, k in ((bureau, None), (roster, c.contract_id))]
        _means_tests(s, inject, c, plan)
        return bureau.actor.id
    if form == "contract_worker":
        by, contract = s.county_worker(), c.contract_id
    else:
        by, contract = _investigators(s, c, 1)[0], None
        if form == "large_households":
            sizes = (3, 2, 4)
        if form == "several_items":
            items = 2
    _means_tests(s, inject, c, [(v, by, contract) for v in villages], sizes=sizes, items=items)
    return by.actor.id


# The table -------------------------------------------------------------------------------------


def _v(rule: str, name: str, twin: str, build: Callable[..., object], /, **kw: object) -> Variant:
    also = kw.pop("also", ())
    expected = kw.pop("expected", True)
    assert isinstance(also, tuple) and isinstance(expected, bool)
    return Variant(
        rule, name, twin, partial(build, **kw) if kw else build, also=also, expected=expected
    )


_WORK_FORMS = {
    "service": ("care recorded after the change's effective day", "care the day before"),
    "investigation": ("a household investigation after it", "the investigation before it"),
    "recommendation": (
        "a recommendation after it (the investigation before)",
        "both before it",
    ),
    "offset": ("00:30 Beijing on the day, sent in UTC", "23:30 Beijing the day before, UTC+14"),
}
_WORK_SPECIAL = {
    "work_outside_scope": (
        "restored",
        "care in the gap between a cut and its restoration",
        "care after the restoration",
    ),
    "work_outside_area": (
        "service_place",
        "care recorded in another township, the area narrowed to the household's",
        "care at the household's village",
    ),
    "work_outside_term": (
        "start_later",
        "care before a term start moved later",
        "care after the moved start",
    ),
    "work_by_banned_contractor": (
        "second_contract",
        "care under the contractor's other contract",
        "a ban that ended the day before",
    ),
}

_APPROVAL_FORMS = (
    ("minimum_sample", "20 of 20 approved, the minimum sample"),
    ("home_contractor", "a contractor of another county, 28 of 30"),
    ("high_not_extreme", "38 of 40 against about 60 %"),
    ("two_workers", "two investigators of one contractor, 29 of 30"),
    ("near_minimum", "25 of 26 approved"),
)

VARIANTS: tuple[Variant, ...] = (
    # people in two cases
    _v(
        "cross_county_cases",
        "home tekun, temporary assistance in another county",
        "tekun closed before",
        _two_cases,
        first="tekun",
        second="temporary",
        across=True,
    ),
    _v(
        "cross_county_cases",
        "home dibao suspended and resumed around the other county's case",
        "left suspended",
        _two_cases,
        first="dibao",
        second="temporary",
        across=True,
        suspend=True,
    ),
    _v(
        "cross_county_cases",
        "home temporary, dibao in another county",
        "temporary closed before",
        _two_cases,
        first="temporary",
        second="dibao",
        across=True,
    ),
    _v(
        "cross_county_cases",
        "heads a household of three in another county",
        "case closed before",
        _two_cases,
        first="dibao",
        second="temporary",
        across=True,
        members=3,
    ),
    _v(
        "cross_county_cases",
        "home temporary assistance, tekun in another county",
        "temporary closed before",
        _two_cases,
        first="temporary",
        second="tekun",
        across=True,
    ),
    _v(
        "concurrent_recurring_programmes",
        "tekun first, then dibao",
        "tekun closed before",
        _two_cases,
        first="tekun",
        second="dibao",
        across=False,
        same_household=True,
    ),
    _v(
        "concurrent_recurring_programmes",
        "dibao, then tekun as head of a new household",
        "dibao closed before",
        _two_cases,
        first="dibao",
        second="tekun",
        across=False,
    ),
    _v(
        "concurrent_recurring_programmes",
        "dibao suspended and resumed around tekun",
        "left suspended",
        _two_cases,
        first="dibao",
        second="tekun",
        across=False,
        same_household=True,
        suspend=True,
    ),
    _v(
        "concurrent_recurring_programmes",
        "dibao at home, tekun in another county",
        "dibao closed before",
        _two_cases,
        first="dibao",
        second="tekun",
        across=True,
        also=("cross_county_cases",),
    ),
    _v(
        "concurrent_recurring_programmes",
        "tekun, then dibao as head of a household of three",
        "tekun closed before",
        _two_cases,
        first="tekun",
        second="dibao",
        across=False,
        members=3,
    ),
    # records a beneficiary could not have received
    _v(
        "record_after_death",
        "the month after a death on a month's last day paid",
        "the death's own month only",
        _death,
        form="payment_next_month",
    ),
    _v(
        "record_after_death",
        "three months paid past the death",
        "paid through the death's month",
        _death,
        form="three_months",
    ),
    _v(
        "record_after_death",
        "paid past the death, case closed, death recorded after the closure",
        "paid through the death's month",
        _death,
        form="closed_then_death",
    ),
    _v(
        "record_after_death",
        "contract care 00:10 Beijing after the death, sent in UTC+14",
        "23:00 on the day, sent in UTC",
        _death,
        form="contract_service_east",
    ),
    _v(
        "record_after_death",
        "a service starting 00:10 after the death, sent in UTC-05",
        "starting 23:30 on the day, across midnight",
        _death,
        form="across_midnight",
    ),
    _v(
        "record_after_closure",
        "the next month paid by a clock running ahead",
        "this month paid",
        _closure,
        form="payment",
    ),
    _v(
        "record_after_closure",
        "the month after next paid",
        "this month paid",
        _closure,
        form="payment_two_months",
    ),
    _v(
        "record_after_closure",
        "contract care dated after the closure",
        "dated before it",
        _closure,
        form="contract_service",
    ),
    _v(
        "record_after_closure",
        "care dated after the closure, sent in UTC-12",
        "dated before it",
        _closure,
        form="service_west",
    ),
    _v(
        "record_after_closure",
        "care dated after the closure, sent in UTC+14",
        "dated before it",
        _closure,
        form="service_east",
    ),
    _v(
        "record_in_suspension",
        "care dated inside a suspension, sent in UTC-12",
        "starting at the resumption",
        _suspension,
        form="west",
    ),
    _v(
        "record_in_suspension",
        "care inside a suspension, sent in UTC+14",
        "starting at the resumption",
        _suspension,
        form="east",
    ),
    _v(
        "record_in_suspension",
        "contract care inside a suspension",
        "starting at the resumption",
        _suspension,
        form="contract",
    ),
    _v(
        "record_in_suspension",
        "care inside the second of two suspensions",
        "starting at the second resumption",
        _suspension,
        form="second_suspension",
    ),
    _v(
        "record_in_suspension",
        "care inside a suspension, recorded after resumption",
        "care ended before the suspension",
        _suspension,
        form="before",
    ),
    _v(
        "household_shrank_unreviewed",
        "a member's death recorded after the payments it makes suspect",
        "only the month within the grace paid",
        _household,
        form="late_death",
    ),
    _v(
        "household_shrank_unreviewed",
        "a move recorded after the payments it makes suspect",
        "only the month within the grace paid",
        _household,
        form="late_record",
    ),
    _v(
        "household_shrank_unreviewed",
        "one member moved out, another died",
        "reviewed before the later months",
        _household,
        form="two_left",
    ),
    _v(
        "household_shrank_unreviewed",
        "a tekun household's member died",
        "reviewed after the death",
        _household,
        form="tekun",
    ),
    _v(
        "household_shrank_unreviewed",
        "a member moved out the day after the visit",
        "moved out the day before the visit",
        _household_order,
    ),
    # work outside the contract
    *(
        _v(rule, f"{name}", twin, _contract_work, rule=rule, form=form)
        for rule in (
            "work_outside_scope",
            "work_outside_area",
            "work_outside_term",
            "work_after_termination",
            "work_by_banned_contractor",
        )
        for form, (name, twin) in (
            *_WORK_FORMS.items(),
            *([(_WORK_SPECIAL[rule][0], _WORK_SPECIAL[rule][1:])] if rule in _WORK_SPECIAL else []),
        )
    ),
    _v(
        "work_after_termination",
        "care under the terminated one of two contracts",
        "under the contract that goes on",
        _terminated_sibling,
    ),
    # impossible days
    _v(
        "overlapping_records",
        "a bureau carer's two services overlapping",
        "back to back",
        _overlap,
        form="bureau",
    ),
    _v(
        "overlapping_records",
        "a home visit during the visitor's own service",
        "the visit after it",
        _overlap,
        form="visit_in_service",
    ),
    _v(
        "overlapping_records",
        "one person under a bureau and a roster record",
        "two people",
        _overlap,
        form="bureau_and_roster",
    ),
    _v(
        "service_hours_over_day",
        "25 hours by a bureau carer",
        "24 hours back to back",
        _hours,
        form="bureau",
        also=("overlapping_records",),
    ),
    _v(
        "service_hours_over_day",
        "25 hours sent in UTC+14",
        "24 hours sent in UTC+14",
        _hours,
        form="east",
        also=("overlapping_records",),
    ),
    _v(
        "service_hours_over_day",
        "25 hours sent in UTC",
        "24 hours sent in UTC",
        _hours,
        form="utc",
        also=("overlapping_records",),
    ),
    _v(
        "service_hours_over_day",
        "25 hours under a bureau and a roster record of one person",
        "two people",
        _hours,
        form="bureau_and_roster",
        also=("overlapping_records",),
    ),
    _v(
        "service_hours_over_day",
        "a service from the day before counted for its part",
        "24 hours on the day",
        _hours,
        form="across_midnight",
        also=("overlapping_records",),
    ),
    _v(
        "home_visits_over_ceiling",
        "three households visited three times each in a day",
        "eight visits",
        _visits,
        form="revisits",
    ),
    _v(
        "home_visits_over_ceiling",
        "nine visits in a Beijing day, all sent from UTC-12",
        "eight",
        _visits,
        form="west",
    ),
    _v(
        "home_visits_over_ceiling",
        "nine visits under the contract",
        "eight",
        _visits,
        form="contract",
    ),
    _v(
        "home_visits_over_ceiling",
        "one person on two contractors' rosters, five and four",
        "two people",
        _visits,
        form="two_rosters",
    ),
    _v(
        "home_visits_over_ceiling",
        "nine visits, the first at 00:30 Beijing sent in UTC",
        "the first at 23:30 the day before, sent in UTC+14",
        _visits,
        form="midnight",
    ),
    _v(
        "home_visit_elsewhere",
        "a visit in a neighbouring village",
        "in the household's village",
        _elsewhere,
        form="neighbour",
    ),
    _v(
        "home_visit_elsewhere",
        "registered in one village, living in another, visited in a third",
        "visited where it lives",
        _elsewhere,
        form="lives_elsewhere",
    ),
    _v(
        "home_visit_elsewhere",
        "a visit in another county",
        "at home",
        _elsewhere,
        form="other_county",
    ),
    _v(
        "home_visit_elsewhere",
        "the contractor's visit in another township",
        "at home",
        _elsewhere,
        form="contract",
    ),
    _v(
        "home_visit_elsewhere",
        "the officer's visit in another township",
        "at home",
        _elsewhere,
        form="township",
    ),
    # statistical rules
    *(
        _v(
            "approval_rate_outlier",
            name,
            "the county's own rate, same sample",
            _approval,
            form=form,
        )
        for form, name in _APPROVAL_FORMS
    ),
    *(
        _v("income_bunching_village", name, "12 of 24 under", _bunching_village, form=form)
        for form, name in (
            ("several_investigators", "21 of 24 under, four investigators"),
            ("contract_workers", "21 of 24 under, four contract investigators"),
            ("large_households", "21 of 24 under, households of 2 to 4"),
            ("several_items", "21 of 24 under, incomes in three items"),
            ("other_county", "21 of 24 under, in another county"),
        )
    ),
    *(
        _v(
            "income_bunching_investigator",
            name,
            "12 of 24 under",
            _bunching_investigator,
            form=form,
        )
        for form, name in (
            ("across_villages", "21 of 24 under, across four villages"),
            ("contract_worker", "a contract investigator, 21 of 24 under"),
            ("large_households", "21 of 24 under, households of 2 to 4"),
            ("several_items", "21 of 24 under, incomes in two items"),
            ("other_county", "21 of 24 under, in another county"),
        )
    ),
    # conflict of interest
    _v(
        "conflict_of_interest",
        "an approver rejects her declared sister's case",
        "rejects a stranger's case",
        _conflict,
        form="rejection",
    ),
    _v(
        "conflict_of_interest",
        "the approver is the applicant",
        "another approver",
        _conflict,
        form="self",
    ),
    _v(
        "conflict_of_interest",
        "a relative declared after the decision",
        "a stranger declared after",
        _conflict,
        form="declared_late",
    ),
    _v(
        "conflict_of_interest",
        "a contractor's investigator and a declared relative",
        "relative not involved",
        _conflict,
        form="contract_investigator",
    ),
    _v(
        "conflict_of_interest",
        "a declared relative in the applicant's household",
        "relative elsewhere",
        _conflict,
        form="relative_in_household",
    ),
    # contract money
    _v(
        "value_raised_after_poor_evaluation",
        "raised by amendment after a score of 48",
        "after a score of 75",
        _raised,
        form="amend",
    ),
    _v(
        "value_raised_after_poor_evaluation",
        "raised by renewal after a score of 45",
        "a good evaluation in between",
        _raised,
        form="renewal",
    ),
    _v(
        "value_raised_after_poor_evaluation",
        "raised after a score of 59",
        "after 60",
        _raised,
        form="boundary",
    ),
    _v(
        "value_raised_after_poor_evaluation",
        "good, then poor, then raised",
        "raised before the poor evaluation",
        _raised,
        form="order",
    ),
    _v(
        "value_raised_after_poor_evaluation",
        "raised with a change of scope",
        "lowered",
        _raised,
        form="with_scope",
    ),
    # known gaps: injected and scored, not counted in recall (see the README)
    _v(
        "income_bunching_investigator",
        "one person's means tests split between a bureau and a roster record",
        "the same two records, 12 of 24 under",
        _bunching_investigator,
        form="two_records",
        expected=False,
    ),
    _v(
        "overlapping_records",
        "one person's two records, neither naming the person",
        "two people",
        _overlap,
        form="unnamed_person",
        expected=False,
    ),
    _v(
        "household_shrank_unreviewed",
        "a member died; a review that changed nothing, paid on at the old amount",
        "the review closed the case",
        _household,
        form="empty_review",
        expected=False,
    ),
    _v(
        "contract_splitting",
        "four awards in the band",
        "one of three below the band",
        _split,
        form="four_awards",
    ),
    _v(
        "contract_splitting",
        "three awards at 999,999",
        "one at the limit",
        _split,
        form="just_under",
    ),
    _v(
        "contract_splitting",
        "two counties of one prefecture and the prefecture",
        "the third for another work item",
        _split,
        form="two_counties",
    ),
    _v(
        "contract_splitting",
        "overlapping terms",
        "terms that never overlap",
        _split,
        form="overlapping_terms",
    ),
    _v(
        "contract_splitting",
        "investigation bought by the province, prefecture and county",
        "three contractors",
        _split,
        form="three_contractors",
    ),
)


def inject_variants(s: _Injector) -> None:
    """Write every variant and its twin, each in a unit of its own, and record them."""
    for form, _ in (*_APPROVAL_FORMS, ("people", "")):  # counties first: they write units
        s.variant_county(form)
    # The variants' investigations take one day each (no investigator's day fills up), from
    # days no other injection used: about a thousand of them, all well before today.
    s.day = s.today - dt.timedelta(days=1700)
    for variant in VARIANTS:
        for inject in (True, False):
            try:
                with s.store.unit():
                    subject = variant.build(s, inject)
            except Exception as error:  # say which variant the domain refused
                error.add_note(f"variant {variant.rule}: {variant.name} (inject={inject})")
                raise
            for rule in (variant.rule, *variant.also):
                if inject:
                    s.injected.add(rule, subject, variant.name, expected=variant.expected)
                else:
                    s.injected.twin(rule, subject, variant.twin)
    if s.day > s.today - dt.timedelta(days=120):
        raise RuntimeError(f"the variants' investigation days ran up to {s.day}")


def variants_per_rule() -> dict[str, int]:
    """Rule → how many variants (each with its twin) ``VARIANTS`` injects for it that the rule
    is expected to find (known gaps left out)."""
    counts: dict[str, int] = {}
    for variant in VARIANTS:
        if not variant.expected:
            continue
        for rule in (variant.rule, *variant.also):
            counts[rule] = counts.get(rule, 0) + 1
    return counts
