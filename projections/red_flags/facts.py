"""The rules' state: facts taken from events, kept in the projection's own tables.

The rules do not keep private copies of the same facts: one fact store, written here before any
rule runs, is read by every rule that needs it (the table comments say which). Every row comes
from one event and names its position, so evidence can point back at the log; inserts are keyed
by position and updates are conditional, so applying an event twice changes nothing.

A batch is applied as sets: the rows it changes are read once (``FactBatch.load``), each
event's handler folds it into them in memory, in order, and each table is written with one
statement (``FactBatch.write``).

Facts that join across aggregates (a case and its applicant's person, a record and its contract,
a staff member's declaration and the cases they acted on) are joined when a rule evaluates, never
when stored, so either side may arrive first.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain.case import ReliefCase
from domain.clock import business_date
from domain.contract import Contract
from domain.contractor import Contractor
from domain.household import Household
from domain.living_standards import LivingStandard
from domain.person import Person
from domain.staff import StaffMember
from domain.values import period_start
from projections.base import RecordedEvent, handles
from projections.payloads import (
    home_visit_of,
    means_test_correction,
    monthly_income,
    payment_correction,
    relatives_of,
    terms_of,
)
from projections.red_flags.config import RedFlagsConfig
from projections.red_flags.engine import collect_handlers
from projections.sets import (
    Column,
    Step,
    arrays,
    insert,
    meanwhile,
    read_where_in,
    run_together,
    unnest,
    upsert,
)

HouseholdRegistered = Household.Registered
ContractorRegistered = Contractor.Registered

FACT_TABLES = (
    # The configuration this generation is built with (see config.py).
    """CREATE TABLE rf_config (
        only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        fingerprint text NOT NULL,
        document jsonb NOT NULL
    )""",
    # Cases: who applied (blind index), where, the decision, death and closure.
    # Read by nearly every case rule.
    """CREATE TABLE rf_case (
        case_id uuid PRIMARY KEY,
        person_id uuid,
        claim_position bigint,
        household_id uuid,
        village text,
        county text,
        programme text,
        received_position bigint,
        investigating_contractor uuid,
        decision text CHECK (decision IN ('approved', 'rejected')),
        decision_position bigint,
        died_on date,
        died_position bigint,
        closed_at timestamptz,
        closed_on date,
        closed_position bigint
    )""",
    "CREATE INDEX rf_case_person ON rf_case (person_id)",
    "CREATE INDEX rf_case_household ON rf_case (household_id)",
    "CREATE INDEX rf_case_approved ON rf_case (county, investigating_contractor,"
    " decision_position) WHERE decision = 'approved'",
    # Decided cases per county and investigating contractor (GOVERNMENT: none), kept as counts
    # so a decision costs the same however many came before. Read by approval_rate.py.
    """CREATE TABLE rf_decision_count (
        county text NOT NULL,
        investigated_by uuid NOT NULL,
        approved integer NOT NULL CHECK (approved >= 0),
        decided integer NOT NULL CHECK (decided >= approved),
        PRIMARY KEY (county, investigated_by)
    )""",
    # Periods a case was active (approved, not suspended) or suspended.
    # Read by people.py (concurrent cases) and eligibility.py (in suspension).
    """CREATE TABLE rf_case_interval (
        case_id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('active', 'suspended')),
        from_position bigint NOT NULL,
        from_at timestamptz NOT NULL,
        from_day date NOT NULL,
        to_position bigint,
        to_at timestamptz,
        to_day date,
        PRIMARY KEY (case_id, from_position)
    )""",
    # Dated records on cases: payments, services, investigations (with their home visit),
    # recommendations and reviews. Read by eligibility.py, contract_scope.py, workload.py,
    # place.py, household.py (each reads its own kinds). recorded_at: when the record's event
    # was recorded (the evidence times of alerts; rf_event_time holds the other events').
    """CREATE TABLE rf_record (
        position bigint PRIMARY KEY,
        case_id uuid NOT NULL,
        version integer NOT NULL,
        kind text NOT NULL
            CHECK (kind IN ('payment', 'service', 'investigation', 'recommendation', 'review')),
        actor text NOT NULL,
        visitor text,
        contractor_id uuid,
        contract_id uuid,
        work_item text,
        starts timestamptz,
        ends timestamptz,
        day date,
        contract_day date,
        place text,
        period text,
        period_start date,
        amount numeric,
        recorded_at timestamptz NOT NULL,
        void_position bigint,
        UNIQUE (case_id, version)
    )""",
    "CREATE INDEX rf_record_actor_day ON rf_record (actor, day) WHERE kind = 'service'",
    "CREATE INDEX rf_record_visitor_day ON rf_record (visitor, day) WHERE visitor IS NOT NULL",
    "CREATE INDEX rf_record_contract ON rf_record (contract_id) WHERE contract_id IS NOT NULL",
    "CREATE INDEX rf_record_contractor ON rf_record (contractor_id)"
    " WHERE contractor_id IS NOT NULL",
    # The means test in force per case (latest investigation, corrections applied), placed
    # against the eligibility line in force on the visit's day (rf_standard; line_position: the
    # standard's event). Read by bunching.py.
    """CREATE TABLE rf_means (
        case_id uuid PRIMARY KEY,
        position bigint NOT NULL,
        version integer NOT NULL,
        investigator text NOT NULL,
        village text NOT NULL,
        programme text NOT NULL,
        visited_on date NOT NULL,
        monthly_income numeric NOT NULL,
        household_size integer NOT NULL,
        per_head numeric NOT NULL,
        line numeric,
        band text CHECK (band IN ('under', 'over')),
        corrected_position bigint,
        line_position bigint
    )""",
    "CREATE INDEX rf_means_village ON rf_means (village, band, position)",
    "CREATE INDEX rf_means_investigator ON rf_means (investigator, band, position)",
    # Every figure of the local minimum-living standards (domain/living_standards.py), a
    # correction beside the figure it corrects (the later position wins). Read when placing
    # means tests (FactStore.place_means).
    """CREATE TABLE rf_standard (
        position bigint PRIMARY KEY,
        division text NOT NULL,
        programme text NOT NULL,
        effective_from date NOT NULL,
        amount numeric NOT NULL
    )""",
    "CREATE INDEX rf_standard_lookup ON rf_standard (programme, division, effective_from)",
    # Who acted on a case as investigator (investigation, home visit, recommendation, means-test
    # correction) or approver (approval, rejection, adjustment). Read by conflict.py.
    """CREATE TABLE rf_act (
        case_id uuid NOT NULL,
        actor text NOT NULL,
        role text NOT NULL CHECK (role IN ('investigator', 'approver')),
        position bigint NOT NULL,
        at timestamptz NOT NULL,
        PRIMARY KEY (case_id, actor, position)
    )""",
    "CREATE INDEX rf_act_actor ON rf_act (actor)",
    # Households: hukou village and residence. Read by place.py.
    """CREATE TABLE rf_household (
        household_id uuid PRIMARY KEY,
        registered text NOT NULL,
        residence text NOT NULL,
        position bigint NOT NULL
    )""",
    # Members a household lost (moved out, died) with the day it happened (the household's
    # own events: the member is named there by ID number only, never copied). Read by
    # household.py.
    """CREATE TABLE rf_household_loss (
        position bigint PRIMARY KEY,
        household_id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('moved out', 'died')),
        on_day date NOT NULL
    )""",
    "CREATE INDEX rf_household_loss_household ON rf_household_loss (household_id)",
    # People (blind-index ids only) and their deaths. Read by eligibility.py.
    """CREATE TABLE rf_person (
        person_id uuid PRIMARY KEY,
        died_on date,
        died_position bigint
    )""",
    # Household membership of people over time. Read by conflict.py.
    """CREATE TABLE rf_membership (
        person_id uuid NOT NULL,
        household_id uuid NOT NULL,
        from_position bigint NOT NULL,
        from_at timestamptz NOT NULL,
        to_position bigint,
        to_at timestamptz,
        PRIMARY KEY (person_id, from_position)
    )""",
    "CREATE INDEX rf_membership_household ON rf_membership (household_id)",
    # Staff members: the actor id they act under (str of the staff UUID), employer, their person
    # (blind index, named at hire or by declaring; person_position: the event that named it) and
    # declared relatives' person ids → kinship. Read by conflict.py and workload.py.
    """CREATE TABLE rf_staff (
        staff_id uuid PRIMARY KEY,
        actor_id text NOT NULL UNIQUE,
        name text NOT NULL,
        contractor_id uuid,
        person_id uuid,
        relatives jsonb NOT NULL DEFAULT '{}'::jsonb,
        declared_position bigint,
        person_position bigint
    )""",
    "CREATE INDEX rf_staff_person ON rf_staff (person_id) WHERE person_id IS NOT NULL",
    # Contractors' names, for reason texts.
    """CREATE TABLE rf_contractor (
        contractor_id uuid PRIMARY KEY, name text NOT NULL, position bigint NOT NULL
    )""",
    # Contracts as awarded, and every version of their terms with the day it takes effect.
    # Read by contract_scope.py and money.py.
    """CREATE TABLE rf_contract (
        contract_id uuid PRIMARY KEY,
        contractor_id uuid NOT NULL,
        purchaser text NOT NULL,
        awarded_on date NOT NULL,
        award_value numeric NOT NULL,
        position bigint NOT NULL
    )""",
    "CREATE INDEX rf_contract_contractor ON rf_contract (contractor_id, purchaser)",
    """CREATE TABLE rf_contract_terms (
        position bigint PRIMARY KEY,
        contract_id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('awarded', 'amended', 'renewed')),
        effective_from date NOT NULL,
        work_items text[] NOT NULL,
        service_area text[] NOT NULL,
        term_start date NOT NULL,
        term_end date NOT NULL,
        value numeric NOT NULL,
        recorded_at timestamptz NOT NULL
    )""",
    # With position: the terms in force on a day, the latest of the day, read backwards
    # (contract_scope.py), one probe, not a scan and a sort.
    "CREATE INDEX rf_contract_terms_contract ON rf_contract_terms"
    " (contract_id, effective_from, position)",
    # Money, performance and misconduct facts of contracts (invoices, evaluations,
    # terminations) and contractors (bans). Read by contract_scope.py and money.py.
    """CREATE TABLE rf_purchase_fact (
        position bigint PRIMARY KEY,
        subject_id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('invoice', 'evaluation', 'termination', 'ban')),
        recorded_at timestamptz NOT NULL,
        amount numeric,
        score numeric,
        effective_at timestamptz,
        day_from date,
        day_to date
    )""",
    "CREATE INDEX rf_purchase_fact_subject ON rf_purchase_fact (subject_id, kind)",
)


#: The first day of a month 'YYYY-MM' (payments name a few months, over and over).
_month_start = functools.lru_cache(maxsize=4096)(period_start)

#: ``investigated_by`` of cases no contractor investigated.
GOVERNMENT = UUID(int=0)


def band_of(per_head: Decimal, line: Decimal | None, band: Decimal) -> str | None:
    """'under' when per_head lies in [line − band·line, line), 'over' in [line, line +
    band·line), else None."""
    if line is None:
        return None
    width = line * band
    if line - width <= per_head < line:
        return "under"
    if line <= per_head < line + width:
        return "over"
    return None


class FactStore:
    """Folds each event of a batch into the batch's facts. Handlers are
    ``(self, batch, recorded)``."""

    tables = FACT_TABLES

    def __init__(self, config: RedFlagsConfig) -> None:
        self.config = config
        self._handlers = collect_handlers(type(self))

    def events(self) -> set[type]:
        return set(self._handlers)

    def apply_batch(
        self, cursor: Cursor[Any], events: Sequence[RecordedEvent], *also: Step[Any]
    ) -> list[Any]:
        """Fold the batch's events into the facts and write them; ``also``: steps read with
        the facts the batch changes (their results are returned)."""
        batch, results = FactBatch.load(cursor, events, *also)
        for recorded in events:
            if type(recorded.event) not in _RECORD_EVENTS:  # a record keeps its own time
                batch.event_times.append((recorded.position, recorded.timestamp))
            for handler in self._handlers.get(type(recorded.event), ()):
                handler(self, batch, recorded)
        batch.write(cursor)
        meanwhile()  # the writes run on the server meanwhile; place_means waits for them
        self.place_means(cursor, batch)
        return results

    def place_means(self, cursor: Cursor[Any], batch: FactBatch) -> None:
        """Place against the line the means tests the batch changed, and those a standard of
        the batch covers (its programme, a village inside its division, visited on or after
        its date): the line is the standard in force on the visit's day as the facts now
        know it, whichever arrived first."""
        if not batch.changed_means and not batch.standards:
            return
        # By key for the batch's means tests; a standard of the batch reads the whole table
        # (a prefix of the village), which only the rare batches holding one pay for.
        which = ["t.case_id = ANY(%(cases)b::uuid[])"]
        if batch.standards:
            which.append(
                "EXISTS (SELECT 1 FROM unnest(%(divisions)s::text[], %(programmes)s::text[],"
                " %(froms)s::date[]) n(division, programme, effective_from)"
                " WHERE t.programme = n.programme AND t.visited_on >= n.effective_from"
                " AND left(t.village, length(n.division)) = n.division)"
            )
        cursor.execute(
            "SELECT t.case_id, t.per_head, s.amount, s.position FROM rf_means t"
            " LEFT JOIN LATERAL (SELECT amount, position FROM rf_standard s"
            " WHERE s.programme = t.programme AND s.effective_from <= t.visited_on"
            " AND left(t.village, length(s.division)) = s.division"
            " ORDER BY length(s.division) DESC, s.effective_from DESC, s.position DESC LIMIT 1"
            f") s ON true WHERE {' OR '.join(which)}",
            {
                "cases": sorted(batch.changed_means),
                "divisions": [s[1] for s in batch.standards],
                "programmes": [s[2] for s in batch.standards],
                "froms": [s[3] for s in batch.standards],
            },
        )
        placed = [
            (case_id, line, band_of(per_head, line, self.config.bunching_band), position)
            for case_id, per_head, line, position in cursor.fetchall()
        ]
        if placed:
            cursor.execute(
                "UPDATE rf_means m SET line = p.line, band = p.band, line_position = p.position"
                " FROM "
                + unnest(
                    _columns("case_id uuid", "line numeric", "band text", "position bigint"), "p"
                )
                + " WHERE m.case_id = p.case_id AND (m.line, m.band, m.line_position)"
                " IS DISTINCT FROM (p.line, p.band, p.position)",
                arrays(placed, 4),
            )

    # Cases ---------------------------------------------------------------------------------

    @handles(ReliefCase.ApplicationReceived)
    def received(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        case = batch.case(recorded.originator_id, create=True)
        case.update(
            household_id=e.household_id,
            village=e.registered_division,
            county=e.jurisdiction_county,
            programme=e.programme,
            received_position=recorded.position,
        )

    @staticmethod
    def _record(batch: FactBatch, recorded: RecordedEvent, **columns: Any) -> None:
        # A row of RECORD_COLUMNS filled by index (a dict per record, then its values, was a
        # twentieth of the runner's Python in catch-up: half the log is records).
        e = recorded.event
        row: list[Any] = [
            recorded.position,
            recorded.originator_id,
            recorded.originator_version,
            None,
            e.provenance.actor.id,
            *_RECORD_BLANK,
            e.timestamp,
        ]
        for name, value in columns.items():
            row[_RECORD_INDEX[name]] = value
        batch.records.append(tuple(row))

    @staticmethod
    def _act(batch: FactBatch, recorded: RecordedEvent, actor: str, role: str) -> None:
        batch.acts.append(
            (recorded.originator_id, actor, role, recorded.position, recorded.timestamp)
        )

    @handles(ReliefCase.Investigated)
    def investigated(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        visit = home_visit_of(e)
        self._record(
            batch,
            recorded,
            kind="investigation",
            visitor=visit.visitor,
            contractor_id=e.contractor_id,
            contract_id=e.contract_id,
            work_item="household_investigation",
            starts=visit.at,
            day=business_date(visit.at),
            contract_day=business_date(visit.at),  # the day the contract check judges
            place=visit.place,
        )
        self._act(batch, recorded, e.provenance.actor.id, "investigator")
        self._act(batch, recorded, visit.visitor, "investigator")
        case = batch.case(recorded.originator_id)
        if case is None:
            raise LookupError(f"case {recorded.originator_id} was never received")
        case["investigating_contractor"] = e.contractor_id
        village, programme = case["village"], case["programme"]
        income = e.means_test.monthly_income
        per_head = income / e.means_test.household_size
        means = batch.means.get(recorded.originator_id)
        if means is not None and means["position"] >= recorded.position:
            return  # a later means test is in force already
        batch.means[recorded.originator_id] = {
            "case_id": recorded.originator_id,
            "position": recorded.position,
            "version": recorded.originator_version,
            "investigator": e.provenance.actor.id,
            "village": village,
            "programme": programme,
            "visited_on": business_date(visit.at),
            "monthly_income": income,
            "household_size": e.means_test.household_size,
            "per_head": per_head,
            "line": None,  # placed once the batch is written (place_means)
            "band": None,
            "corrected_position": None,
            "line_position": None,
        }
        batch.changed_means.add(recorded.originator_id)

    @handles(ReliefCase.Recommended)
    def recommended(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        self._record(
            batch,
            recorded,
            kind="recommendation",
            contractor_id=e.contractor_id,
            contract_id=e.contract_id,
            work_item="household_investigation",
            starts=recorded.timestamp,
            day=business_date(recorded.timestamp),
            contract_day=business_date(recorded.timestamp),
        )
        self._act(batch, recorded, e.provenance.actor.id, "investigator")

    def _decided(self, batch: FactBatch, recorded: RecordedEvent, decision: str) -> None:
        case = batch.case(recorded.originator_id)
        if case is not None and case["decision"] is None:  # counted once, however often applied
            case.update(decision=decision, decision_position=recorded.position)
            counts = batch.decisions.setdefault(
                (case["county"], case["investigating_contractor"] or GOVERNMENT), [0, 0]
            )
            counts[0] += decision == "approved"
            counts[1] += 1
        self._act(batch, recorded, recorded.event.provenance.actor.id, "approver")

    @handles(ReliefCase.Approved)
    def approved(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        self._decided(batch, recorded, "approved")
        batch.intervals.move(recorded, "active")

    @handles(ReliefCase.Rejected)
    def rejected(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        self._decided(batch, recorded, "rejected")

    @handles(ReliefCase.Reviewed)
    def reviewed(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        # Every review is dated (household.py: a shrunken household reviewed since).
        self._record(
            batch,
            recorded,
            kind="review",
            starts=recorded.timestamp,
            day=business_date(recorded.timestamp),
            amount=recorded.event.new_monthly_amount,
        )
        if recorded.event.new_monthly_amount is not None:  # an adjustment is a decision
            self._act(batch, recorded, recorded.event.provenance.actor.id, "approver")

    @handles(ReliefCase.Suspended)
    def suspended(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        batch.intervals.move(recorded, "suspended")

    @handles(ReliefCase.Resumed)
    def resumed(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        batch.intervals.move(recorded, "active")

    @handles(ReliefCase.Closed)
    def closed(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        batch.intervals.move(recorded, None)
        case = batch.case(recorded.originator_id)
        if case is not None:
            case.update(
                closed_at=recorded.timestamp,
                closed_on=business_date(recorded.timestamp),
                closed_position=recorded.position,
            )

    @handles(ReliefCase.BeneficiaryDied)
    def beneficiary_died(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        case = batch.case(recorded.originator_id)
        if case is not None:
            case.update(died_on=recorded.event.on, died_position=recorded.position)

    @handles(ReliefCase.PaymentRecorded)
    def payment(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        self._record(
            batch,
            recorded,
            kind="payment",
            period=e.period,
            period_start=_month_start(e.period),
            amount=e.amount,
        )

    @handles(ReliefCase.ServiceRecorded)
    def service(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        self._record(
            batch,
            recorded,
            kind="service",
            contractor_id=e.contractor_id,
            contract_id=e.contract_id,
            work_item=e.work_item,
            starts=e.start,
            ends=e.end,
            day=business_date(e.start),
            contract_day=business_date(e.start),  # the day the contract check judges
            place=e.place,
        )

    @handles(ReliefCase.RecordCorrected)
    def corrected(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        target = (recorded.originator_id, e.corrects_version, e.corrects)
        if e.corrects == "payment":
            amount = payment_correction(e)
            _, void = batch.corrections.get(target, (None, None))
            batch.corrections[target] = (amount, recorded.position if amount == 0 else void)
        elif e.corrects == "service":
            if target not in batch.corrections:  # the first void counts
                batch.corrections[target] = (None, recorded.position)
        else:
            # Whoever corrects the means test has investigated (as the domain says).
            self._act(batch, recorded, e.provenance.actor.id, "investigator")
            self._correct_means(batch, recorded)

    def _correct_means(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        means = batch.means.get(recorded.originator_id)
        if means is None or means["version"] != e.corrects_version:
            return  # a superseded investigation: the means test in force is a later one
        income, size = means["monthly_income"], means["household_size"]
        changes = means_test_correction(e)
        if changes.income_items is not None:
            income = monthly_income(changes.income_items)
        if changes.household_size is not None:
            size = changes.household_size
        per_head = Decimal(income) / size
        means.update(
            monthly_income=income,
            household_size=size,
            per_head=per_head,  # placed again once the batch is written (place_means)
            corrected_position=recorded.position,
        )
        batch.changed_means.add(recorded.originator_id)

    # People and households -----------------------------------------------------------------

    @handles(Person.CaseClaimed)
    def claimed(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        case = batch.case(recorded.event.case_id, create=True)
        case.update(person_id=recorded.originator_id, claim_position=recorded.position)

    @handles(Person.Registered)
    def person_registered(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        batch.people.setdefault(recorded.originator_id, (None, None))
        batch.memberships.move(recorded, recorded.event.household_id)

    @handles(Person.HouseholdChanged)
    def household_changed(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        batch.memberships.move(recorded, recorded.event.household_id)

    @handles(Person.Died)
    def person_died(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        batch.people[recorded.originator_id] = (recorded.event.on, recorded.position)

    @handles(HouseholdRegistered)
    def household_registered(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        batch.households.append(
            (
                recorded.originator_id,
                e.registered_division,
                e.residence_division,
                recorded.position,
            )
        )

    @handles(Household.MemberMovedOut, Household.MemberDied)
    def member_lost(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        kind = "died" if isinstance(recorded.event, Household.MemberDied) else "moved out"
        batch.losses.append((recorded.position, recorded.originator_id, kind, recorded.event.on))

    # Staff ---------------------------------------------------------------------------------

    @handles(StaffMember.Hired)
    def hired(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        staff = batch.staff.setdefault(
            recorded.originator_id,
            {
                "staff_id": recorded.originator_id,
                "actor_id": str(recorded.originator_id),
                "person_id": None,
                "relatives": {},
                "declared_position": None,
                "person_position": None,
            },
        )
        staff.update(name=e.name, contractor_id=e.contractor_id)
        if e.person_id is not None:  # the person named at hire (older records: by declaring)
            staff.update(person_id=e.person_id, person_position=recorded.position)
        batch.changed_staff.add(recorded.originator_id)

    @handles(StaffMember.InterestsDeclared)
    def interests_declared(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        staff = batch.staff.get(recorded.originator_id)
        if staff is None:
            raise LookupError(f"staff member {recorded.originator_id} was never hired")
        declared = staff["declared_position"]
        if declared is None or declared < recorded.position:
            staff.update(
                person_id=e.person_id,
                relatives=relatives_of(e),
                declared_position=recorded.position,
            )
            if staff.get("person_position") is None:
                staff["person_position"] = recorded.position
            batch.changed_staff.add(recorded.originator_id)

    # Minimum-living standards --------------------------------------------------------------

    @handles(LivingStandard.StandardSet, LivingStandard.StandardCorrected)
    def standard(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        batch.standards.append(
            (recorded.position, e.division, e.programme, e.effective_from, e.monthly_amount)
        )

    # Contractors and contracts -------------------------------------------------------------

    @handles(ContractorRegistered)
    def contractor_registered(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        batch.contractors.append((recorded.originator_id, recorded.event.name, recorded.position))

    @handles(Contractor.Banned)
    def banned(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        batch.purchase_fact(recorded, "ban", day_from=e.start, day_to=e.end)

    @handles(Contract.Awarded)
    def awarded(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        batch.contracts.append(
            (
                recorded.originator_id,
                e.contractor_id,
                e.purchaser,
                e.awarded_on,
                e.terms.value,
                recorded.position,
            )
        )
        t = terms_of(e)
        batch.terms(
            recorded, "awarded", dt.date.min, t.work_items, t.service_area, t.start, t.end, t.value
        )

    @handles(Contract.Amended, Contract.Renewed)
    def terms_changed(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        t = terms_of(e)
        batch.terms(
            recorded,
            "amended" if isinstance(e, Contract.Amended) else "renewed",
            e.effective_from,
            t.work_items,
            t.service_area,
            t.start,
            t.end,
            t.value,
        )

    @handles(Contract.Invoiced)
    def invoiced(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        batch.purchase_fact(
            recorded, "invoice", amount=e.amount, day_from=e.period_start, day_to=e.period_end
        )

    @handles(Contract.Evaluated)
    def evaluated(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        batch.purchase_fact(
            recorded, "evaluation", score=e.score, day_from=e.period_start, day_to=e.period_end
        )

    @handles(Contract.Terminated)
    def terminated(self, batch: FactBatch, recorded: RecordedEvent) -> None:
        batch.purchase_fact(recorded, "termination", effective_at=recorded.event.effective_at)


def _columns(*spec: str) -> tuple[Column, ...]:
    """Columns from "name type" strings."""
    return tuple((item.split()[0], item.split()[1]) for item in spec)


CASE_COLUMNS = _columns(
    "case_id uuid",
    "person_id uuid",
    "claim_position bigint",
    "household_id uuid",
    "village text",
    "county text",
    "programme text",
    "received_position bigint",
    "investigating_contractor uuid",
    "decision text",
    "decision_position bigint",
    "died_on date",
    "died_position bigint",
    "closed_at timestamptz",
    "closed_on date",
    "closed_position bigint",
)
RECORD_COLUMNS = _columns(
    "position bigint",
    "case_id uuid",
    "version integer",
    "kind text",
    "actor text",
    "visitor text",
    "contractor_id uuid",
    "contract_id uuid",
    "work_item text",
    "starts timestamptz",
    "ends timestamptz",
    "day date",
    "contract_day date",
    "place text",
    "period text",
    "period_start date",
    "amount numeric",
    "recorded_at timestamptz",
)
RECORD_NAMES = [name for name, _ in RECORD_COLUMNS]
_RECORD_INDEX = {name: index for index, name in enumerate(RECORD_NAMES)}
#: The columns of a record between its actor and its recorded time, blank until given.
_RECORD_BLANK = (None,) * (len(RECORD_NAMES) - 6)
assert RECORD_NAMES[:5] == ["position", "case_id", "version", "kind", "actor"]
assert RECORD_NAMES[-1] == "recorded_at"
MEANS_COLUMNS = _columns(
    "case_id uuid",
    "position bigint",
    "version integer",
    "investigator text",
    "village text",
    "programme text",
    "visited_on date",
    "monthly_income numeric",
    "household_size integer",
    "per_head numeric",
    "line numeric",
    "band text",
    "corrected_position bigint",
    "line_position bigint",
)
STAFF_COLUMNS = _columns(
    "staff_id uuid",
    "actor_id text",
    "name text",
    "contractor_id uuid",
    "person_id uuid",
    "relatives jsonb",
    "declared_position bigint",
    "person_position bigint",
)
PURCHASE_COLUMNS = _columns(
    "position bigint",
    "subject_id uuid",
    "kind text",
    "recorded_at timestamptz",
    "amount numeric",
    "score numeric",
    "effective_at timestamptz",
    "day_from date",
    "day_to date",
)
TERMS_COLUMNS = _columns(
    "position bigint",
    "contract_id uuid",
    "kind text",
    "effective_from date",
    "work_items text",  # '{a,b}': arrays of different lengths travel as text
    "service_area text",
    "term_start date",
    "term_end date",
    "value numeric",
    "recorded_at timestamptz",
)


def _names(columns: Sequence[Column]) -> str:
    return ", ".join(name for name, _ in columns)


def _text_array(items: Sequence[str]) -> str:
    """A text[] literal of plain codes (catalogue items, division codes)."""
    return "{" + ",".join(f'"{item}"' for item in items) + "}"


class Intervals:
    """One kind of interval a batch moves (a case's activity, a person's household
    membership): each owner's open interval read once, ended and opened in memory, in order.

    An event at position p ends the owner's open intervals that began before p, and may open
    one beginning at p (kept as it is when it exists: applying an event twice changes
    nothing)."""

    def __init__(self, table: str, owner: str, columns: Sequence[Column]) -> None:
        self.table, self.owner = table, owner
        # owner, from_position, then the other columns; to_position, to_at (and to_day) last
        self.columns = ((owner, "uuid"), ("from_position", "bigint"), *columns)
        self.rows: dict[tuple[UUID, int], list[Any]] = {}
        self.open: dict[UUID, list[int]] = {}
        self.changed: set[tuple[UUID, int]] = set()

    def load(self, owners: set[UUID]) -> Step[None]:
        for row in (
            yield from read_where_in(
                f"SELECT {_names(self.columns)} FROM {self.table}"
                f" WHERE {self.owner} = ANY(%s) AND to_position IS NULL ORDER BY 1, 2",
                owners,
            )
        ):
            self.rows[(row[0], row[1])] = list(row)
            self.open.setdefault(row[0], []).append(row[1])

    def end(self, owner: UUID, position: int, ends: tuple[Any, ...]) -> None:
        still = []
        for start in self.open.pop(owner, []):
            if start < position:
                row = self.rows[(owner, start)]
                row[-len(ends) :] = ends
                self.changed.add((owner, start))
            else:
                still.append(start)
        if still:
            self.open[owner] = still

    def begin(self, owner: UUID, position: int, values: tuple[Any, ...]) -> None:
        if (owner, position) in self.rows:
            return
        self.rows[(owner, position)] = [owner, position, *values]
        self.open.setdefault(owner, []).append(position)
        self.changed.add((owner, position))

    def write(self, cursor: Cursor[Any]) -> None:
        rows = [self.rows[key] for key in sorted(self.changed)]
        # An interval ended before is never touched again (applying an event twice).
        upsert(
            cursor,
            self.table,
            self.columns,
            rows,
            key=(self.owner, "from_position"),
            where=f"{self.table}.to_position IS NULL",
        )


class CaseIntervals(Intervals):
    def __init__(self) -> None:
        super().__init__(
            "rf_case_interval",
            "case_id",
            _columns(
                "kind text",
                "from_at timestamptz",
                "from_day date",
                "to_position bigint",
                "to_at timestamptz",
                "to_day date",
            ),
        )

    def move(self, recorded: RecordedEvent, kind: str | None) -> None:
        """End the case's open interval and, unless ``kind`` is None, open one of ``kind``."""
        at, day = recorded.timestamp, business_date(recorded.timestamp)
        self.end(recorded.originator_id, recorded.position, (recorded.position, at, day))
        if kind is not None:
            self.begin(recorded.originator_id, recorded.position, (kind, at, day, None, None, None))


class Memberships(Intervals):
    def __init__(self) -> None:
        super().__init__(
            "rf_membership",
            "person_id",
            _columns(
                "household_id uuid",
                "from_at timestamptz",
                "to_position bigint",
                "to_at timestamptz",
            ),
        )

    def move(self, recorded: RecordedEvent, household_id: UUID | None) -> None:
        at = recorded.timestamp
        self.end(recorded.originator_id, recorded.position, (recorded.position, at))
        if household_id is not None:
            self.begin(recorded.originator_id, recorded.position, (household_id, at, None, None))


#: Events whose handlers read or change a case's row, means test, intervals; a person's
#: memberships; a staff member's declaration (what ``FactBatch.load`` reads first).
_CASE_ROW_EVENTS = frozenset(
    {
        ReliefCase.ApplicationReceived,
        ReliefCase.Investigated,
        ReliefCase.Approved,
        ReliefCase.Rejected,
        ReliefCase.Closed,
        ReliefCase.BeneficiaryDied,
    }
)
_MEANS_EVENTS = frozenset({ReliefCase.Investigated, ReliefCase.RecordCorrected})
_INTERVAL_EVENTS = frozenset(
    {ReliefCase.Approved, ReliefCase.Suspended, ReliefCase.Resumed, ReliefCase.Closed}
)
_MEMBERSHIP_EVENTS = frozenset({Person.Registered, Person.HouseholdChanged})
#: Events that always write a row of rf_record (``FactStore._record``), which keeps their time.
_RECORD_EVENTS = frozenset(
    {
        ReliefCase.Investigated,
        ReliefCase.Recommended,
        ReliefCase.Reviewed,
        ReliefCase.PaymentRecorded,
        ReliefCase.ServiceRecorded,
    }
)


class FactBatch:
    """The fact rows one batch touches or adds, written table by table in one statement each."""

    def __init__(self) -> None:
        self.event_times: list[tuple[int, dt.datetime]] = []
        self.cases: dict[UUID, dict[str, Any]] = {}
        self.changed_cases: set[UUID] = set()
        self.decisions: dict[tuple[str, UUID], list[int]] = {}  # -> [approved, decided]
        self.intervals = CaseIntervals()
        self.records: list[tuple[Any, ...]] = []
        # (case, version, kind) -> (amount, void position) of the corrections of a record
        self.corrections: dict[tuple[UUID, int, str], tuple[Decimal | None, int | None]] = {}
        self.means: dict[UUID, dict[str, Any]] = {}
        self.changed_means: set[UUID] = set()
        self.acts: list[tuple[Any, ...]] = []
        self.households: list[tuple[Any, ...]] = []
        self.losses: list[tuple[Any, ...]] = []
        self.people: dict[UUID, tuple[dt.date | None, int | None]] = {}
        self.memberships = Memberships()
        self.staff: dict[UUID, dict[str, Any]] = {}
        self.changed_staff: set[UUID] = set()
        self.contractors: list[tuple[Any, ...]] = []
        self.contracts: list[tuple[Any, ...]] = []
        self.contract_terms: list[tuple[Any, ...]] = []
        self.purchase_facts: list[tuple[Any, ...]] = []
        self.standards: list[tuple[Any, ...]] = []

    @classmethod
    def load(
        cls, cursor: Cursor[Any], events: Sequence[RecordedEvent], *also: Step[Any]
    ) -> tuple[FactBatch, list[Any]]:
        """The batch with the rows its events change read (all in one round of reads, with
        the steps ``also``, whose results come second)."""
        batch = cls()
        cases, means, intervals, people, staff = set(), set(), set(), set(), set()
        for recorded in events:
            kind = type(recorded.event)
            if kind in _CASE_ROW_EVENTS:
                cases.add(recorded.originator_id)
            elif kind is Person.CaseClaimed:
                cases.add(recorded.event.case_id)
            if kind in _MEANS_EVENTS:
                means.add(recorded.originator_id)
            if kind in _INTERVAL_EVENTS:
                intervals.add(recorded.originator_id)
            if kind in _MEMBERSHIP_EVENTS:
                people.add(recorded.originator_id)
            if kind is StaffMember.InterestsDeclared:
                staff.add(recorded.originator_id)
        results = run_together(
            cursor,
            [
                batch._load_rows(batch.cases, CASE_COLUMNS, "rf_case", "case_id", cases),
                batch._load_rows(batch.means, MEANS_COLUMNS, "rf_means", "case_id", means),
                batch.intervals.load(intervals),
                batch.memberships.load(people),
                batch._load_rows(batch.staff, STAFF_COLUMNS, "rf_staff", "staff_id", staff),
                *also,
            ],
        )
        return batch, results[5:]

    @staticmethod
    def _load_rows(
        into: dict[UUID, dict[str, Any]],
        columns: Sequence[Column],
        table: str,
        key: str,
        keys: set[UUID],
    ) -> Step[None]:
        names = [name for name, _ in columns]
        query = f"SELECT {', '.join(names)} FROM {table} WHERE {key} = ANY(%s)"
        for row in (yield from read_where_in(query, keys)):
            into[row[0]] = dict(zip(names, row, strict=True))

    def case(self, case_id: UUID, *, create: bool = False) -> Any:
        """The case's row (to change), or None when unknown (made blank with ``create``)."""
        case = self.cases.get(case_id)
        if case is None:
            if not create:
                return None
            case = self.cases[case_id] = {name: None for name, _ in CASE_COLUMNS}
            case["case_id"] = case_id
        self.changed_cases.add(case_id)
        return case

    def terms(
        self,
        recorded: RecordedEvent,
        kind: str,
        effective_from: dt.date,
        work_items: Sequence[str],
        service_area: Sequence[str],
        start: dt.date,
        end: dt.date,
        value: Decimal,
    ) -> None:
        self.contract_terms.append(
            (
                recorded.position,
                recorded.originator_id,
                kind,
                effective_from,
                _text_array(work_items),
                _text_array(service_area),
                start,
                end,
                value,
                recorded.timestamp,
            )
        )

    def purchase_fact(self, recorded: RecordedEvent, kind: str, **columns: Any) -> None:
        row = dict.fromkeys(name for name, _ in PURCHASE_COLUMNS)
        row.update(
            position=recorded.position,
            subject_id=recorded.originator_id,
            kind=kind,
            recorded_at=recorded.timestamp,
            **columns,
        )
        self.purchase_facts.append(tuple(row.values()))

    def write(self, cursor: Cursor[Any]) -> None:
        nothing = "ON CONFLICT DO NOTHING"
        insert(
            cursor,
            "rf_event_time",
            (("position", "bigint"), ("at", "timestamptz")),
            self.event_times,
            conflict=nothing,
        )
        rows = [tuple(self.cases[c].values()) for c in sorted(self.changed_cases)]
        upsert(cursor, "rf_case", CASE_COLUMNS, rows, key=("case_id",))
        insert(
            cursor,
            "rf_decision_count",
            _columns("county text", "investigated_by uuid", "approved integer", "decided integer"),
            [(*group, *counts) for group, counts in sorted(self.decisions.items())],
            conflict="ON CONFLICT (county, investigated_by) DO UPDATE SET"
            " approved = rf_decision_count.approved + excluded.approved,"
            " decided = rf_decision_count.decided + excluded.decided",
        )
        self.intervals.write(cursor)
        # The position alone decides a repeat: a record's (case, version) is one event, at one
        # position of the log. Without a target, both unique indexes were checked before
        # every row was inserted (a second descent of the (case_id, version) index per row).
        insert(
            cursor,
            "rf_record",
            RECORD_COLUMNS,
            self.records,
            conflict="ON CONFLICT (position) DO NOTHING",
        )
        if self.corrections:
            corrections = [(*target, *change) for target, change in self.corrections.items()]
            cursor.execute(
                "UPDATE rf_record r SET amount = coalesce(c.amount, r.amount),"
                " void_position = CASE WHEN r.kind = 'payment'"
                " THEN coalesce(c.void, r.void_position) ELSE coalesce(r.void_position, c.void)"
                " END FROM "
                + unnest(
                    _columns(
                        "case_id uuid",
                        "version integer",
                        "kind text",
                        "amount numeric",
                        "void bigint",
                    ),
                    "c",
                )
                + " WHERE r.case_id = c.case_id AND r.version = c.version AND r.kind = c.kind",
                arrays(corrections, 5),
            )
        rows = [tuple(self.means[c].values()) for c in sorted(self.changed_means)]
        upsert(cursor, "rf_means", MEANS_COLUMNS, rows, key=("case_id",))
        insert(
            cursor,
            "rf_act",
            _columns(
                "case_id uuid", "actor text", "role text", "position bigint", "at timestamptz"
            ),
            self.acts,
            conflict=nothing,
        )
        insert(
            cursor,
            "rf_household",
            _columns("household_id uuid", "registered text", "residence text", "position bigint"),
            self.households,
            conflict=nothing,
        )
        insert(
            cursor,
            "rf_household_loss",
            _columns("position bigint", "household_id uuid", "kind text", "on_day date"),
            self.losses,
            conflict=nothing,
        )
        insert(
            cursor,
            "rf_person",
            _columns("person_id uuid", "died_on date", "died_position bigint"),
            [(person, *death) for person, death in sorted(self.people.items())],
            conflict="ON CONFLICT (person_id) DO UPDATE SET"
            " died_on = coalesce(excluded.died_on, rf_person.died_on),"
            " died_position = coalesce(excluded.died_position, rf_person.died_position)",
        )
        self.memberships.write(cursor)
        rows = [
            tuple(Jsonb(v) if k == "relatives" else v for k, v in self._staff_row(s))
            for s in sorted(self.changed_staff)
        ]
        upsert(cursor, "rf_staff", STAFF_COLUMNS, rows, key=("staff_id",))
        insert(
            cursor,
            "rf_contractor",
            _columns("contractor_id uuid", "name text", "position bigint"),
            self.contractors,
            conflict=nothing,
        )
        insert(
            cursor,
            "rf_contract",
            _columns(
                "contract_id uuid",
                "contractor_id uuid",
                "purchaser text",
                "awarded_on date",
                "award_value numeric",
                "position bigint",
            ),
            self.contracts,
            conflict=nothing,
        )
        if self.contract_terms:
            cursor.execute(
                f"INSERT INTO rf_contract_terms ({_names(TERMS_COLUMNS)})"
                " SELECT position, contract_id, kind, effective_from, work_items::text[],"
                " service_area::text[], term_start, term_end, value, recorded_at"
                f" FROM {unnest(TERMS_COLUMNS)} ON CONFLICT DO NOTHING",
                arrays(self.contract_terms, len(TERMS_COLUMNS)),
            )
        insert(cursor, "rf_purchase_fact", PURCHASE_COLUMNS, self.purchase_facts, conflict=nothing)
        insert(
            cursor,
            "rf_standard",
            _columns(
                "position bigint",
                "division text",
                "programme text",
                "effective_from date",
                "amount numeric",
            ),
            self.standards,
            conflict=nothing,
        )

    def _staff_row(self, staff_id: UUID) -> list[tuple[str, Any]]:
        staff = self.staff[staff_id]
        return [(name, staff[name]) for name, _ in STAFF_COLUMNS]
