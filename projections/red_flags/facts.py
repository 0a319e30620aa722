"""The rules' state: facts taken from events, kept in the projection's own tables.

The rules do not keep private copies of the same facts: one fact store, written here before any
rule runs, is read by every rule that needs it (the table comments say which). Every row comes
from one event and names its position, so evidence can point back at the log; inserts are keyed
by position and updates are conditional, so applying an event twice changes nothing.

Facts that join across aggregates (a case and its applicant's person, a record and its contract,
a staff member's declaration and the cases they acted on) are joined when a rule evaluates, never
when stored, so either side may arrive first.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain.case import ReliefCase
from domain.clock import business_date
from domain.contract import Contract, Terms
from domain.contractor import Contractor
from domain.household import Household
from domain.person import Person
from domain.staff import StaffMember
from domain.values import period_start
from projections.base import RecordedEvent, handles
from projections.red_flags.config import RedFlagsConfig
from projections.red_flags.engine import collect_handlers

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
    # Dated records on cases: payments, services, investigations (with their home visit) and
    # recommendations. Read by eligibility.py, contract_scope.py, workload.py, place.py.
    """CREATE TABLE rf_record (
        position bigint PRIMARY KEY,
        case_id uuid NOT NULL,
        version integer NOT NULL,
        kind text NOT NULL
            CHECK (kind IN ('payment', 'service', 'investigation', 'recommendation')),
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
        void_position bigint,
        UNIQUE (case_id, version)
    )""",
    "CREATE INDEX rf_record_actor_day ON rf_record (actor, day) WHERE kind = 'service'",
    "CREATE INDEX rf_record_visitor_day ON rf_record (visitor, day) WHERE visitor IS NOT NULL",
    "CREATE INDEX rf_record_contract ON rf_record (contract_id) WHERE contract_id IS NOT NULL",
    "CREATE INDEX rf_record_contractor ON rf_record (contractor_id)"
    " WHERE contractor_id IS NOT NULL",
    # The means test in force per case (latest investigation, corrections applied), placed
    # against the eligibility line. Read by bunching.py.
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
        corrected_position bigint
    )""",
    "CREATE INDEX rf_means_village ON rf_means (village, band, position)",
    "CREATE INDEX rf_means_investigator ON rf_means (investigator, band, position)",
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
    # Staff members: the actor id they act under (str of the staff UUID), employer, and their
    # declared interests (own person id, relatives' person ids → kinship). Read by conflict.py.
    """CREATE TABLE rf_staff (
        staff_id uuid PRIMARY KEY,
        actor_id text NOT NULL UNIQUE,
        name text NOT NULL,
        contractor_id uuid,
        person_id uuid,
        relatives jsonb NOT NULL DEFAULT '{}'::jsonb,
        declared_position bigint
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
    "CREATE INDEX rf_contract_terms_contract ON rf_contract_terms (contract_id, effective_from)",
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
    """Writes the facts of one event. Handlers are ``(self, cursor, recorded)``."""

    tables = FACT_TABLES

    def __init__(self, config: RedFlagsConfig) -> None:
        self.config = config
        self._handlers = collect_handlers(type(self))

    def events(self) -> set[type]:
        return set(self._handlers)

    def apply(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        for handler in self._handlers.get(type(recorded.event), ()):
            handler(self, cursor, recorded)

    # Cases ---------------------------------------------------------------------------------

    @handles(ReliefCase.ApplicationReceived)
    def received(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        cursor.execute(
            "INSERT INTO rf_case (case_id, household_id, village, county, programme,"
            " received_position) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (case_id) DO UPDATE SET household_id = excluded.household_id,"
            " village = excluded.village, county = excluded.county,"
            " programme = excluded.programme, received_position = excluded.received_position",
            (
                recorded.originator_id,
                e.household_id,
                e.registered_division,
                e.jurisdiction_county,
                e.programme,
                recorded.position,
            ),
        )

    def _record(self, cursor: Cursor[Any], recorded: RecordedEvent, **columns: Any) -> None:
        columns = {
            "position": recorded.position,
            "case_id": recorded.originator_id,
            "version": recorded.originator_version,
            "actor": recorded.event.provenance.actor.id,
            **columns,
        }
        names = ", ".join(columns)
        marks = ", ".join(["%s"] * len(columns))
        cursor.execute(
            f"INSERT INTO rf_record ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING",
            list(columns.values()),
        )

    def _act(self, cursor: Cursor[Any], recorded: RecordedEvent, actor: str, role: str) -> None:
        cursor.execute(
            "INSERT INTO rf_act (case_id, actor, role, position, at) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (recorded.originator_id, actor, role, recorded.position, recorded.timestamp),
        )

    @handles(ReliefCase.Investigated)
    def investigated(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        visit = e.means_test.home_visit
        visited_at = visit.visited_at
        self._record(
            cursor,
            recorded,
            kind="investigation",
            visitor=visit.visitor_id,
            contractor_id=e.contractor_id,
            contract_id=e.contract_id,
            work_item="household_investigation",
            starts=visited_at,
            day=business_date(visited_at),
            contract_day=business_date(visited_at),  # the day the contract check judges
            place=visit.place,
        )
        self._act(cursor, recorded, e.provenance.actor.id, "investigator")
        self._act(cursor, recorded, visit.visitor_id, "investigator")
        cursor.execute(
            "UPDATE rf_case SET investigating_contractor = %s WHERE case_id = %s"
            " RETURNING village, programme",
            (e.contractor_id, recorded.originator_id),
        )
        row = cursor.fetchone()
        if row is None:
            raise LookupError(f"case {recorded.originator_id} was never received")
        village, programme = row
        income = e.means_test.monthly_income
        per_head = income / e.means_test.household_size
        line = self.config.line_for(programme, village, business_date(visited_at))
        amount = line.monthly_per_head if line else None
        cursor.execute(
            "INSERT INTO rf_means (case_id, position, version, investigator, village, programme,"
            " visited_on, monthly_income, household_size, per_head, line, band)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (case_id) DO UPDATE SET position = excluded.position,"
            " version = excluded.version, investigator = excluded.investigator,"
            " village = excluded.village, programme = excluded.programme,"
            " visited_on = excluded.visited_on, monthly_income = excluded.monthly_income,"
            " household_size = excluded.household_size, per_head = excluded.per_head,"
            " line = excluded.line, band = excluded.band, corrected_position = NULL"
            " WHERE rf_means.position < excluded.position",
            (
                recorded.originator_id,
                recorded.position,
                recorded.originator_version,
                e.provenance.actor.id,
                village,
                programme,
                business_date(visited_at),
                income,
                e.means_test.household_size,
                per_head,
                amount,
                band_of(per_head, amount, self.config.bunching_band),
            ),
        )

    @handles(ReliefCase.Recommended)
    def recommended(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        self._record(
            cursor,
            recorded,
            kind="recommendation",
            contractor_id=e.contractor_id,
            contract_id=e.contract_id,
            work_item="household_investigation",
            starts=recorded.timestamp,
            day=business_date(recorded.timestamp),
            contract_day=business_date(recorded.timestamp),
        )
        self._act(cursor, recorded, e.provenance.actor.id, "investigator")

    def _decided(self, cursor: Cursor[Any], recorded: RecordedEvent, decision: str) -> None:
        cursor.execute(
            "UPDATE rf_case SET decision = %s, decision_position = %s"
            " WHERE case_id = %s AND decision IS NULL"
            " RETURNING county, investigating_contractor",
            (decision, recorded.position, recorded.originator_id),
        )
        row = cursor.fetchone()
        if row is not None:  # counted once, however often the event is applied
            county, contractor = row
            cursor.execute(
                "INSERT INTO rf_decision_count (county, investigated_by, approved, decided)"
                " VALUES (%s, %s, %s, 1) ON CONFLICT (county, investigated_by) DO UPDATE SET"
                " approved = rf_decision_count.approved + excluded.approved,"
                " decided = rf_decision_count.decided + 1",
                (county, contractor or GOVERNMENT, int(decision == "approved")),
            )
        self._act(cursor, recorded, recorded.event.provenance.actor.id, "approver")

    def _interval(self, cursor: Cursor[Any], recorded: RecordedEvent, kind: str | None) -> None:
        """End the case's open interval and, unless ``kind`` is None, open one of ``kind``."""
        at = recorded.timestamp
        cursor.execute(
            "UPDATE rf_case_interval SET to_position = %s, to_at = %s, to_day = %s"
            " WHERE case_id = %s AND to_position IS NULL AND from_position < %s",
            (recorded.position, at, business_date(at), recorded.originator_id, recorded.position),
        )
        if kind is not None:
            cursor.execute(
                "INSERT INTO rf_case_interval (case_id, kind, from_position, from_at, from_day)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (recorded.originator_id, kind, recorded.position, at, business_date(at)),
            )

    @handles(ReliefCase.Approved)
    def approved(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        self._decided(cursor, recorded, "approved")
        self._interval(cursor, recorded, "active")

    @handles(ReliefCase.Rejected)
    def rejected(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        self._decided(cursor, recorded, "rejected")

    @handles(ReliefCase.Reviewed)
    def reviewed(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        if recorded.event.new_monthly_amount is not None:  # an adjustment is a decision
            self._act(cursor, recorded, recorded.event.provenance.actor.id, "approver")

    @handles(ReliefCase.Suspended)
    def suspended(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        self._interval(cursor, recorded, "suspended")

    @handles(ReliefCase.Resumed)
    def resumed(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        self._interval(cursor, recorded, "active")

    @handles(ReliefCase.Closed)
    def closed(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        self._interval(cursor, recorded, None)
        cursor.execute(
            "UPDATE rf_case SET closed_at = %s, closed_on = %s, closed_position = %s"
            " WHERE case_id = %s",
            (
                recorded.timestamp,
                business_date(recorded.timestamp),
                recorded.position,
                recorded.originator_id,
            ),
        )

    @handles(ReliefCase.BeneficiaryDied)
    def beneficiary_died(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        cursor.execute(
            "UPDATE rf_case SET died_on = %s, died_position = %s WHERE case_id = %s",
            (recorded.event.on, recorded.position, recorded.originator_id),
        )

    @handles(ReliefCase.PaymentRecorded)
    def payment(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        self._record(
            cursor,
            recorded,
            kind="payment",
            period=e.period,
            period_start=period_start(e.period),
            amount=e.amount,
        )

    @handles(ReliefCase.ServiceRecorded)
    def service(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        self._record(
            cursor,
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
    def corrected(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        case_id = recorded.originator_id
        if e.corrects == "payment":
            amount = e.correction.amount
            cursor.execute(
                "UPDATE rf_record SET amount = %s,"
                " void_position = CASE WHEN %s = 0 THEN %s ELSE void_position END"
                " WHERE case_id = %s AND version = %s AND kind = 'payment'",
                (amount, amount, recorded.position, case_id, e.corrects_version),
            )
        elif e.corrects == "service":
            cursor.execute(
                "UPDATE rf_record SET void_position = %s WHERE case_id = %s AND version = %s"
                " AND kind = 'service' AND void_position IS NULL",
                (recorded.position, case_id, e.corrects_version),
            )
        else:
            # Whoever corrects the means test has investigated (as the domain says).
            self._act(cursor, recorded, e.provenance.actor.id, "investigator")
            self._correct_means(cursor, recorded)

    def _correct_means(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        cursor.execute(
            "SELECT monthly_income, household_size, line FROM rf_means"
            " WHERE case_id = %s AND version = %s",
            (recorded.originator_id, e.corrects_version),
        )
        row = cursor.fetchone()
        if row is None:
            return  # a superseded investigation: the means test in force is a later one
        income, size, line = row
        if e.correction.income_items is not None:
            income = sum((i.monthly_amount for i in e.correction.income_items), Decimal(0))
        if e.correction.household_size is not None:
            size = e.correction.household_size
        per_head = Decimal(income) / size
        cursor.execute(
            "UPDATE rf_means SET monthly_income = %s, household_size = %s, per_head = %s,"
            " band = %s, corrected_position = %s WHERE case_id = %s AND version = %s",
            (
                income,
                size,
                per_head,
                band_of(per_head, line, self.config.bunching_band),
                recorded.position,
                recorded.originator_id,
                e.corrects_version,
            ),
        )

    # People and households -----------------------------------------------------------------

    @handles(Person.CaseClaimed)
    def claimed(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        cursor.execute(
            "INSERT INTO rf_case (case_id, person_id, claim_position) VALUES (%s, %s, %s)"
            " ON CONFLICT (case_id) DO UPDATE SET person_id = excluded.person_id,"
            " claim_position = excluded.claim_position",
            (recorded.event.case_id, recorded.originator_id, recorded.position),
        )

    def _membership(
        self, cursor: Cursor[Any], recorded: RecordedEvent, household_id: UUID | None
    ) -> None:
        cursor.execute(
            "UPDATE rf_membership SET to_position = %s, to_at = %s"
            " WHERE person_id = %s AND to_position IS NULL AND from_position < %s",
            (recorded.position, recorded.timestamp, recorded.originator_id, recorded.position),
        )
        if household_id is not None:
            cursor.execute(
                "INSERT INTO rf_membership (person_id, household_id, from_position, from_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (recorded.originator_id, household_id, recorded.position, recorded.timestamp),
            )

    @handles(Person.Registered)
    def person_registered(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        cursor.execute(
            "INSERT INTO rf_person (person_id) VALUES (%s) ON CONFLICT DO NOTHING",
            (recorded.originator_id,),
        )
        self._membership(cursor, recorded, recorded.event.household_id)

    @handles(Person.HouseholdChanged)
    def household_changed(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        self._membership(cursor, recorded, recorded.event.household_id)

    @handles(Person.Died)
    def person_died(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        cursor.execute(
            "INSERT INTO rf_person (person_id, died_on, died_position) VALUES (%s, %s, %s)"
            " ON CONFLICT (person_id) DO UPDATE SET died_on = excluded.died_on,"
            " died_position = excluded.died_position",
            (recorded.originator_id, recorded.event.on, recorded.position),
        )

    @handles(HouseholdRegistered)
    def household_registered(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        cursor.execute(
            "INSERT INTO rf_household (household_id, registered, residence, position)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                recorded.originator_id,
                e.registered_division,
                e.residence_division,
                recorded.position,
            ),
        )

    # Staff ---------------------------------------------------------------------------------

    @handles(StaffMember.Hired)
    def hired(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        cursor.execute(
            "INSERT INTO rf_staff (staff_id, actor_id, name, contractor_id)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (staff_id) DO UPDATE SET name = excluded.name,"
            " contractor_id = excluded.contractor_id",
            (recorded.originator_id, str(recorded.originator_id), e.name, e.contractor_id),
        )

    @handles(StaffMember.InterestsDeclared)
    def interests_declared(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        relatives = {str(r.person_id): r.kinship for r in e.relatives}
        cursor.execute(
            "UPDATE rf_staff SET person_id = %s, relatives = %s, declared_position = %s"
            " WHERE staff_id = %s AND (declared_position IS NULL OR declared_position < %s)",
            (
                e.person_id,
                Jsonb(relatives),
                recorded.position,
                recorded.originator_id,
                recorded.position,
            ),
        )
        if cursor.rowcount == 0:
            cursor.execute("SELECT 1 FROM rf_staff WHERE staff_id = %s", (recorded.originator_id,))
            if cursor.fetchone() is None:
                raise LookupError(f"staff member {recorded.originator_id} was never hired")

    # Contractors and contracts -------------------------------------------------------------

    @handles(ContractorRegistered)
    def contractor_registered(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        cursor.execute(
            "INSERT INTO rf_contractor (contractor_id, name, position) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (recorded.originator_id, recorded.event.name, recorded.position),
        )

    @handles(Contractor.Banned)
    def banned(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        self._purchase_fact(cursor, recorded, "ban", day_from=e.start, day_to=e.end)

    @handles(Contract.Awarded)
    def awarded(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        cursor.execute(
            "INSERT INTO rf_contract (contract_id, contractor_id, purchaser, awarded_on,"
            " award_value, position) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                recorded.originator_id,
                e.contractor_id,
                e.purchaser,
                e.awarded_on,
                e.terms.value,
                recorded.position,
            ),
        )
        self._terms(cursor, recorded, "awarded", dt.date.min, e.terms)

    @handles(Contract.Amended, Contract.Renewed)
    def terms_changed(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        kind = "amended" if isinstance(e, Contract.Amended) else "renewed"
        self._terms(cursor, recorded, kind, e.effective_from, e.terms)

    @staticmethod
    def _terms(
        cursor: Cursor[Any],
        recorded: RecordedEvent,
        kind: str,
        effective_from: dt.date,
        terms: Terms,
    ) -> None:
        cursor.execute(
            "INSERT INTO rf_contract_terms (position, contract_id, kind, effective_from,"
            " work_items, service_area, term_start, term_end, value, recorded_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                recorded.position,
                recorded.originator_id,
                kind,
                effective_from,
                list(terms.work_items),
                list(terms.service_area),
                terms.start,
                terms.end,
                terms.value,
                recorded.timestamp,
            ),
        )

    @staticmethod
    def _purchase_fact(
        cursor: Cursor[Any], recorded: RecordedEvent, kind: str, **columns: Any
    ) -> None:
        columns = {
            "position": recorded.position,
            "subject_id": recorded.originator_id,
            "kind": kind,
            "recorded_at": recorded.timestamp,
            **columns,
        }
        cursor.execute(
            f"INSERT INTO rf_purchase_fact ({', '.join(columns)})"
            f" VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT DO NOTHING",
            list(columns.values()),
        )

    @handles(Contract.Invoiced)
    def invoiced(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        self._purchase_fact(
            cursor,
            recorded,
            "invoice",
            amount=e.amount,
            day_from=e.period_start,
            day_to=e.period_end,
        )

    @handles(Contract.Evaluated)
    def evaluated(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        self._purchase_fact(
            cursor,
            recorded,
            "evaluation",
            score=e.score,
            day_from=e.period_start,
            day_to=e.period_end,
        )

    @handles(Contract.Terminated)
    def terminated(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        self._purchase_fact(
            cursor, recorded, "termination", effective_at=recorded.event.effective_at
        )
