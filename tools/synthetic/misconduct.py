"""A synthetic scenario: an honest province with misconduct of every red-flag kind injected, and
how well each rule finds what was injected.

``build_scenario`` writes the honest province of ``province.py`` (``seed_province``: the same
households, stories and events as ``relief seed``), a second county whose investigators approve
about 60 % of the cases they see (the honest background the approval-rate test needs), a little
honest contract administration (yearly invoices within the value, good evaluations, one value
raised after a good evaluation), and then, for every rule of the red-flags projection, at least
one instance of the misconduct the rule looks for, and (``variants.py``) at least five variants
of it, each with an honest near-miss twin. Everything goes through the ledger's commands
(``BulkLedger``): only what the domain accepts is written. Situations the domain refuses when it
already knows the fact are produced the way they arise in practice: the fact arrives late (a
death recorded months after the payments that followed it, a ban or a termination recorded after
the work it covers, a contract amended with effect from an earlier day), or the record is dated
by a writer whose clock is wrong (see ``record_after_closure`` below).

``Injected`` says, per rule, which alert subjects (the ``subject_id`` the rule's alerts name: a
case, a contract, a contractor, a staff actor, a person's blind-index id, a village) carry
injected misconduct; every injected subject is dedicated to its injection, so an alert matches an
injection unambiguously. ``score`` compares the open alerts with it: an alert on an injected
subject is a true positive, any other alert of that rule a false positive (raised by honest
activity, by a near-miss twin, or by an injection meant for another rule); recall counts the
variants a rule is expected to find, and known gaps (``expected=False``) are scored apart.
``scenario_report`` renders the figures.

Not injected:
- ``billed_above_value``: the domain refuses an invoice that would bring billing above the value
  in force, and an amendment that would lower the value below what is billed; both compare with
  the same terms the rule reads (the latest). No order of commands produces it; the rule is a net
  for imports and other writers, and its test builds the events by hand.

Injected only with a wrong clock:
- ``record_after_closure``: the domain refuses payments and services on a closed case, and a
  record must be dated no later than its writer's "now", while the closure is dated by when it is
  recorded. The only way through the commands is a record entered by a process whose clock runs
  ahead (here: two days), followed by the closure from a process with the right clock.

Thresholds: the rules run with the shipped configuration (policy/red-flags.json) unchanged.
The bunching rules need the local standard (低保标准): the scenario records province.py's own
dibao line (``LINE`` per head, province-wide) in its ledger as a ``StandardSet`` by the
province's approver (``SCENARIO_STANDARD``), before anything else.
A red-flags generation built with other thresholds refuses to run on (``ConfigurationChanged``):
score a scenario in a database of its own, or rebuild the projection with this configuration.

Honest activity is counted too: every alert on a subject that was not injected is a false
positive in the scores. province.py spreads care over several carers with fixed slots and
incomes evenly across the line, so at 300 and 2,000 households (seeds 5, 7) honest activity
raised no alert; a statistical rule may still flag an honest village or investigator by chance.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor

from domain.case import HomeVisit, IncomeItem, MeansTest
from domain.clock import BUSINESS_TZ, Clock
from domain.commands.cases import (
    ApproveCase,
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
    AssignStaff,
    AwardContract,
    BanContractor,
    EvaluateContract,
    HireStaff,
    InvoiceContract,
    RegisterContractor,
    TerminateContract,
)
from domain.commands.standards import SetStandard
from domain.commands.supervision import DeclareInterests
from domain.household import HouseholdMember
from domain.provenance import Actor, Provenance, Role
from infra.runtime import Bulk, Runtime
from projections.red_flags.config import RedFlagsConfig, load_config
from projections.red_flags.projection import ALL_RULES, RedFlagsProjection
from tools.synthetic.identities import credit_code, person_name, resident_id
from tools.synthetic.province import (
    HISTORY_START,
    LINE,
    County,
    Province,
    Shape,
    SimulatedClock,
    build_counties,
    geography_of,
    months,
    seed_province,
)

#: The local dibao standard the scenario's incomes are drawn against (province.py's LINE),
#: recorded as an event in the scenario's ledger (the first it writes).
SCENARIO_STANDARD = SetStandard(
    division="44",
    programme="dibao",
    effective_from=dt.date(2000, 1, 1),
    monthly_amount=LINE,
    source="synthetic scenario: province.py LINE, province-wide",
    provenance=Provenance(
        Actor("scenario-approver", Role.APPROVER, "44"), reason="the scenario's dibao line"
    ),
)

#: Rules no injection can reach through the ledger's commands, and why.
NOT_INJECTABLE = {
    "billed_above_value": (
        "the domain refuses an invoice above the value in force and an amendment below what is "
        "billed, against the same (latest) terms the rule reads"
    ),
}

#: Decided cases in the approval-rate county: background investigated by government staff and
#: by the county's honest contractor (about 60 % approved), and by the colluding contractor.
APPROVAL_BACKGROUND = 40
APPROVAL_BACKGROUND_APPROVED = 24
APPROVAL_COLLUDING = 30
#: Means tests in the bunching village: just under the line, and just above it.
BUNCHING_UNDER = 21
BUNCHING_OVER = 3
#: Home visits the over-the-ceiling visitor records in one day (the shipped ceiling is 8).
VISITS_IN_ONE_DAY = 10


@dataclass(frozen=True)
class Injection:
    """One injected instance: the rule meant to find it, the subject its alerts must name, and
    a description that does not depend on generated ids (the same seed gives the same one)."""

    rule: str
    subject_id: str
    label: str
    expected: bool = True  # False: a variant the rule cannot catch (a known gap, scored apart)


@dataclass
class Injected:
    """What a scenario injected, per rule, and what it is made of."""

    seed: int
    households: int  # the honest province's households (seed_province)
    honest_households: int  # those plus the approval county's background households
    counties: tuple[str, ...]
    injections: list[Injection] = field(default_factory=list)
    near_misses: list[Injection] = field(default_factory=list)
    not_injected: dict[str, str] = field(default_factory=lambda: dict(NOT_INJECTABLE))

    def add(self, rule: str, subject_id: object, label: str, *, expected: bool = True) -> None:
        if rule not in RULE_NAMES:
            raise ValueError(f"no rule {rule!r}")
        self.injections.append(Injection(rule, str(subject_id), label, expected))

    def twin(self, rule: str, subject_id: object, label: str) -> None:
        """A near miss of an injected variant: honest, but as close to the pattern as the rule
        must tell apart (an alert on it counts as a false positive)."""
        if rule not in RULE_NAMES:
            raise ValueError(f"no rule {rule!r}")
        self.near_misses.append(Injection(rule, str(subject_id), label))

    def subjects(self, rule: str) -> set[str]:
        """The injected subjects of ``rule`` (known gaps included: an alert on one is right)."""
        return {i.subject_id for i in self.injections if i.rule == rule}

    def expected(self, rule: str) -> set[str]:
        """The injected subjects the rule is expected to find (recall counts these)."""
        return {i.subject_id for i in self.injections if i.rule == rule and i.expected}

    def gaps(self, rule: str) -> set[str]:
        return self.subjects(rule) - self.expected(rule)

    def twins(self, rule: str) -> set[str]:
        return {i.subject_id for i in self.near_misses if i.rule == rule}

    def labels(self) -> dict[str, list[str]]:
        """Rule → sorted descriptions: equal for two scenarios of the same seed and size."""
        found: dict[str, list[str]] = defaultdict(list)
        for injection in self.injections:
            found[injection.rule].append(injection.label)
        return {rule: sorted(labels) for rule, labels in sorted(found.items())}


RULE_NAMES = tuple(rule.name for rule in ALL_RULES)


def scenario_config(base: RedFlagsConfig | None = None) -> RedFlagsConfig:
    """The shipped thresholds (or ``base``): the scenario's line is an event of its ledger."""
    return base if base is not None else load_config()


def scenario_projection(config: RedFlagsConfig | None = None) -> type[RedFlagsProjection]:
    """The red-flags projection running with ``scenario_config(config)``."""
    chosen = scenario_config(config)

    class ScenarioRedFlags(RedFlagsProjection):
        preset_config = chosen

    return ScenarioRedFlags


def _actor(actor_id: object, role: Role, organisation: str, reason: str) -> Provenance:
    return Provenance(Actor(str(actor_id), role, organisation), reason=reason)


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), BUSINESS_TZ)


@dataclass(frozen=True)
class _Case:
    case_id: UUID
    household_id: UUID
    applicant: str  # resident ID number
    village: str
    start: dt.date | None = None  # approved start
    amount: Decimal | None = None


class _Injector:
    """Writes the approval county, the honest contract administration and the injections."""

    def __init__(self, bulk: Bulk, clock: SimulatedClock, province: Province, seed: int) -> None:
        self.bulk, self.clock, self.province = bulk, clock, province
        self.services, self.store = bulk.services, bulk.store
        self.rng = random.Random(seed * 1_000_003 + 17)
        self.today = clock.until
        self.people = 0
        self.contractors = 0
        self.day = self.today - dt.timedelta(days=430)  # the next free investigation day
        self.home_code = province.shape.counties[0]
        self.home = province.counties[self.home_code]
        self.injected = Injected(
            seed=seed,
            households=0,
            honest_households=0,
            counties=tuple(province.shape.counties),
        )
        self.used_villages: set[str] = set()
        self.used_counties: set[str] = set(province.counties)
        self.variant_counties: dict[str, tuple[County, Shape]] = {}
        self.variant_villages: dict[str, list[str]] = {}
        self.shapes: dict[str, Shape] = {}  # the injector's own counties

    # Building blocks ---------------------------------------------------------------------------

    def villages(self, county: str, shape: Shape | None = None) -> list[str]:
        shape = shape or self.shapes.get(county, self.province.shape)
        return [v for t in shape.townships[county] for v in shape.villages[t]]

    def next_day(self, step: int = 1) -> dt.date:
        """Successive days for the investigations of the injected cases (one a day: no staff
        member's day fills up with them)."""
        self.day += dt.timedelta(days=step)
        return self.day

    def person(self, county: str, born: dt.date) -> str:
        """A resident ID no province person has: its address code (the county's prefecture,
        district 81) is never one of province.py's counties (44PP03 … 44PP08)."""
        self.people += 1
        shifted = born + dt.timedelta(days=self.people // 1000)
        return resident_id(f"{county[:4]}81", shifted, self.people)

    def adult(self, county: str) -> HouseholdMember:
        born = dt.date(1940 + self.rng.randrange(45), 1 + self.rng.randrange(12), 1)
        return HouseholdMember(self.person(county, born), person_name(self.rng), "head")

    def contractor(self, county: str, name: str, c: County) -> tuple[UUID, str]:
        self.contractors += 1
        code = credit_code("52", county, 600 + self.contractors)
        contractor = self.services.purchasing.register_contractor(
            RegisterContractor(
                name=name,
                contractor_type="social_organisation",
                credit_code=code,
                institution_class=None,
                provenance=c.officer,
            )
        )
        return contractor.id, code

    def contract(
        self,
        contractor_id: UUID,
        county: str,
        c: County,
        *,
        items: list[str],
        awarded: dt.date,
        value: Decimal = Decimal("300000"),
        area: list[str] | None = None,
        end: dt.date | None = None,
    ) -> UUID:
        self.clock.at(awarded, 9)
        contract = self.services.purchasing.award_contract(
            AwardContract(
                contractor_id=contractor_id,
                purchaser=county,
                work_items=tuple(items),
                service_area=tuple(area or [county]),
                start=awarded,
                end=end or awarded + dt.timedelta(days=730),
                value=value,
                funding_source="relief_work_funds",
                awarded_on=awarded,
                provenance=c.officer,
            )
        )
        return contract.id

    def worker(
        self, contract_id: UUID, county: str, code: str, c: County, number: str | None = None
    ) -> Provenance:
        """A worker on the contract's roster (``number``: the person's resident ID)."""
        staff = self.services.purchasing.hire_staff(
            HireStaff(
                name="护理员",
                kind="handling_staff",
                contract_id=contract_id,
                resident_id=number,
                provenance=c.officer,
            )
        )
        self.services.purchasing.assign_staff(
            AssignStaff(staff_id=staff.id, division=county, provenance=c.officer)
        )
        return _actor(staff.id, Role.CONTRACTOR_STAFF, code, "contracted work")

    def government_staff(
        self,
        county: str,
        division: str,
        c: County,
        name: str,
        number: str | None = None,
        kind: str = "handling_staff",
    ) -> UUID:
        """A staff record of the county bureau (``number``: the person's resident ID)."""
        staff = self.services.purchasing.hire_staff(
            HireStaff(
                name=name,
                kind=kind,
                government_unit=county,
                resident_id=number,
                provenance=c.officer,
            )
        )
        self.services.purchasing.assign_staff(
            AssignStaff(staff_id=staff.id, division=division, provenance=c.officer)
        )
        return staff.id

    def application(
        self,
        c: County,
        village: str,
        received: dt.date,
        *,
        programme: str = "dibao",
        members: list[HouseholdMember] | None = None,
    ) -> _Case:
        members = members or [self.adult(c.code)]
        self.clock.at(received, 9)
        home = self.services.cases.register_household(
            RegisterHousehold(
                registered_division=village,
                residence_division=village,
                members=tuple(members),
                provenance=c.clerk,
            )
        )
        case = self.services.cases.receive_application(
            ReceiveApplication(
                household_id=home.id,
                applicant_id=members[0].resident_id,
                programme=programme,
                window_division=village[:9],
                provenance=c.clerk,
            )
        )
        return _Case(case.id, home.id, members[0].resident_id, village)

    def investigate(
        self,
        case: _Case,
        day: dt.date,
        per_head: int,
        *,
        by: Provenance,
        size: int = 1,
        contract_id: UUID | None = None,
        place: str | None = None,
        hour: int = 10,
    ) -> None:
        self.clock.at(day, 18)
        self.services.cases.investigate_case(
            InvestigateCase(
                case_id=case.case_id,
                means_test=MeansTest(
                    (IncomeItem("wages", Decimal(per_head * size)),),
                    (),
                    size,
                    HomeVisit(_at(day, hour), place or case.village, by.actor.id),
                ),
                contract_id=contract_id,
                provenance=by,
            )
        )

    def decide(
        self,
        c: County,
        case: _Case,
        day: dt.date,
        *,
        approve: bool,
        amount: int = 0,
        by: Provenance,
        contract_id: UUID | None = None,
        approver: Provenance | None = None,
    ) -> _Case:
        """Recommendation (by the investigator) two days after the visit, decision ten days
        later; an approval starts on the first of the next month."""
        self.clock.at(day + dt.timedelta(days=2), 15)
        self.services.cases.recommend_case(
            RecommendCase(
                case_id=case.case_id,
                recommendation="approve" if approve else "reject",
                reasons="per-head income below the line" if approve else "income above the line",
                monthly_amount=Decimal(amount) if approve else None,
                contract_id=contract_id,
                provenance=by,
            )
        )
        decided = day + dt.timedelta(days=12)
        self.clock.at(decided, 10)
        if not approve:
            self.services.cases.reject_case(
                RejectCase(
                    case_id=case.case_id, reasons="income above the line", provenance=c.approver
                )
            )
            return case
        start = _next_month(decided)
        self.services.cases.approve_case(
            ApproveCase(
                case_id=case.case_id,
                monthly_amount=Decimal(amount),
                start_date=start,
                reasons="means test below the line",
                provenance=approver or c.approver,
            )
        )
        return dataclasses.replace(case, start=start, amount=Decimal(amount))

    def beneficiary(
        self,
        c: County,
        village: str,
        *,
        programme: str = "dibao",
        members: list[HouseholdMember] | None = None,
        place: str | None = None,
        approver: Provenance | None = None,
    ) -> _Case:
        """An application carried through an honest means test (income well under the line)
        by the county's officer to approval."""
        day = self.next_day()
        case = self.application(
            c, village, day - dt.timedelta(days=6), programme=programme, members=members
        )
        size = len(members) if members else 1
        per_head = self.rng.randrange(300, 800, 10)
        self.investigate(case, day, per_head, by=c.officer, size=size, place=place)
        amount = max(100, int(LINE) - per_head) * size
        return self.decide(
            c, case, day, approve=True, amount=amount, by=c.officer, approver=approver
        )

    def pay(self, c: County, case: _Case, first: dt.date, last: dt.date) -> None:
        assert case.amount is not None
        for month in months(first, last):
            self.clock.at(month.replace(day=5), 10)
            self.services.cases.record_payment(
                RecordPayment(
                    case_id=case.case_id,
                    period=f"{month:%Y-%m}",
                    amount=case.amount,
                    provenance=c.officer,
                )
            )

    def serve(
        self,
        case: _Case,
        start: dt.datetime,
        end: dt.datetime,
        *,
        by: Provenance,
        contract_id: UUID | None = None,
        item: str = "care_and_nursing",
        place: str | None = None,
    ) -> None:
        self.clock.set(end + dt.timedelta(hours=1))  # recorded once delivered
        self.services.cases.record_service(
            RecordService(
                case_id=case.case_id,
                work_item=item,
                contract_id=contract_id,
                start=start,
                end=end,
                place=place or case.village,
                provenance=by,
            )
        )

    def supervisor(self, county: str) -> Provenance:
        return _actor(f"supervisor-{county}", Role.SUPERVISOR, county, "supervision")

    # The scenario ------------------------------------------------------------------------------

    def fresh_village(self, c: County) -> str:
        """A village of the county that no province household lives in and no injection used
        yet (statistical variants need villages of their own)."""
        geography = geography_of(self.bulk)
        shaped = {v for t in self.province.shape.villages.values() for v in t}
        for township in geography.townships(c.code):
            for village in geography.villages(township):
                if village not in shaped and village not in self.used_villages:
                    self.used_villages.add(village)
                    return village
        raise ValueError(f"county {c.code} has no village left for an injection")

    def fresh_villages(self, c: County, key: str, n: int) -> list[str]:
        """``n`` fresh villages, the same for every call with ``key`` (a variant and its twin)."""
        if key not in self.variant_villages:
            self.variant_villages[key] = [self.fresh_village(c) for _ in range(n)]
        return self.variant_villages[key]

    def variant_county(self, key: str) -> tuple[County, Shape]:
        """A county of its own (with the approval background), the same for every call with
        ``key``: an approval-rate variant and its twin."""
        if key not in self.variant_counties:
            self.variant_counties[key] = self.approval_county()
        return self.variant_counties[key]

    def run(self, households: int, *, variants: bool = True) -> Injected:
        from tools.synthetic.variants import inject_variants

        self.injected.households = households
        self.injected.honest_households = households
        self.injected.counties = tuple(self.province.shape.counties)
        approval = self.approval_county()
        self.approval = approval[0]
        for code in self.province.shape.counties:
            with self.store.unit():
                self.honest_contract_administration(self.province.counties[code])
        with self.store.unit():
            self.honest_contract_administration(approval[0])
        steps: tuple[Callable[[], None], ...] = (
            lambda: self.cross_county(approval[0], approval[1]),
            self.concurrent_programmes,
            self.after_death,
            self.household_shrank,
            self.after_closure,
            self.in_suspension,
            self.outside_scope,
            self.outside_area,
            self.outside_term,
            self.after_termination,
            self.banned,
            self.overlapping,
            self.hours_over_day,
            self.visits_over_ceiling,
            self.visit_elsewhere,
            lambda: self.approval_outlier(approval[0], approval[1]),
            self.bunching,
            self.conflicts,
            self.people_across_rosters,
            self.undeclared_household,
            self.business_day,
            self.offsets,
            self.more_variants,
            self.value_raised,
            self.splitting,
        )
        for step in steps:
            with self.store.unit():
                step()
        if variants:
            inject_variants(self)  # each variant and twin in a unit of its own
        self.store.flush()
        return self.injected

    def approval_county(self) -> tuple[County, Shape]:
        """A county after the province's own (its next code), with the province's staff and
        contractor (build_counties) and a background of honest decisions: about 60 % of the
        households its officer and its contractor investigate are approved."""
        geography = geography_of(self.bulk)
        code = next(
            c
            for c in geography.counties
            if c not in self.used_counties
            and len([t for t in geography.townships(c) if len(geography.villages(t)) >= 3]) >= 2
        )
        self.used_counties.add(code)
        self.injected.honest_households += APPROVAL_BACKGROUND
        self.injected.counties = (*self.injected.counties, code)
        towns = [t for t in geography.townships(code) if len(geography.villages(t)) >= 3][:2]
        shape = Shape([code], {code: towns}, {t: geography.villages(t)[:3] for t in towns})
        self.used_villages.update(v for t in towns for v in shape.villages[t])
        self.shapes[code] = shape
        c = build_counties(self.bulk, self.clock, shape).counties[code]
        villages = self.villages(code, shape)
        approved = set(self.rng.sample(range(APPROVAL_BACKGROUND), APPROVAL_BACKGROUND_APPROVED))
        for n in range(APPROVAL_BACKGROUND):
            with self.store.unit():
                day = self.next_day()
                case = self.application(c, self.rng.choice(villages), day - dt.timedelta(days=6))
                by_contractor = n % 2 == 1
                by = c.worker if by_contractor else c.officer
                contract_id = c.contract_id if by_contractor else None
                # Honest incomes either side of the line: under it approved, above it rejected.
                per_head = (
                    self.rng.randrange(250, 1000, 5)
                    if n in approved
                    else self.rng.randrange(1000, 2200, 5)
                )
                self.investigate(case, day, per_head, by=by, contract_id=contract_id)
                self.decide(
                    c,
                    case,
                    day,
                    approve=n in approved,
                    amount=max(100, int(LINE) - per_head),
                    by=by,
                    contract_id=contract_id,
                )
        return c, shape

    def honest_contract_administration(self, c: County) -> None:
        """Yearly invoices well within the value, yearly evaluations (all good), and the value
        raised after the last good one: the honest background of the contract-money rules."""
        for year in range(HISTORY_START.year, self.today.year):
            invoiced = dt.date(year + 1, 1, 10)
            if invoiced > self.today:
                break
            self.clock.at(invoiced, 10)
            self.services.purchasing.invoice_contract(
                InvoiceContract(
                    contract_id=c.contract_id,
                    invoice_number=f"{c.code}-{year}",
                    period_start=max(dt.date(year, 1, 1), HISTORY_START),
                    period_end=dt.date(year, 12, 31),
                    amount=Decimal("480000"),
                    provenance=c.officer,
                )
            )
            self.clock.at(invoiced + dt.timedelta(days=10), 10)
            self.services.purchasing.evaluate_contract(
                EvaluateContract(
                    contract_id=c.contract_id,
                    period_start=max(dt.date(year, 1, 1), HISTORY_START),
                    period_end=dt.date(year, 12, 31),
                    score=Decimal(self.rng.randrange(70, 96)),
                    provenance=self.supervisor(c.code),
                )
            )
        raised = dt.date(self.today.year, 2, 1)
        if raised <= self.today and self.today.year > HISTORY_START.year:
            self.clock.at(raised, 10)
            self.services.purchasing.amend_contract(
                AmendContract(
                    contract_id=c.contract_id,
                    reason="more households after a good evaluation",
                    effective_from=raised,
                    value=Decimal("5600000"),
                    provenance=c.officer,
                )
            )

    # People ------------------------------------------------------------------------------------

    def cross_county(self, other: County, other_shape: Shape) -> None:
        """Dibao in the home county; the person moves to the other county and is granted
        temporary assistance there while the dibao case keeps being paid (异地重复救助)."""
        c = self.home
        case = self.beneficiary(c, self.rng.choice(self.villages(c.code)))
        assert case.start is not None
        moved = self.today - dt.timedelta(days=120)
        self.pay(c, case, case.start, moved)
        self.clock.at(moved, 11)
        self.services.cases.move_out_member(
            MoveOutMember(
                household_id=case.household_id,
                resident_id=case.applicant,
                on=moved,
                provenance=c.clerk,
            )
        )
        there = self.rng.choice(self.villages(other.code, other_shape))
        member = HouseholdMember(case.applicant, person_name(self.rng), "head")
        temporary = self.application(
            other, there, moved + dt.timedelta(days=3), programme="temporary", members=[member]
        )
        day = moved + dt.timedelta(days=10)
        self.investigate(temporary, day, 400, by=other.officer)
        granted = self.decide(other, temporary, day, approve=True, amount=1500, by=other.officer)
        assert granted.start is not None
        self.pay(other, granted, granted.start, granted.start)
        self.pay(c, case, _next_month(moved), self.today - dt.timedelta(days=35))
        self.injected.add(
            "cross_county_cases",
            self.services.cases.person_id(case.applicant),
            f"dibao in {c.code} kept paid after a move; temporary assistance in {other.code}",
        )
        # The household lost its applicant and kept being paid without a review: the
        # household rule sees the same story from the household's side.
        self.injected.add(
            "household_shrank_unreviewed", case.case_id, "the applicant moved out; paid on"
        )

    def concurrent_programmes(self) -> None:
        """Dibao approved, then tekun approved for the same person in the same county, and the
        dibao case never closed: two recurring allowances at once."""
        c = self.home
        case = self.beneficiary(c, self.rng.choice(self.villages(c.code)))
        tekun_day = self.today - dt.timedelta(days=150)
        self.clock.at(tekun_day - dt.timedelta(days=6), 9)
        second = self.services.cases.receive_application(
            ReceiveApplication(
                household_id=case.household_id,
                applicant_id=case.applicant,
                programme="tekun",
                window_division=case.village[:9],
                provenance=c.clerk,
            )
        )
        tekun = dataclasses.replace(case, case_id=second.id)
        self.investigate(tekun, tekun_day, 350, by=c.officer)
        self.decide(c, tekun, tekun_day, approve=True, amount=1400, by=c.officer)
        self.injected.add(
            "concurrent_recurring_programmes",
            self.services.cases.person_id(case.applicant),
            f"dibao and tekun at once in {c.code}",
        )

    # Records a beneficiary could not have received ---------------------------------------------

    def after_death(self) -> None:
        """Six months paid; the death, in the second month, is recorded only now (冒领)."""
        c = self.home
        case = self.beneficiary(c, self.rng.choice(self.villages(c.code)))
        assert case.start is not None
        last = _next_month(_next_month(_next_month(_next_month(_next_month(case.start)))))
        self.pay(c, case, case.start, last)
        died = _next_month(case.start) + dt.timedelta(days=9)
        self.clock.at(self.today, 11)
        self.services.cases.record_death(
            RecordDeath(resident_id=case.applicant, on=died, provenance=c.officer)
        )
        self.injected.add(
            "record_after_death", case.case_id, "dibao paid 4 months past a death recorded late"
        )

    def household_shrank(self) -> None:
        """Households that lost a member after their means test and kept being paid: a member
        who moved out (and now heads a household of their own elsewhere) and one who died,
        each paid four months on without a review. Twins: the same move reviewed before the
        later months were paid, and a death after which only the month within the grace was
        paid."""
        c = self.home
        for how, inject in (
            ("moved out", True),
            ("died", True),
            ("moved out", False),
            ("died", False),
        ):
            member = HouseholdMember(
                self.person(c.code, dt.date(1995, 6, 1)), person_name(self.rng), "child"
            )
            case = self.beneficiary(
                c, self.rng.choice(self.villages(c.code)), members=[self.adult(c.code), member]
            )
            assert case.start is not None
            second = _next_month(case.start)
            self.pay(c, case, case.start, case.start)
            left = case.start + dt.timedelta(days=9)
            self.clock.at(left + dt.timedelta(days=1), 10)
            if how == "moved out":
                self.services.cases.move_out_member(
                    MoveOutMember(
                        household_id=case.household_id,
                        resident_id=member.resident_id,
                        on=left,
                        provenance=c.clerk,
                    )
                )
                village = self.rng.choice(self.villages(c.code))
                self.clock.at(left + dt.timedelta(days=3), 10)
                self.services.cases.register_household(
                    RegisterHousehold(
                        registered_division=village,
                        residence_division=village,
                        members=(dataclasses.replace(member, relation="head"),),
                        provenance=c.clerk,
                    )
                )
            else:
                self.services.cases.record_death(
                    RecordDeath(resident_id=member.resident_id, on=left, provenance=c.clerk)
                )
            if not inject and how == "moved out":
                self.clock.at(second + dt.timedelta(days=20), 10)
                self.services.cases.review_case(
                    ReviewCase(
                        case_id=case.case_id,
                        outcome="continue",
                        notes="household change checked",
                        provenance=c.officer,
                    )
                )
            last = (
                second
                if not inject and how == "died"
                else _next_month(_next_month(_next_month(second)))
            )
            self.pay(c, case, second, last)
            if inject:
                self.injected.add(
                    "household_shrank_unreviewed",
                    case.case_id,
                    f"a member {how} after the means test; paid on without a review",
                )
            else:
                self.injected.twin(
                    "household_shrank_unreviewed", case.case_id, f"member {how}: reviewed or graced"
                )

    def after_closure(self) -> None:
        """A care service dated tomorrow, entered by a process whose clock runs two days ahead;
        the case is then closed by a process with the right clock."""
        c = self.home
        case = self.beneficiary(c, self.rng.choice(self.villages(c.code)), programme="tekun")
        wall = Clock().now()
        tomorrow = (wall + dt.timedelta(days=1)).date()
        self.clock.set(wall + dt.timedelta(days=2))
        self.services.cases.record_service(
            RecordService(
                case_id=case.case_id,
                work_item="care_and_nursing",
                contract_id=None,
                start=_at(tomorrow, 9),
                end=_at(tomorrow, 11),
                place=case.village,
                provenance=c.officer,
            )
        )
        self.clock.set(Clock().now())
        self.services.cases.close_case(
            CloseCase(case_id=case.case_id, reason_code="voluntary", provenance=c.approver)
        )
        self.injected.add(
            "record_after_closure",
            case.case_id,
            "service dated after the closure (entered with a clock two days fast)",
        )

    def in_suspension(self) -> None:
        """Suspended and resumed; then a service dated inside the suspension is recorded.

        Suspensions are dated by when their events are recorded, and events are stamped with
        the wall clock (the simulated clock drives only the domain's "now"), so the suspension
        lasts a moment of real time and the service is dated inside that moment."""
        c = self.home
        case = self.beneficiary(c, self.rng.choice(self.villages(c.code)), programme="tekun")
        self.clock.set(Clock().now())
        suspended = self.services.cases.suspend_case(
            SuspendCase(case_id=case.case_id, reason="annual check pending", provenance=c.approver)
        ).pending_events[-1]
        time.sleep(0.002)  # the suspension lasts a moment of real time
        resumed = self.services.cases.resume_case(
            ResumeCase(case_id=case.case_id, reason="check passed", provenance=c.approver)
        ).pending_events[-1]
        self.clock.set(Clock().now())
        self.services.cases.record_service(
            RecordService(
                case_id=case.case_id,
                work_item="care_and_nursing",
                contract_id=None,
                start=suspended.timestamp + (resumed.timestamp - suspended.timestamp) / 2,
                end=resumed.timestamp,
                place=case.village,
                provenance=c.officer,
            )
        )
        self.injected.add("record_in_suspension", case.case_id, "service dated inside a suspension")

    # Work outside the contract -----------------------------------------------------------------

    def contracted_work(
        self, name: str, items: list[str], *, area: list[str] | None = None
    ) -> tuple[UUID, UUID, Provenance, _Case]:
        """A contractor with a contract from 90 days ago, a worker, and a beneficiary served."""
        c = self.home
        recipient = self.beneficiary(c, self.rng.choice(self.villages(c.code)), programme="tekun")
        contractor_id, code = self.contractor(c.code, name, c)
        contract_id = self.contract(
            contractor_id,
            c.code,
            c,
            items=items,
            awarded=self.today - dt.timedelta(days=90),
            area=area,
        )
        return contractor_id, contract_id, self.worker(contract_id, c.code, code, c), recipient

    def visits(
        self, recipient: _Case, contract_id: UUID, by: Provenance, days_ago: Iterable[int]
    ) -> None:
        for n, ago in enumerate(days_ago):
            day = self.today - dt.timedelta(days=ago)
            item = "psychological_counselling" if n % 2 == 0 else "care_and_nursing"
            self.serve(
                recipient, _at(day, 9), _at(day, 11), by=by, contract_id=contract_id, item=item
            )

    def outside_scope(self) -> None:
        """Counselling kept being recorded after it was cut from the contract (the amendment,
        recorded later, takes effect from before the work)."""
        _, contract_id, by, recipient = self.contracted_work(
            "心桥心理服务社", ["care_and_nursing", "psychological_counselling"]
        )
        self.visits(recipient, contract_id, by, (40, 33, 26))
        self.clock.at(self.today - dt.timedelta(days=10), 10)
        self.services.purchasing.amend_contract(
            AmendContract(
                contract_id=contract_id,
                reason="counselling bought elsewhere from the 45th day back",
                effective_from=self.today - dt.timedelta(days=45),
                work_items=("care_and_nursing",),
                provenance=self.home.officer,
            )
        )
        self.injected.add(
            "work_outside_scope", contract_id, "counselling recorded after it left the scope"
        )

    def outside_area(self) -> None:
        """Care recorded in a township the contract no longer covered (narrowed with effect
        from before the work)."""
        c = self.home
        towns = self.province.shape.townships[c.code]
        _, contract_id, by, recipient = self.contracted_work(
            "邻里互助服务中心", ["care_and_nursing", "psychological_counselling"]
        )
        elsewhere = next((t for t in towns if not recipient.village.startswith(t)), None)
        self.visits(recipient, contract_id, by, (38, 31))
        self.clock.at(self.today - dt.timedelta(days=9), 10)
        self.services.purchasing.amend_contract(
            AmendContract(
                contract_id=contract_id,
                reason="area split between providers",
                effective_from=self.today - dt.timedelta(days=45),
                service_area=(
                    elsewhere
                    or next(
                        t
                        for t in geography_of(self.bulk).townships(c.code)
                        if not recipient.village.startswith(t)
                    ),
                ),
                provenance=c.officer,
            )
        )
        self.injected.add(
            "work_outside_area", contract_id, "care recorded outside the narrowed service area"
        )

    def outside_term(self) -> None:
        """Care recorded after the contract's end, the end having been brought forward with
        effect from before the work."""
        c = self.home
        _, contract_id, by, recipient = self.contracted_work(
            "康宁护理服务社", ["care_and_nursing", "psychological_counselling"]
        )
        self.visits(recipient, contract_id, by, (30, 20))
        self.clock.at(self.today - dt.timedelta(days=8), 10)
        self.services.purchasing.amend_contract(
            AmendContract(
                contract_id=contract_id,
                reason="term cut short",
                effective_from=self.today - dt.timedelta(days=40),
                end=self.today - dt.timedelta(days=25),
                provenance=c.officer,
            )
        )
        self.injected.add(
            "work_outside_term", contract_id, "care recorded after the shortened term ended"
        )

    def after_termination(self) -> None:
        """Care recorded after the termination's effective time (the termination recorded
        later)."""
        c = self.home
        _, contract_id, by, recipient = self.contracted_work(
            "安康居家服务中心", ["care_and_nursing", "psychological_counselling"]
        )
        self.visits(recipient, contract_id, by, (20, 12))
        self.clock.at(self.today - dt.timedelta(days=5), 10)
        self.services.purchasing.terminate_contract(
            TerminateContract(
                contract_id=contract_id,
                effective_at=_at(self.today - dt.timedelta(days=15), 0),
                basis="contract",
                reason="falsified records (弄虚作假)",
                provenance=c.officer,
            )
        )
        self.injected.add(
            "work_after_termination", contract_id, "care recorded after the termination"
        )

    def banned(self) -> None:
        """Care recorded while the contractor was banned (the ban recorded later, from an
        earlier day)."""
        c = self.home
        contractor_id, contract_id, by, recipient = self.contracted_work(
            "福寿养老服务社", ["care_and_nursing", "psychological_counselling"]
        )
        self.visits(recipient, contract_id, by, (20, 12))
        self.clock.at(self.today - dt.timedelta(days=5), 10)
        self.services.purchasing.ban_contractor(
            BanContractor(
                contractor_id=contractor_id,
                start=self.today - dt.timedelta(days=15),
                end=self.today + dt.timedelta(days=730),
                reason="falsified records in another county (弄虚作假)",
                deciding_unit=c.code,
                provenance=self.supervisor(c.code),
            )
        )
        self.injected.add("work_by_banned_contractor", contract_id, "care recorded while banned")

    # Impossible days ---------------------------------------------------------------------------

    def county_worker(self) -> Provenance:
        """Another care worker of the home county's (honest) contractor."""
        c = self.home
        code = c.worker.actor.organisation
        return self.worker(c.contract_id, c.code, code, c)

    def overlapping(self) -> None:
        """One care worker records two overlapping services for two beneficiaries."""
        c = self.home
        by = self.county_worker()
        day = self.today - dt.timedelta(days=50)
        for start, end in ((9, 11), (10, 12)):
            recipient = self.beneficiary(
                c, self.rng.choice(self.villages(c.code)), programme="tekun"
            )
            self.serve(recipient, _at(day, start), _at(day, end), by=by, contract_id=c.contract_id)
        self.injected.add("overlapping_records", by.actor.id, "two overlapping care services")

    def hours_over_day(self) -> None:
        """One care worker records 28 hours of care in one day (four 7-hour services, which
        necessarily overlap: both rules are meant to find it)."""
        c = self.home
        by = self.county_worker()
        day = self.today - dt.timedelta(days=45)
        for start in (6, 8, 10, 12):
            recipient = self.beneficiary(
                c, self.rng.choice(self.villages(c.code)), programme="tekun"
            )
            self.serve(
                recipient, _at(day, start), _at(day, start + 7), by=by, contract_id=c.contract_id
            )
        self.injected.add("service_hours_over_day", by.actor.id, "28 hours of care in a day")
        self.injected.add("overlapping_records", by.actor.id, "28 hours of care in a day")

    def visits_over_ceiling(self) -> None:
        """One officer records ten home visits in one day."""
        c = self.home
        staff = self.government_staff(c.code, c.code, c, "调查员")
        by = _actor(staff, Role.HANDLING_STAFF, c.code, "household investigation")
        day = self.today - dt.timedelta(days=35)
        for hour in range(8, 8 + VISITS_IN_ONE_DAY):
            case = self.application(
                c, self.rng.choice(self.villages(c.code)), day - dt.timedelta(days=4)
            )
            self.investigate(case, day, self.rng.randrange(300, 800, 10), by=by, hour=hour)
        self.injected.add(
            "home_visits_over_ceiling", staff, f"{VISITS_IN_ONE_DAY} home visits in one day"
        )

    def visit_elsewhere(self) -> None:
        """A home visit recorded in a village of another township than the household's."""
        c = self.home
        villages = self.villages(c.code)
        village = self.rng.choice(villages)
        geography = geography_of(self.bulk)
        other = next((v for v in villages if v[:9] != village[:9]), None) or next(
            v
            for t in geography.townships(c.code)
            for v in geography.villages(t)
            if v[:9] != village[:9]
        )
        case = self.beneficiary(c, village, place=other)
        self.injected.add("home_visit_elsewhere", case.case_id, "home visit in another village")

    # Statistical rules -------------------------------------------------------------------------

    def approval_outlier(self, c: County, shape: Shape) -> None:
        """A second contractor investigating in the approval county recommends approval for
        every household (declared incomes all under the line); the approver follows it for all
        but one."""
        contractor_id, code = self.contractor(c.code, "惠民家计调查事务所", c)
        contract_id = self.contract(
            contractor_id,
            c.code,
            c,
            items=["household_investigation"],
            awarded=self.today - dt.timedelta(days=440),
        )
        by = self.worker(contract_id, c.code, code, c)
        villages = self.villages(c.code, shape)
        for n in range(APPROVAL_COLLUDING):
            day = self.next_day(step=2)
            case = self.application(c, self.rng.choice(villages), day - dt.timedelta(days=6))
            per_head = self.rng.randrange(300, 990, 5)
            self.investigate(case, day, per_head, by=by, contract_id=contract_id)
            amount = max(100, int(LINE) - per_head)
            self.clock.at(day + dt.timedelta(days=2), 15)
            self.services.cases.recommend_case(
                RecommendCase(
                    case_id=case.case_id,
                    recommendation="approve",
                    reasons="per-head income below the line",
                    monthly_amount=Decimal(amount),
                    contract_id=contract_id,
                    provenance=by,
                )
            )
            self.clock.at(day + dt.timedelta(days=12), 10)
            if n == APPROVAL_COLLUDING // 2:
                self.services.cases.reject_case(
                    RejectCase(
                        case_id=case.case_id,
                        reasons="property found on file",
                        provenance=c.approver,
                    )
                )
            else:
                self.services.cases.approve_case(
                    ApproveCase(
                        case_id=case.case_id,
                        monthly_amount=Decimal(amount),
                        start_date=_next_month(day + dt.timedelta(days=12)),
                        reasons="as recommended",
                        provenance=c.approver,
                    )
                )
        self.injected.add(
            "approval_rate_outlier",
            contractor_id,
            f"{APPROVAL_COLLUDING - 1} of {APPROVAL_COLLUDING} approved against "
            f"{APPROVAL_BACKGROUND_APPROVED} of {APPROVAL_BACKGROUND} in the county",
        )

    def bunching(self) -> None:
        """In a village of its own, one officer's means tests: most just under the line."""
        c = self.home
        township = self.province.shape.townships[c.code][0]
        # a village of the township that the province's households do not live in (or its last)
        in_register = geography_of(self.bulk).villages(township)
        village = next(
            (v for v in in_register if v not in self.province.shape.villages[township]),
            in_register[-1],
        )
        self.used_villages.add(village)
        staff = self.government_staff(c.code, township, c, "调查员")
        by = _actor(staff, Role.HANDLING_STAFF, c.code, "household investigation")
        band = int(LINE) // 10
        kinds = [True] * BUNCHING_UNDER + [False] * BUNCHING_OVER
        self.rng.shuffle(kinds)
        for under in kinds:
            day = self.next_day(step=2)
            size = self.rng.choice((1, 1, 2, 3))
            members = [self.adult(c.code)] + [
                HouseholdMember(
                    self.person(c.code, dt.date(1990, 6, 1)), person_name(self.rng), "child"
                )
                for _ in range(size - 1)
            ]
            case = self.application(c, village, day - dt.timedelta(days=6), members=members)
            per_head = (
                self.rng.randrange(int(LINE) - band + 5, int(LINE), 5)
                if under
                else self.rng.randrange(int(LINE), int(LINE) + band, 5)
            )
            self.investigate(case, day, per_head, by=by, size=size)
            self.decide(
                c,
                case,
                day,
                approve=under,
                amount=max(100, (int(LINE) - per_head) * size),
                by=by,
            )
        label = f"{BUNCHING_UNDER} of {BUNCHING_UNDER + BUNCHING_OVER} just under the line"
        self.injected.add("income_bunching_village", village, label)
        self.injected.add("income_bunching_investigator", staff, label)

    # Conflict of interest ----------------------------------------------------------------------

    def conflicts(self) -> None:
        """An approver approves her declared sister's case; an officer investigates the case
        of the household he lives in (declared, and on the household's register)."""
        c = self.home
        approver_staff = self.government_staff(c.code, c.code, c, "审批员", kind="approver")
        sister = self.adult(c.code)
        self.services.supervision.declare_interests(
            DeclareInterests(
                staff_id=approver_staff,
                resident_id=self.person(c.code, dt.date(1972, 3, 1)),
                relatives=((sister.resident_id, "sibling"),),
                provenance=c.officer,
            )
        )
        approver = _actor(approver_staff, Role.APPROVER, c.code, "county decision")
        self.beneficiary(
            c, self.rng.choice(self.villages(c.code)), members=[sister], approver=approver
        )
        self.injected.add(
            "conflict_of_interest", approver_staff, "approver approved her declared sister"
        )

        officer_staff = self.government_staff(c.code, c.code, c, "经办员")
        own = HouseholdMember(
            self.person(c.code, dt.date(1985, 8, 1)), person_name(self.rng), "child"
        )
        self.services.supervision.declare_interests(
            DeclareInterests(
                staff_id=officer_staff,
                resident_id=own.resident_id,
                relatives=(),
                provenance=c.officer,
            )
        )
        officer = _actor(officer_staff, Role.HANDLING_STAFF, c.code, "household investigation")
        day = self.next_day()
        case = self.application(
            c,
            self.rng.choice(self.villages(c.code)),
            day - dt.timedelta(days=6),
            members=[self.adult(c.code), own],
        )
        self.investigate(case, day, 450, by=officer, size=2)
        self.decide(c, case, day, approve=True, amount=1100, by=officer)
        self.injected.add(
            "conflict_of_interest", officer_staff, "officer investigated his own household"
        )

    # Variants: staff are people, the business day ---------------------------------------------

    def people_across_rosters(self) -> None:
        """One person on two rosters is one person: overlapping care under two contractors'
        records, home visits over the ceiling split between a bureau record and a contractor
        record, and a relative declared on one record while investigating under another. Each
        with a twin: the same records held by different people."""
        c = self.home
        home_code = c.worker.actor.organisation
        other_id, other_code = self.contractor(c.code, "同德护理服务社", c)
        other = self.contract(
            other_id,
            c.code,
            c,
            items=["care_and_nursing"],
            awarded=self.today - dt.timedelta(days=120),
        )
        day = self.today - dt.timedelta(days=55)
        one = self.beneficiary(c, self.rng.choice(self.villages(c.code)), programme="tekun")
        two = self.beneficiary(c, self.rng.choice(self.villages(c.code)), programme="tekun")
        for born, hours, inject in (
            (dt.date(1978, 5, 1), (9, 10), True),  # one person on both rosters
            (None, (14, 15), False),  # twin: two people, the same times
        ):
            first = self.person(c.code, born or dt.date(1979, 5, 1))
            second = first if born else self.person(c.code, dt.date(1980, 5, 1))
            a = self.worker(c.contract_id, c.code, home_code, c, first)
            b = self.worker(other, c.code, other_code, c, second)
            self.serve(
                one, _at(day, hours[0]), _at(day, hours[0] + 2), by=a, contract_id=c.contract_id
            )
            self.serve(two, _at(day, hours[1]), _at(day, hours[1] + 2), by=b, contract_id=other)
            subject = min(a.actor.id, b.actor.id)  # the alert names the smaller of a tie
            if inject:
                self.injected.add(
                    "overlapping_records", subject, "one person on two contractors' rosters"
                )
            else:
                self.injected.twin("overlapping_records", subject, "two people, same times")

        visit_day = self.today - dt.timedelta(days=33)
        for born, inject in ((dt.date(1976, 2, 1), True), (None, False)):
            first = self.person(c.code, born or dt.date(1977, 2, 1))
            second = first if born else self.person(c.code, dt.date(1977, 3, 1))
            bureau = _actor(
                self.government_staff(c.code, c.code, c, "调查员", first),
                Role.HANDLING_STAFF,
                c.code,
                "household investigation",
            )
            roster = self.worker(c.contract_id, c.code, home_code, c, second)
            for n, by in enumerate([bureau] * 6 + [roster] * 4):
                case = self.application(
                    c, self.rng.choice(self.villages(c.code)), visit_day - dt.timedelta(days=4)
                )
                self.investigate(
                    case,
                    visit_day,
                    self.rng.randrange(300, 800, 10),
                    by=by,
                    hour=8 + n,
                    contract_id=c.contract_id if by is roster else None,
                )
            if inject:
                self.injected.add(
                    "home_visits_over_ceiling",
                    bureau.actor.id,
                    "ten home visits in a day under a bureau and a contractor record",
                )
            else:
                self.injected.twin(
                    "home_visits_over_ceiling", bureau.actor.id, "six and four, two people"
                )

        for inject in (True, False):
            number = self.person(c.code, dt.date(1974, 9, 1))
            niece = self.adult(c.code)
            declared = niece.resident_id if inject else self.person(c.code, dt.date(1990, 1, 1))
            roster_staff = self.worker(c.contract_id, c.code, home_code, c, number)
            self.services.supervision.declare_interests(
                DeclareInterests(
                    staff_id=UUID(roster_staff.actor.id),
                    resident_id=number,
                    relatives=((declared, "other"),),
                    provenance=c.officer,
                )
            )
            bureau_staff = self.government_staff(c.code, c.code, c, "经办员", number)
            officer = _actor(bureau_staff, Role.HANDLING_STAFF, c.code, "household investigation")
            day = self.next_day()
            case = self.application(
                c,
                self.rng.choice(self.villages(c.code)),
                day - dt.timedelta(days=6),
                members=[niece],
            )
            self.investigate(case, day, 450, by=officer)
            self.decide(c, case, day, approve=True, amount=650, by=officer)
            if inject:
                self.injected.add(
                    "conflict_of_interest",
                    bureau_staff,
                    "relative declared on a contractor record, investigated under the bureau's",
                )
            else:
                self.injected.twin("conflict_of_interest", bureau_staff, "relative not involved")

    def undeclared_household(self) -> None:
        """An approver whose staff record names a member of the applicant's household decides
        the case, with no declaration at all; twin: an approver from outside the household."""
        c = self.home
        for inject in (True, False):
            spouse = HouseholdMember(
                self.person(c.code, dt.date(1969, 4, 1)), person_name(self.rng), "spouse"
            )
            number = spouse.resident_id if inject else self.person(c.code, dt.date(1968, 4, 1))
            staff = self.government_staff(c.code, c.code, c, "审批员", number, kind="approver")
            approver = _actor(staff, Role.APPROVER, c.code, "county decision")
            self.beneficiary(
                c,
                self.rng.choice(self.villages(c.code)),
                members=[self.adult(c.code), spouse],
                approver=approver,
            )
            if inject:
                self.injected.add(
                    "conflict_of_interest", staff, "approver decided her household's case"
                )
            else:
                self.injected.twin("conflict_of_interest", staff, "approver outside the household")

    def business_day(self) -> None:
        """The business day is China Standard Time: care at 06:30 Beijing time on the day after
        a term (cut short later), sent in UTC, is outside it; its twin at 23:30 Beijing time on
        the term's last day, sent from UTC-04:00, is inside. A late entry of the term's last day,
        recorded twelve days after the term ended (inside the window), is a twin too."""
        c = self.home
        end = self.today - dt.timedelta(days=30)
        for start, inject in (
            (dt.datetime.combine(end, dt.time(22, 30), dt.UTC), True),  # 06:30 CST, end + 1
            (
                dt.datetime.combine(end, dt.time(11, 30), dt.timezone(dt.timedelta(hours=-4))),
                False,  # 23:30 CST on the last day
            ),
        ):
            _, contract_id, by, recipient = self.contracted_work(
                "晨曦护理服务社" if inject else "暮光护理服务社", ["care_and_nursing"]
            )
            self.serve(
                recipient,
                start,
                start + dt.timedelta(minutes=20),
                by=by,
                contract_id=contract_id,
            )
            self.clock.at(self.today - dt.timedelta(days=8), 10)
            self.services.purchasing.amend_contract(
                AmendContract(
                    contract_id=contract_id,
                    reason="term cut short",
                    effective_from=end - dt.timedelta(days=10),
                    end=end,
                    provenance=c.officer,
                )
            )
            if inject:
                self.injected.add(
                    "work_outside_term", contract_id, "06:30 Beijing time after the term, in UTC"
                )
            else:
                self.injected.twin("work_outside_term", contract_id, "23:30 Beijing, UTC-04:00")

        # A late entry inside the window: honest.
        contractor_id, code = self.contractor(c.code, "补录护理服务社", c)
        recipient = self.beneficiary(c, self.rng.choice(self.villages(c.code)), programme="tekun")
        late = self.contract(
            contractor_id,
            c.code,
            c,
            items=["care_and_nursing"],
            awarded=self.today - dt.timedelta(days=200),
            end=self.today - dt.timedelta(days=20),
        )
        by = self.worker(late, c.code, code, c)
        last = self.today - dt.timedelta(days=20)
        self.clock.at(self.today - dt.timedelta(days=8), 10)  # twelve days after the term
        self.services.cases.record_service(
            RecordService(
                case_id=recipient.case_id,
                work_item="care_and_nursing",
                contract_id=late,
                start=_at(last, 15),
                end=_at(last, 16),
                place=recipient.village,
                provenance=by,
            )
        )
        self.injected.twin("work_outside_term", late, "late entry of the term's last day")

    def offsets(self) -> None:
        """Times sent in other offsets than Beijing's, each judged on the business day, with a
        twin on the right side of the same midnight: care at 00:30 Beijing on a ban's first day
        sent in UTC (twin: 23:30 the day before, sent in UTC+14:00); a service at 00:30 Beijing
        the day after a death sent in UTC (twin: 23:30 on the day, sent in UTC-12:00); two
        services overlapping by half an hour sent in UTC and UTC-05:00 (twin: back to back)."""
        c = self.home
        utc, east, west = (
            dt.UTC,
            dt.timezone(dt.timedelta(hours=14)),
            dt.timezone(-dt.timedelta(hours=12)),
        )
        ban_start = self.today - dt.timedelta(days=15)
        for inject in (True, False):
            contractor_id, contract_id, by, recipient = self.contracted_work(
                "启明护理服务社" if inject else "长庚护理服务社", ["care_and_nursing"]
            )
            start = (
                _at(ban_start, 0, 30).astimezone(utc)
                if inject
                else _at(ban_start - dt.timedelta(days=1), 23, 30).astimezone(east)
            )
            self.serve(
                recipient, start, start + dt.timedelta(minutes=20), by=by, contract_id=contract_id
            )
            self.clock.at(self.today - dt.timedelta(days=5), 10)
            self.services.purchasing.ban_contractor(
                BanContractor(
                    contractor_id=contractor_id,
                    start=ban_start,
                    end=self.today + dt.timedelta(days=365),
                    reason="falsified records (弄虚作假)",
                    deciding_unit=c.code,
                    provenance=self.supervisor(c.code),
                )
            )
            if inject:
                self.injected.add(
                    "work_by_banned_contractor", contract_id, "00:30 Beijing, sent in UTC"
                )
            else:
                self.injected.twin(
                    "work_by_banned_contractor", contract_id, "23:30 Beijing, UTC+14"
                )

        died = self.today - dt.timedelta(days=20)
        for inject in (True, False):
            case = self.beneficiary(c, self.rng.choice(self.villages(c.code)), programme="tekun")
            staff = self.government_staff(c.code, c.code, c, "护理员")
            by = _actor(staff, Role.HANDLING_STAFF, c.code, "care")
            start = (
                _at(died + dt.timedelta(days=1), 0, 30).astimezone(utc)
                if inject
                else _at(died, 23, 30).astimezone(west)
            )
            self.serve(case, start, start + dt.timedelta(minutes=20), by=by)
            self.clock.at(self.today - dt.timedelta(days=2), 10)
            self.services.cases.record_death(
                RecordDeath(resident_id=case.applicant, on=died, provenance=c.officer)
            )
            if inject:
                self.injected.add(
                    "record_after_death", case.case_id, "00:30 Beijing after death, UTC"
                )
            else:
                self.injected.twin("record_after_death", case.case_id, "23:30 Beijing, UTC-12")

        day = self.today - dt.timedelta(days=48)
        five_west = dt.timezone(-dt.timedelta(hours=5))
        for inject in (True, False):
            by = self.county_worker()
            for n, zone in enumerate((utc, five_west)):
                later = dt.timedelta(minutes=(30 if inject else 60) * n)
                begin = (_at(day, 9) + later).astimezone(zone)
                recipient = self.beneficiary(
                    c, self.rng.choice(self.villages(c.code)), programme="tekun"
                )
                self.serve(
                    recipient,
                    begin,
                    begin + dt.timedelta(hours=1),
                    by=by,
                    contract_id=c.contract_id,
                )
            if inject:
                self.injected.add("overlapping_records", by.actor.id, "overlap across offsets")
            else:
                self.injected.twin(
                    "overlapping_records", by.actor.id, "back to back across offsets"
                )

    def more_variants(self) -> None:
        """Home visits over the ceiling on one Beijing day, some sent in UTC (their UTC date is
        the day before; twin: eight on the day and a ninth at 23:30 the day before, sent in
        UTC+14:00, whose own date is the day); service hours over a day by one person on two
        contractors' rosters (twin: two people)."""
        c = self.home
        utc, east = dt.UTC, dt.timezone(dt.timedelta(hours=14))
        day = self.today - dt.timedelta(days=31)
        for inject in (True, False):
            staff = self.government_staff(c.code, c.code, c, "调查员")
            by = _actor(staff, Role.HANDLING_STAFF, c.code, "household investigation")
            moments = [
                (_at(day, 6 + n) if n % 2 else _at(day, 6 + n).astimezone(utc)) for n in range(9)
            ]
            if not inject:
                moments[-1] = _at(day - dt.timedelta(days=1), 23, 30).astimezone(east)
            for moment in moments:
                case = self.application(
                    c, self.rng.choice(self.villages(c.code)), day - dt.timedelta(days=5)
                )
                self.clock.set(moment + dt.timedelta(hours=8))
                self.services.cases.investigate_case(
                    InvestigateCase(
                        case_id=case.case_id,
                        means_test=MeansTest(
                            (IncomeItem("wages", Decimal(self.rng.randrange(300, 800, 10))),),
                            (),
                            1,
                            HomeVisit(moment, case.village, by.actor.id),
                        ),
                        contract_id=None,
                        provenance=by,
                    )
                )
            if inject:
                self.injected.add(
                    "home_visits_over_ceiling", staff, "nine visits, half sent in UTC"
                )
            else:
                self.injected.twin("home_visits_over_ceiling", staff, "eight, one the day before")

        home_code = c.worker.actor.organisation
        other_id, other_code = self.contractor(c.code, "同济护理服务社", c)
        other = self.contract(
            other_id,
            c.code,
            c,
            items=["care_and_nursing"],
            awarded=self.today - dt.timedelta(days=120),
        )
        day = self.today - dt.timedelta(days=44)
        for inject in (True, False):
            first = self.person(c.code, dt.date(1982, 7, 1))
            second = first if inject else self.person(c.code, dt.date(1983, 7, 1))
            a = self.worker(c.contract_id, c.code, home_code, c, first)
            b = self.worker(other, c.code, other_code, c, second)
            for by, contract_id, hours in ((a, c.contract_id, (0, 13)), (b, other, (11, 24))):
                recipient = self.beneficiary(
                    c, self.rng.choice(self.villages(c.code)), programme="tekun"
                )
                start = _at(day, hours[0])
                self.serve(
                    recipient,
                    start,
                    start + dt.timedelta(hours=hours[1] - hours[0]) - dt.timedelta(minutes=1),
                    by=by,
                    contract_id=contract_id,
                )
            subject = min(a.actor.id, b.actor.id)
            if inject:
                self.injected.add("service_hours_over_day", subject, "26 hours on two rosters")
                self.injected.add("overlapping_records", subject, "26 hours on two rosters")
            else:
                self.injected.twin("service_hours_over_day", subject, "two people, 13 h each")
                self.injected.twin("overlapping_records", subject, "two people, 13 h each")

    # Contract money ----------------------------------------------------------------------------

    def value_raised(self) -> None:
        """The value raised three weeks after an evaluation scoring 48."""
        c = self.home
        contractor_id, _ = self.contractor(c.code, "众信社会工作服务中心", c)
        contract_id = self.contract(
            contractor_id,
            c.code,
            c,
            items=["care_and_nursing"],
            awarded=self.today - dt.timedelta(days=200),
        )
        self.clock.at(self.today - dt.timedelta(days=40), 10)
        self.services.purchasing.evaluate_contract(
            EvaluateContract(
                contract_id=contract_id,
                period_start=self.today - dt.timedelta(days=200),
                period_end=self.today - dt.timedelta(days=45),
                score=Decimal("48"),
                provenance=self.supervisor(c.code),
            )
        )
        self.clock.at(self.today - dt.timedelta(days=20), 10)
        self.services.purchasing.amend_contract(
            AmendContract(
                contract_id=contract_id,
                reason="expanded caseload",
                effective_from=self.today - dt.timedelta(days=20),
                value=Decimal("420000"),
                provenance=c.officer,
            )
        )
        self.injected.add(
            "value_raised_after_poor_evaluation", contract_id, "value raised after a score of 48"
        )

    def splitting(self) -> None:
        """Three awards to one contractor, each just under the threshold, within 55 days."""
        c = self.home
        contractor_id, _ = self.contractor(c.code, "同心公益服务中心", c)
        for ago, value in ((80, "960000"), (50, "985000"), (25, "930000")):
            self.contract(
                contractor_id,
                c.code,
                c,
                items=["care_and_nursing"],
                awarded=self.today - dt.timedelta(days=ago),
                value=Decimal(value),
                end=self.today + dt.timedelta(days=365),
            )
        self.injected.add("contract_splitting", contractor_id, "three awards just under 1,000,000")

        # Across purchasers: the county, its prefecture and the province buy the same care in
        # overlapping terms; twin: the county, a county of another prefecture and the province
        # (two governments' budgets: no prefecture holds three).
        other = next(
            k for k in geography_of(self.bulk).counties if k[:4] != c.code[:4]
        )  # a county of another prefecture, from the division register
        for purchasers, inject in (
            ((c.code, c.code[:4], "44"), True),
            ((c.code, other, "44"), False),
        ):
            contractor_id, _ = self.contractor(c.code, "同心公益服务中心", c)
            for (ago, value), purchaser in zip(
                ((70, "960000"), (45, "985000"), (20, "930000")), purchasers, strict=True
            ):
                self.contract(
                    contractor_id,
                    purchaser,
                    c,
                    items=["care_and_nursing"],
                    awarded=self.today - dt.timedelta(days=ago),
                    value=Decimal(value),
                    area=[purchaser if len(purchaser) == 6 else c.code],
                    end=self.today + dt.timedelta(days=365),
                )
            if inject:
                self.injected.add(
                    "contract_splitting", contractor_id, "county, prefecture and province awards"
                )
            else:
                self.injected.twin("contract_splitting", contractor_id, "two prefectures")


def build_scenario(
    bulk: Bulk,
    clock: SimulatedClock,
    *,
    households: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    variants: bool = True,
) -> Injected:
    """Write the honest province (``seed_province``), the approval county, honest contract
    administration and the injected misconduct; return what was injected. The same seed and
    size give the same scenario (ids aside: ``Injected.labels`` is equal). ``progress`` is
    told (households written, events written) as the province is written. ``variants=False``
    leaves out the variants of ``variants.py`` (the simplest form of every pattern only: a
    smaller history for tests that replay it along many paths)."""
    bulk.services.standards.set_standard(SCENARIO_STANDARD)
    province = seed_province(bulk, clock, households=households, seed=seed, progress=progress)
    return _Injector(bulk, clock, province, seed).run(households, variants=variants)


# Scoring -------------------------------------------------------------------------------------


def project_scenario(runtime: Runtime, *, config: RedFlagsConfig | None = None) -> None:
    """Run the red-flags projection (``scenario_projection(config)``) to the head of the log."""
    runtime.projection_runner(scenario_projection(config)).catch_up()


def open_alerts(cursor: Cursor[Any]) -> list[tuple[str, str, str]]:
    """(rule, subject_id, reason) of every open alert, in a stable order."""
    cursor.execute(
        "SELECT rule, subject_id, reason FROM read_models.alerts WHERE status = 'open'"
        " ORDER BY rule, subject_id, key"
    )
    return [(row[0], row[1], row[2]) for row in cursor.fetchall()]


def score(cursor: Cursor[Any], injected: Injected) -> dict[str, dict[str, Any]]:
    """Per rule (in the engine's order): the variants it is expected to find (``injected``:
    their subjects) and how many of them carry an alert (``detected``, ``recall``); the open
    alerts (``found``), those on injected subjects (``true_positives``) and the rest
    (``false_positives``, ``precision``: None without alerts); the honest near-miss twins and
    how many carry an alert (``near_misses_flagged``, counted among the false positives); the
    known gaps (variants injected that the rule cannot catch) and how many were found anyway.

    Precision counts alerts (one subject may carry several: every payment after a death is an
    alert of its own); recall counts injected subjects."""
    alerts: dict[str, list[str]] = defaultdict(list)
    for rule, subject, _ in open_alerts(cursor):
        alerts[rule].append(subject)
    scores: dict[str, dict[str, Any]] = {}
    for name in RULE_NAMES:
        expected = injected.expected(name)
        subjects = alerts.get(name, [])
        flagged = set(subjects)
        true_positives = sum(1 for s in subjects if s in injected.subjects(name))
        detected = len(expected & flagged)
        twins = injected.twins(name)
        gaps = injected.gaps(name)
        scores[name] = {
            "injected": len(expected),
            "detected": detected,
            "recall": detected / len(expected) if expected else None,
            "found": len(subjects),
            "true_positives": true_positives,
            "false_positives": len(subjects) - true_positives,
            "precision": true_positives / len(subjects) if subjects else None,
            "near_misses": len(twins),
            "near_misses_flagged": len(twins & flagged),
            "gaps": len(gaps),
            "gaps_found": len(gaps & flagged),
        }
    return scores


def overall(scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The totals over every rule: variants expected and detected, alerts right and wrong,
    twins flagged, and the false alerts on honest activity (neither injected nor a twin)."""
    injected = sum(int(s["injected"]) for s in scores.values())
    detected = sum(int(s["detected"]) for s in scores.values())
    found = sum(int(s["found"]) for s in scores.values())
    true_positives = sum(int(s["true_positives"]) for s in scores.values())
    false_positives = found - true_positives
    twins_flagged = sum(int(s["near_misses_flagged"]) for s in scores.values())
    return {
        "injected": injected,
        "detected": detected,
        "recall": detected / injected if injected else None,
        "found": found,
        "precision": true_positives / found if found else None,
        "near_misses": sum(int(s["near_misses"]) for s in scores.values()),
        "near_misses_flagged": twins_flagged,
        "gaps": sum(int(s["gaps"]) for s in scores.values()),
        "gaps_found": sum(int(s["gaps_found"]) for s in scores.values()),
        "false_positives": false_positives,
    }


def false_positives(cursor: Cursor[Any], injected: Injected) -> list[tuple[str, str, str]]:
    """The open alerts on subjects nothing was injected on for their rule: (rule, subject,
    reason)."""
    return [
        (rule, subject, reason)
        for rule, subject, reason in open_alerts(cursor)
        if subject not in injected.subjects(rule)
    ]


def honest_alert_rate(scores: dict[str, dict[str, Any]], injected: Injected) -> float:
    """False-positive alerts per honest household."""
    total = sum(int(s["false_positives"]) for s in scores.values())
    return total / max(1, injected.honest_households)


def _figure(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def honest_false_alerts(cursor: Cursor[Any], injected: Injected) -> list[tuple[str, str, str]]:
    """The open alerts on subjects that are neither injected nor a near-miss twin, for their
    rule: raised by honest activity."""
    return [
        (rule, subject, reason)
        for rule, subject, reason in false_positives(cursor, injected)
        if subject not in injected.twins(rule)
    ]


def scenario_report(
    scores: dict[str, dict[str, Any]],
    injected: Injected | None = None,
    honest_alerts: int | None = None,
) -> str:
    """The per-rule figures as a markdown table, the overall line, and (given ``injected``)
    the scenario, its honest false alerts and the rules nothing was injected for."""
    lines = [
        "| rule | variants | found | recall | alerts | precision | twins | twins flagged "
        "| known gaps (found) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rule, s in scores.items():
        lines.append(
            f"| {rule} | {s['injected']} | {s['detected']} | {_figure(s['recall'])} | "
            f"{s['found']} | {_figure(s['precision'])} | {s['near_misses']} | "
            f"{s['near_misses_flagged']} | {s['gaps']} ({s['gaps_found']}) |"
        )
    total = overall(scores)
    lines += [
        "",
        f"Overall: {total['detected']} of {total['injected']} variants found (recall "
        f"{_figure(total['recall'])}); {total['found']} alerts, precision "
        f"{_figure(total['precision'])}; {total['near_misses_flagged']} of "
        f"{total['near_misses']} near-miss twins flagged; known gaps {total['gaps']} "
        f"(found {total['gaps_found']}).",
    ]
    if injected is not None:
        honest = (
            total["false_positives"] - total["near_misses_flagged"]
            if honest_alerts is None
            else honest_alerts
        )
        lines += [
            f"Scenario: seed {injected.seed}, {injected.households} province households, "
            f"{injected.honest_households} honest households in all, counties "
            f"{', '.join(injected.counties)}.",
            f"False alerts on honest activity (subjects neither injected nor a twin): {honest} "
            f"({100 * honest / max(1, injected.honest_households):.1f} per 100 honest "
            "households).",
        ]
        for rule, why in injected.not_injected.items():
            lines.append(f"Not injected: {rule}: {why}.")
    return "\n".join(lines)
