"""A deterministic synthetic province (Guangdong-shaped), written through the ledger's commands.

Shape: the counties, townships and villages of the division register (``Geography``: the
shipped Guangdong file in a deployment, the test register in the tests); at full size (40,000
households and more, about 1M events) every one of them, as many as Guangdong has; for smaller
runs a few counties spread over the province, scaled to the households; in each county its
government handling staff and village coordinators, an approver (a staff record, as every
decision-maker is), and a contractor with a
contract for household investigations and care. Each household lives one story from 2022 to
the present: an application in one programme, stopped at any stage or carried through approval
into years of monthly payments, care services, annual reviews, suspensions, closures and
deaths. The same seed gives the same province, event for event.

Everything goes through the application services over a bulk store (infra/bulk.py): the
commands of the HTTP API, saved in large transactions. A story the domain refuses is a bug of
this generator and stops the run.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

from domain.case import HomeVisit, IncomeItem, MeansTest
from domain.clock import BUSINESS_TZ, SetClock
from domain.commands.cases import (
    ApproveCase,
    AssignCase,
    CloseCase,
    InvestigateCase,
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
from domain.commands.purchasing import AssignStaff, AwardContract, HireStaff, RegisterContractor
from domain.division import DivisionEntry
from domain.household import HouseholdMember
from domain.provenance import Actor, Provenance, Role
from infra.runtime import Bulk
from tools.synthetic.identities import credit_code, person_name, resident_id

HISTORY_START = dt.date(2022, 1, 3)
#: Guangdong's prefecture-level cities (the PP of 44PPCC).
PREFECTURES = [f"{n:02d}" for n in range(1, 21)] + ["51", "52", "53"]
#: Monthly dibao standard per head used for amounts (a plausible Guangdong figure).
LINE = Decimal("1000")
#: Care workers of each county's contract; each tekun case gets a fixed monthly slot (a day
#: and a two-hour window) with one of them, so no carer is booked twice at once.
CARERS_PER_COUNTY = 3
CARE_SLOTS = [(day, hour) for day in range(3, 27) for hour in (8, 10, 13, 15)]


#: From this many households on, the province is the register's whole (Guangdong: 124
#: counties, 1,757 townships, 26,842 villages).
FULL_SIZE_HOUSEHOLDS = 40_000


@dataclass(frozen=True)
class Geography:
    """The divisions in force in the register, as a tree: counties that have villages, each
    county's townships and each township's villages, in code order."""

    children: dict[str, list[str]]

    @classmethod
    def of(cls, register: Mapping[str, DivisionEntry]) -> Geography:
        children: dict[str, list[str]] = {}
        for code in sorted(register):
            entry = register[code]
            if entry.valid_to is None and entry.parent is not None:
                children.setdefault(entry.parent, []).append(code)
        return cls(children)

    @property
    def counties(self) -> list[str]:
        return sorted(
            c
            for kids in self.children.values()
            for c in kids
            if len(c) == 6 and any(self.villages(t) for t in self.townships(c))
        )

    def townships(self, county: str) -> list[str]:
        return [t for t in self.children.get(county, []) if self.children.get(t)]

    def villages(self, township: str) -> list[str]:
        return list(self.children.get(township, []))


@dataclass(frozen=True)
class Shape:
    counties: list[str]
    townships: dict[str, list[str]]  # county → township codes
    villages: dict[str, list[str]]  # township → village codes

    @classmethod
    def for_households(cls, households: int, geography: Geography, *, whole: bool = False) -> Shape:
        """The register's whole province at full size, or when asked for (``whole``: the
        bench's sizes, one province at every volume of events); otherwise fewer counties
        (spread over the province), townships (≤ 13) and villages (≤ 16) for small runs, so
        that every village holds a few households."""
        every = geography.counties
        if not every:
            raise ValueError("the division register has no county with villages")
        if whole or households >= FULL_SIZE_HOUSEHOLDS:
            town = {c: geography.townships(c) for c in every}
            vill = {t: geography.villages(t) for ts in town.values() for t in ts}
            return cls(every, town, vill)
        counties = max(1, min(len(every), households // 250))
        townships = max(1, min(13, households // (counties * 20)))
        villages = max(1, min(16, households // (counties * townships * 6)))
        county_codes = [every[i * len(every) // counties] for i in range(counties)]
        town = {c: geography.townships(c)[:townships] for c in county_codes}
        vill = {t: geography.villages(t)[:villages] for ts in town.values() for t in ts}
        return cls(county_codes, town, vill)


@dataclass
class County:
    code: str
    clerk: Provenance
    officer: Provenance
    approver: Provenance
    officer_staff: UUID
    contract_id: UUID
    worker: Provenance  # the contract's investigator
    worker_staff: UUID
    carers: list[Provenance]  # the contract's care workers
    care_slots: int = 0  # tekun cases given a care slot so far


@dataclass
class Province:
    shape: Shape
    counties: dict[str, County] = field(default_factory=dict)


class SimulatedClock(SetClock):
    """The ledger's clock while a story is written: each step happens on its own date, from
    HISTORY_START up to ``until`` (the real today)."""

    def __init__(self, until: dt.date) -> None:
        super().__init__(dt.datetime.combine(HISTORY_START, dt.time(9), BUSINESS_TZ))
        self.until = until


def _by(actor_id: str, role: Role, organisation: str, reason: str | None = None) -> Provenance:
    return Provenance(Actor(actor_id, role, organisation), reason=reason)


def hire(
    bulk: Bulk,
    name: str,
    kind: str,
    division: str,
    by: Provenance,
    *,
    government_unit: str | None = None,
    contract_id: UUID | None = None,
) -> UUID:
    """A staff member hired and assigned to ``division``."""
    purchasing = bulk.services.purchasing
    staff = purchasing.hire_staff(
        HireStaff(
            name=name,
            kind=kind,
            government_unit=government_unit,
            contract_id=contract_id,
            provenance=by,
        )
    )
    purchasing.assign_staff(AssignStaff(staff_id=staff.id, division=division, provenance=by))
    return staff.id


def build_counties(bulk: Bulk, clock: SimulatedClock, shape: Shape) -> Province:
    """Staff, village coordinators, a contractor and its contract in every county."""
    province = Province(shape)
    purchasing = bulk.services.purchasing
    clock.at(HISTORY_START)
    for n, county in enumerate(shape.counties):
        with bulk.store.unit():
            officer = _by(f"officer-{county}", Role.HANDLING_STAFF, county, "staffing")
            staff = hire(
                bulk, f"经办{n}", "handling_staff", county, officer, government_unit=county
            )
            for township in shape.townships[county]:
                for village in shape.villages[township]:
                    hire(
                        bulk,
                        "协理员",
                        "village_coordinator",
                        village,
                        officer,
                        government_unit=county,
                    )
            code = credit_code("52", county, n + 1)
            contractor = purchasing.register_contractor(
                RegisterContractor(
                    name=f"{county}社会工作服务中心",
                    contractor_type="social_organisation",
                    credit_code=code,
                    provenance=officer,
                )
            )
            contract = purchasing.award_contract(
                AwardContract(
                    contractor_id=contractor.id,
                    purchaser=county,
                    work_items=("household_investigation", "care_and_nursing"),
                    service_area=(county,),
                    start=HISTORY_START,
                    end=dt.date(2030, 12, 31),
                    value=Decimal("5000000"),
                    funding_source="relief_work_funds",
                    awarded_on=HISTORY_START,
                    provenance=officer,
                )
            )
            worker = hire(bulk, "社工", "handling_staff", county, officer, contract_id=contract.id)
            carers = []
            for _ in range(CARERS_PER_COUNTY):
                carer = hire(
                    bulk, "护理员", "handling_staff", county, officer, contract_id=contract.id
                )
                carers.append(_by(str(carer), Role.CONTRACTOR_STAFF, code, "care visit"))
            # The county's approver is a staff record too: every decision-maker is one.
            approver = hire(bulk, f"审批{n}", "approver", county, officer, government_unit=county)
        officer_actor = _by(str(staff), Role.HANDLING_STAFF, county)
        province.counties[county] = County(
            code=county,
            clerk=_by(f"clerk-{county}", Role.INTAKE_CLERK, county, "window application"),
            officer=officer_actor,
            approver=_by(str(approver), Role.APPROVER, county, "county decision"),
            officer_staff=staff,
            contract_id=contract.id,
            worker=_by(str(worker), Role.CONTRACTOR_STAFF, code, "contracted investigation"),
            worker_staff=worker,
            carers=carers,
        )
    return province


def months(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first.replace(day=1)
    while day <= last:
        yield day
        day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


class Storyteller:
    """One household's story, step by step, each on its simulated date."""

    def __init__(self, bulk: Bulk, clock: SimulatedClock, province: Province, seed: int) -> None:
        self.cases, self.clock, self.province = bulk.services.cases, clock, province
        self.rng = random.Random(seed)
        self.people = 0
        self.sequences: dict[tuple[str, dt.date], int] = {}

    def new_person(self, county: str, born: dt.date) -> str:
        """A resident ID no one else holds: the next sequence number of (county, birth date),
        moving to the next day once a day's 1,000 numbers are used."""
        self.people += 1
        while True:
            used = self.sequences.get((county, born), 0)
            if used < 1000:
                self.sequences[(county, born)] = used + 1
                return resident_id(county, born, used)
            born += dt.timedelta(days=1)

    def tell(self) -> None:
        rng, clock, cases = self.rng, self.clock, self.cases
        shape = self.province.shape
        county = rng.choice(shape.counties)
        township = rng.choice(shape.townships[county])
        village = rng.choice(shape.villages[township])
        c = self.province.counties[county]
        span = (clock.until - HISTORY_START).days - 40
        received = HISTORY_START + dt.timedelta(days=10 + rng.randrange(max(1, span)))
        programme = rng.choices(("dibao", "tekun", "temporary"), (60, 15, 25))[0]
        size = 1 if programme == "tekun" else rng.choices((1, 2, 3, 4, 5), (30, 25, 20, 15, 10))[0]
        head_born = dt.date(1945 + rng.randrange(50), 1 + rng.randrange(12), 1 + rng.randrange(28))
        members = [HouseholdMember(self.new_person(county, head_born), person_name(rng), "head")]
        for k in range(size - 1):
            born = dt.date(2005 + rng.randrange(15), 1 + rng.randrange(12), 1 + rng.randrange(28))
            relation = "spouse" if k == 0 and size > 2 else "child"
            members.append(
                HouseholdMember(self.new_person(county, born), person_name(rng), relation)
            )
        clock.at(received, 9)
        home = cases.register_household(
            RegisterHousehold(
                registered_division=village,
                residence_division=village,
                members=tuple(members),
                provenance=c.clerk,
            )
        )
        case = cases.receive_application(
            ReceiveApplication(
                household_id=home.id,
                applicant_id=members[0].resident_id,
                programme=programme,
                window_division=township,
                provenance=c.clerk,
            )
        )
        stage = rng.choices(("received", "assigned", "investigated", "decided"), (4, 4, 4, 88))[0]
        if stage == "received":
            return
        by_contractor = rng.random() < 0.5
        investigator = c.worker if by_contractor else c.officer
        contract_id = c.contract_id if by_contractor else None
        clock.at(received + dt.timedelta(days=2))
        cases.assign_case(
            AssignCase(
                case_id=case.id,
                staff_id=c.worker_staff if by_contractor else c.officer_staff,
                provenance=c.officer,
            )
        )
        if stage == "assigned":
            return
        visited = clock.at(received + dt.timedelta(days=8), 10)
        # Per-head income spread evenly across the line: honest incomes do not bunch under it
        # (what the income-bunching rules look for); below the line is eligible.
        ratio = Decimal(rng.randrange(100, 1500)) / 1000
        income = (LINE * size * ratio).quantize(Decimal("1"))
        cases.investigate_case(
            InvestigateCase(
                case_id=case.id,
                means_test=MeansTest(
                    (IncomeItem("wages", income),),
                    (),
                    size,
                    HomeVisit(visited - dt.timedelta(hours=1), village, investigator.actor.id),
                ),
                contract_id=contract_id,
                provenance=investigator,
            )
        )
        if stage == "investigated":
            return
        clock.at(received + dt.timedelta(days=10))
        eligible = income < LINE * size
        amount = max(Decimal("100"), LINE * size - income) if eligible else None
        cases.recommend_case(
            RecommendCase(
                case_id=case.id,
                recommendation="approve" if eligible else "reject",
                reasons="per-head income below the line" if eligible else "income above the line",
                monthly_amount=amount,
                contract_id=contract_id,
                provenance=investigator,
            )
        )
        decided = received + dt.timedelta(days=20)
        clock.at(decided)
        if amount is None:
            cases.reject_case(
                RejectCase(case_id=case.id, reasons="income above the line", provenance=c.approver)
            )
            return
        start = (decided.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        cases.approve_case(
            ApproveCase(
                case_id=case.id,
                monthly_amount=amount,
                start_date=start,
                reasons="means test below the line",
                provenance=c.approver,
            )
        )
        self._benefit_years(case.id, programme, start, amount, village, members, c)

    def _benefit_years(
        self,
        case_id: UUID,
        programme: str,
        start: dt.date,
        amount: Decimal,
        village: str,
        members: list[HouseholdMember],
        c: County,
    ) -> None:
        rng, clock, cases = self.rng, self.clock, self.cases
        last_month = clock.until.replace(day=1) - dt.timedelta(days=1)
        ending = rng.random()
        end: dt.date | None = None
        if ending < 0.15 or ending < 0.18:  # closed (income rose, moved away)
            end = start + dt.timedelta(days=rng.randrange(60, 900))
        carer, slot = c.carers[0], CARE_SLOTS[0]
        if programme == "tekun":
            # A fixed monthly slot with one carer, none booked twice (wraps past 288 cases).
            n_slot, c.care_slots = c.care_slots, c.care_slots + 1
            carer = c.carers[n_slot % len(c.carers)]
            slot = CARE_SLOTS[(n_slot // len(c.carers)) % len(CARE_SLOTS)]
        suspend_from = None
        if programme != "temporary" and rng.random() < 0.05:
            suspend_from = start + dt.timedelta(days=rng.randrange(40, 400))
        for n, month in enumerate(months(start, last_month)):
            if end is not None and month > end:
                break
            if suspend_from is not None and month.replace(day=1) == suspend_from.replace(day=1):
                clock.at(suspend_from)
                cases.suspend_case(
                    SuspendCase(
                        case_id=case_id, reason="annual check pending", provenance=c.approver
                    )
                )
                clock.at(suspend_from + dt.timedelta(days=20))
                cases.resume_case(
                    ResumeCase(case_id=case_id, reason="check passed", provenance=c.approver)
                )
                suspend_from = None
                continue
            clock.at(month.replace(day=5))
            cases.record_payment(
                RecordPayment(
                    case_id=case_id, period=f"{month:%Y-%m}", amount=amount, provenance=c.officer
                )
            )
            if programme == "temporary":
                break
            day_of_month, hour = slot
            if programme == "tekun" and (end is None or month.replace(day=day_of_month) < end):
                day = month.replace(day=day_of_month)
                begin = dt.datetime.combine(day, dt.time(hour), BUSINESS_TZ)
                clock.at(day, 18)
                cases.record_service(
                    RecordService(
                        case_id=case_id,
                        work_item="care_and_nursing",
                        contract_id=c.contract_id,
                        start=begin,
                        end=begin + dt.timedelta(hours=2),
                        place=village,
                        provenance=carer,
                    )
                )
            if n and n % 12 == 0:
                clock.at(month.replace(day=20))
                cases.review_case(
                    ReviewCase(
                        case_id=case_id,
                        outcome="continue",
                        notes="annual review",
                        provenance=c.officer,
                    )
                )
        if programme == "temporary":
            clock.at(min(start + dt.timedelta(days=40), clock.until))
            cases.close_case(
                CloseCase(case_id=case_id, reason_code="voluntary", provenance=c.approver)
            )
        elif end is not None and end <= last_month:
            clock.at(end)
            if ending < 0.15:
                cases.close_case(
                    CloseCase(
                        case_id=case_id, reason_code="income_above_line", provenance=c.approver
                    )
                )
            else:
                cases.record_death(
                    RecordDeath(resident_id=members[0].resident_id, on=end, provenance=c.officer)
                )


def geography_of(bulk: Bulk) -> Geography:
    """The register the bulk services check commands against, as a tree."""
    register = bulk.services.divisions.register
    return Geography.of(register.current())


def seed_province(
    bulk: Bulk,
    clock: SimulatedClock,
    *,
    households: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    whole_province: bool = False,
) -> Province:
    """Write the province: counties first, then one story per household; flushes at the end.
    ``bulk`` runs on ``clock``; ``whole_province``: every county, township and village of the
    register, however few the households (``Shape.for_households``)."""
    shape = Shape.for_households(households, geography_of(bulk), whole=whole_province)
    province = build_counties(bulk, clock, shape)
    teller = Storyteller(bulk, clock, province, seed)
    store = bulk.store
    for n in range(households):
        with store.unit():
            teller.tell()
        if progress is not None:
            progress(n + 1, store.events_written + store.kept_events)
    store.flush()
    return province
