"""Red flags over the real store: each rule fires on its case and stays silent on a near miss.

Histories are written through the application (``runtime.ledger``) and projected by the real
runner into the real PostgreSQL; the alerts are read back with ``query_alerts``. Where the
domain itself makes the flagged situation impossible to record (billing above the value, work
after closure, a payment for a month that began in a suspension), the events are built by hand
and applied by the runner's own batch applier: the rules are a net for what slips past the
domain (imports, other writers, future bugs), and that is how they are tested.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import uuid
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.utils import get_topic
from psycopg import sql

from domain.case import HomeVisit, IncomeItem, MeansTest, ReliefCase, parse_correction
from domain.commands.cases import (
    ApproveCase,
    CloseCase,
    CorrectCaseRecord,
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
    RenewContract,
    TerminateContract,
)
from domain.commands.standards import SetStandard
from domain.contract import Contract, Terms
from domain.errors import NotFound
from domain.household import HouseholdMember
from domain.provenance import Actor, Provenance, Role
from infra.ledger import ReliefLedger
from infra.projection_runner import BatchApplier, PostgresFeedRunner, ProjectionHalted, rebuild
from infra.runtime import Runtime
from projections.base import RecordedEvent
from projections.red_flags.config import RedFlagsConfig
from projections.red_flags.engine import alert_id
from projections.red_flags.projection import ConfigurationChanged, RedFlagsProjection
from projections.red_flags.queries import query_alerts
from tests.factories import (
    BY_CLERK,
    BY_OFFICER,
    BY_SUPERVISOR,
    approver,
    credit_code,
    hire_staff_for,
    officer,
    resident_id,
)
from tests.integration.helpers import StageInThread, projection_conclusions, projection_tables
from tests.scenario import application, means_test

pytestmark = pytest.mark.integration

UTC8 = dt.timezone(dt.timedelta(hours=8))

#: Thresholds small enough for histories a test can write.
CONFIG = RedFlagsConfig(
    name="integration tests",
    max_home_visits_per_day=3,
    max_service_hours_per_day=Decimal(8),
    approval_min_cases=4,
    approval_min_others=4,
    approval_z=Decimal("2.0"),
    approval_min_difference=Decimal("0.15"),
    bunching_min_sample=8,
    bunching_alpha=Decimal("0.01"),
    split_threshold=Decimal(100_000),
    split_band=Decimal("0.10"),
    split_min_contracts=3,
    split_window_days=30,
)


class Flags(RedFlagsProjection):
    preset_config = CONFIG


# Helpers -----------------------------------------------------------------------------------


def run(runtime: Runtime, projection: type[RedFlagsProjection] = Flags, batch: int = 50) -> None:
    PostgresFeedRunner(
        runtime.pool,
        runtime.ledger.recorder,
        runtime.ledger.mapper,
        projection,
        batch_size=batch,
    ).catch_up()


def alerts(runtime: Runtime, rule: str | None = None, **filters: Any) -> list[dict[str, Any]]:
    """Project what is new, then every alert (of ``rule``), oldest first."""
    run(runtime)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        items, _ = query_alerts(cursor, rule=rule, limit=1000, **filters)
    return items[::-1]


def cited(found: list[dict[str, Any]], among: Any) -> list[int]:
    """For each alert, the one position of ``among`` (the records in question) it cites."""
    pool = set(among)
    hits = []
    for alert in found:
        mine = [p for p in alert["evidence"] if p in pool]
        assert len(mine) == 1, alert
        hits.append(mine[0])
    return sorted(hits)


def by_subject(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["subject_id"]: a for a in found}


def positions(ledger: ReliefLedger, aggregate_id: uuid.UUID) -> dict[int, int]:
    """Global position of each version of one aggregate."""
    return {
        n.originator_version: n.id
        for n in ledger.recorder.select_notifications(start=None, limit=100_000)
        if n.originator_id == aggregate_id
    }


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC8)


def month(today: dt.date, offset: int) -> str:
    index = today.year * 12 + today.month - 1 + offset
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_start(today: dt.date, offset: int) -> dt.date:
    return dt.date.fromisoformat(month(today, offset) + "-01")


def staff_actor(who: str, role: Role = Role.HANDLING_STAFF, org: str = "440103") -> Provenance:
    return Provenance(actor=Actor(id=who, role=role, organisation=org))


def as_staff(
    runtime: Runtime, by: Provenance, case: ReliefCase, contract_id: uuid.UUID | None = None
) -> Provenance:
    """``by`` as it decides a case: a staff record (hired for it unless its id names one)."""
    try:
        runtime.ledger.get_staff(uuid.UUID(by.actor.id))
        return by
    except (ValueError, NotFound):
        township = case.registered_division.code[:9] if contract_id else None
        return hire_staff_for(runtime.services, by, contract_id=contract_id, division=township)


def decide(
    runtime: Runtime,
    case: ReliefCase,
    *,
    approve: bool = True,
    start_date: dt.date | None = None,
    investigator: Provenance | None = None,
    visit: MeansTest | None = None,
    contract_id: uuid.UUID | None = None,
    decider: Provenance | None = None,
) -> None:
    county = case.county.code
    investigator = as_staff(runtime, investigator or officer(county), case, contract_id)
    decider = as_staff(runtime, decider or approver(county), case)
    runtime.services.cases.investigate_case(
        InvestigateCase(
            case_id=case.id,
            means_test=visit or means_test(case.registered_division.code),
            contract_id=contract_id,
            provenance=investigator,
        )
    )
    runtime.services.cases.recommend_case(
        RecommendCase(
            case_id=case.id,
            recommendation="approve" if approve else "reject",
            reasons="as investigated",
            monthly_amount="900" if approve else None,
            contract_id=contract_id,
            provenance=investigator,
        )
    )
    if approve:
        runtime.services.cases.approve_case(
            ApproveCase(
                case_id=case.id,
                monthly_amount="900",
                start_date=start_date or runtime.services.clock.today(),
                reasons="below the line",
                provenance=decider or approver(county),
            )
        )
    else:
        runtime.services.cases.reject_case(
            RejectCase(
                case_id=case.id, reasons="above the line", provenance=decider or approver(county)
            )
        )


def approved_case(runtime: Runtime, county: str = "440103", **kwargs: Any) -> ReliefCase:
    case = application(runtime, county)
    decide(runtime, case, **kwargs)
    return runtime.ledger.get_case(case.id)


def contract_for(
    runtime: Runtime,
    *,
    items: list[str],
    area: list[str] | None = None,
    purchaser: str = "440103",
    value: str = "50000",
    awarded_on: dt.date | None = None,
    contractor_id: uuid.UUID | None = None,
) -> tuple[Contract, str]:
    """A contract (and, unless given, a new contractor); returns it with the credit code."""
    if contractor_id is None:
        contractor = runtime.services.purchasing.register_contractor(
            RegisterContractor(
                name="Sunshine Social Work Centre",
                contractor_type="social_organisation",
                credit_code=credit_code(),
                institution_class=None,
                provenance=BY_OFFICER,
            )
        )
    else:
        contractor = runtime.ledger.get_contractor(contractor_id)
    today = runtime.services.clock.today()
    contract = runtime.services.purchasing.award_contract(
        AwardContract(
            contractor_id=contractor.id,
            purchaser=purchaser,
            work_items=items,
            service_area=area or [purchaser],
            start=today - dt.timedelta(days=30),
            end=today + dt.timedelta(days=100),
            value=value,
            funding_source="relief_work_funds",
            awarded_on=awarded_on or today - dt.timedelta(days=30),
            provenance=BY_OFFICER,
        )
    )
    return contract, contractor.credit_code


def worker(code: str, who: str = "worker-1") -> Provenance:
    return staff_actor(who, Role.CONTRACTOR_STAFF, code)


def serve(
    runtime: Runtime,
    case: ReliefCase,
    start: dt.datetime,
    end: dt.datetime,
    *,
    by: Provenance | None = None,
    contract_id: uuid.UUID | None = None,
    item: str = "psychological_counselling",
    place: str | None = None,
) -> int:
    """Record a service; returns its version on the case."""
    updated = runtime.services.cases.record_service(
        RecordService(
            case_id=case.id,
            work_item=item,
            contract_id=contract_id,
            start=start,
            end=end,
            place=place or case.registered_division.code,
            provenance=by or officer(case.county.code),
        )
    )
    return int(updated.version)


# Concurrent cases --------------------------------------------------------------------------


def test_one_person_in_two_counties_and_two_recurring_programmes(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    first = approved_case(runtime, "440103")  # dibao in 440103
    person = first.applicant_id
    # The person moves to a household in 440104 and is approved for tekun there too, while
    # the dibao case in 440103 stays open.
    services.cases.move_out_member(
        MoveOutMember(
            household_id=first.household_id,
            resident_id=person,
            on=runtime.services.clock.today(),
            provenance=BY_CLERK,
        )
    )
    home = services.cases.register_household(
        RegisterHousehold(
            registered_division="440104001001",
            residence_division="440104001001",
            members=(HouseholdMember(person, "Applicant", "head"),),
            provenance=BY_CLERK,
        )
    )
    second = services.cases.receive_application(
        ReceiveApplication(
            household_id=home.id,
            applicant_id=person,
            programme="tekun",
            window_division="440104001",
            provenance=BY_CLERK,
        )
    )
    decide(runtime, second)
    # Near miss: another person with dibao and temporary assistance in one county.
    third = approved_case(runtime, "440103")
    temporary = services.cases.receive_application(
        ReceiveApplication(
            household_id=third.household_id,
            applicant_id=third.applicant_id,
            programme="temporary",
            window_division="440103001",
            provenance=BY_CLERK,
        )
    )
    decide(runtime, temporary)

    person_id = str(runtime.services.cases.person_id(person))
    cross = alerts(runtime, "cross_county_cases")
    assert [(a["subject_kind"], a["subject_id"], a["status"]) for a in cross] == [
        ("person", person_id, "open")
    ]
    assert cross[0]["county"] == "440104"  # the county of the newer case
    assert "440103" in cross[0]["reason"] and "440104" in cross[0]["reason"]
    assert person not in cross[0]["reason"]  # the resident ID never appears
    first_positions, second_positions = positions(ledger, first.id), positions(ledger, second.id)
    assert max(first_positions.values()) in cross[0]["evidence"]  # first's approval
    assert max(second_positions.values()) in cross[0]["evidence"]  # second's approval
    recurring = alerts(runtime, "concurrent_recurring_programmes")
    assert [(a["subject_id"], a["severity"]) for a in recurring] == [(person_id, "high")]

    # Closing the dibao case soon after (within the grace) clears both: a move, not a double.
    services.cases.close_case(
        CloseCase(case_id=first.id, reason_code="moved_away", provenance=approver("440103"))
    )
    assert [a["status"] for a in alerts(runtime, "cross_county_cases")] == ["cleared"]
    assert [a["status"] for a in alerts(runtime, "concurrent_recurring_programmes")] == ["cleared"]


def test_cases_that_never_overlap_raise_nothing(runtime: Runtime) -> None:
    services = runtime.services
    first = approved_case(runtime, "440103")
    person = first.applicant_id
    services.cases.close_case(
        CloseCase(case_id=first.id, reason_code="moved_away", provenance=approver("440103"))
    )
    services.cases.move_out_member(
        MoveOutMember(
            household_id=first.household_id,
            resident_id=person,
            on=runtime.services.clock.today(),
            provenance=BY_CLERK,
        )
    )
    home = services.cases.register_household(
        RegisterHousehold(
            registered_division="440104001001",
            residence_division="440104001001",
            members=(HouseholdMember(person, "Applicant", "head"),),
            provenance=BY_CLERK,
        )
    )
    second = services.cases.receive_application(
        ReceiveApplication(
            household_id=home.id,
            applicant_id=person,
            programme="tekun",
            window_division="440104001",
            provenance=BY_CLERK,
        )
    )
    decide(runtime, second)
    assert alerts(runtime, "cross_county_cases") == []
    assert alerts(runtime, "concurrent_recurring_programmes") == []


# After death, after closure, in suspension -------------------------------------------------


def test_payments_and_services_after_a_death_recorded_late(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    today = runtime.services.clock.today()
    yesterday = today - dt.timedelta(days=1)
    case = approved_case(runtime, start_date=month_start(today, -3))
    for offset in (-3, -2, -1, 0):
        services.cases.record_payment(
            RecordPayment(
                case_id=case.id, period=month(today, offset), amount="900", provenance=officer()
            )
        )
    service_version = serve(runtime, case, at(yesterday, 10), at(yesterday, 11))
    # The death, on the last day of the month three months ago, is recorded only now.
    died_on = month_start(today, -2) - dt.timedelta(days=1)
    services.cases.record_death(
        RecordDeath(resident_id=case.applicant_id, on=died_on, provenance=BY_CLERK)
    )

    found = alerts(runtime, "record_after_death")
    case_positions = positions(ledger, case.id)
    payments = {p.period: v for v, p in ledger.get_case(case.id).payments.items()}
    records = [case_positions[v] for v in (*payments.values(), service_version)]
    flagged = cited(found, records)
    assert flagged == sorted(
        [
            case_positions[payments[month(today, -2)]],
            case_positions[payments[month(today, -1)]],
            case_positions[payments[month(today, 0)]],
            case_positions[service_version],
        ]
    )
    assert case_positions[payments[month(today, -3)]] not in flagged  # the month of death
    death_on_case = max(case_positions.values())  # BeneficiaryDied, the case's last event
    assert all(death_on_case in a["evidence"] for a in found)
    assert all(a["subject_kind"] == "case" and a["county"] == "440103" for a in found)
    assert all(died_on.isoformat() in a["reason"] for a in found)

    # A correction voiding the last payment clears its alert (and only that one).
    services.cases.correct_case_record(
        CorrectCaseRecord(
            case_id=case.id,
            corrects_version=payments[month(today, 0)],
            correction=parse_correction({"amount": "0"}),
            reason="paid after death",
            provenance=officer(),
        )
    )
    statuses = {cited([a], records)[0]: a["status"] for a in alerts(runtime, "record_after_death")}
    assert statuses[case_positions[payments[month(today, 0)]]] == "cleared"
    assert sorted(statuses.values()) == ["cleared", "open", "open", "open"]


def test_a_death_recorded_after_closure_still_reaches_the_closed_case(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    today = runtime.services.clock.today()
    case = approved_case(runtime, start_date=month_start(today, -3))
    for offset in (-3, -2, -1):
        services.cases.record_payment(
            RecordPayment(
                case_id=case.id, period=month(today, offset), amount="900", provenance=officer()
            )
        )
    services.cases.close_case(
        CloseCase(case_id=case.id, reason_code="moved_away", provenance=approver())
    )
    # The case is closed: the death reaches the person only (no BeneficiaryDied on the case).
    services.cases.record_death(
        RecordDeath(
            resident_id=case.applicant_id,
            on=month_start(today, -2) - dt.timedelta(days=1),
            provenance=BY_CLERK,
        )
    )
    assert not any(isinstance(e, ReliefCase.BeneficiaryDied) for e in ledger.events.get(case.id))
    found = alerts(runtime, "record_after_death")
    assert len(found) == 2 and {a["status"] for a in found} == {"open"}
    assert alerts(runtime, "record_after_closure") == []  # paid before closure


def test_a_service_dated_inside_a_past_suspension(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    yesterday = runtime.services.clock.today() - dt.timedelta(days=1)
    case = approved_case(runtime)
    near_miss = serve(runtime, case, at(yesterday, 9), at(yesterday, 10))
    services.cases.suspend_case(
        SuspendCase(case_id=case.id, reason="income check", provenance=approver())
    )
    services.cases.resume_case(ResumeCase(case_id=case.id, reason="checked", provenance=approver()))
    events = list(ledger.events.get(case.id))
    suspended = next(e for e in events if isinstance(e, ReliefCase.Suspended)).timestamp
    resumed = next(e for e in events if isinstance(e, ReliefCase.Resumed)).timestamp
    # Recorded after the resumption, dated inside the suspension.
    inside = serve(runtime, case, suspended + (resumed - suspended) / 2, resumed)

    found = alerts(runtime, "record_in_suspension")
    case_positions = positions(ledger, case.id)
    services = [case_positions[near_miss], case_positions[inside]]
    assert cited(found, services) == [case_positions[inside]]
    assert case_positions[near_miss] not in found[0]["evidence"]
    assert found[0]["severity"] == "medium"


def test_records_the_domain_refuses_are_still_caught(runtime: Runtime) -> None:
    """After closure and in suspension, for payments: the domain refuses both outright, so
    the events are built by hand, as an import or another writer could deliver them."""
    case_id = uuid.uuid4()
    day = dt.datetime(2025, 1, 10, 10, tzinfo=UTC8)
    by = officer()
    events: list[Any] = [
        ReliefCase.ApplicationReceived(
            originator_id=case_id,
            originator_version=1,
            timestamp=day,
            originator_topic=get_topic(ReliefCase),
            programme="dibao",
            applicant_id="-",
            household_id=uuid.uuid4(),
            registered_division="440103001001",
            window_division="440103001",
            received_county="440103",
            jurisdiction_county="440103",
            cross_region=False,
            provenance=BY_CLERK,
        )
    ]

    def then(kind: type, when: dt.datetime, **fields: Any) -> None:
        events.append(
            kind(
                originator_id=case_id,
                originator_version=len(events) + 1,
                timestamp=when,
                provenance=approver() if kind is not ReliefCase.PaymentRecorded else by,
                **fields,
            )
        )

    def pay(period: str, when: dt.datetime) -> None:
        then(ReliefCase.PaymentRecorded, when, period=period, amount=Decimal(900))

    then(
        ReliefCase.Approved,
        day,
        programme="dibao",
        monthly_amount=Decimal(900),
        start_date=dt.date(2025, 1, 1),
        reasons="r",
    )
    then(ReliefCase.Suspended, dt.datetime(2025, 3, 10, tzinfo=UTC8), reason="check")
    pay("2025-03", dt.datetime(2025, 3, 20, tzinfo=UTC8))  # began before: near miss
    pay("2025-04", dt.datetime(2025, 4, 20, tzinfo=UTC8))  # began in the suspension
    then(ReliefCase.Resumed, dt.datetime(2025, 5, 20, tzinfo=UTC8), reason="ok")
    pay("2025-06", dt.datetime(2025, 6, 20, tzinfo=UTC8))  # near miss
    then(ReliefCase.Closed, dt.datetime(2025, 7, 15, tzinfo=UTC8), reason_code="voluntary")
    pay("2025-07", dt.datetime(2025, 7, 30, tzinfo=UTC8))  # began before closure: near miss
    pay("2025-08", dt.datetime(2025, 8, 30, tzinfo=UTC8))  # after closure

    # A contract billed above its value.
    billed, within = uuid.uuid4(), uuid.uuid4()
    contractor = uuid.uuid4()
    for contract_id, amounts in ((billed, ("30000", "25000")), (within, ("30000", "20000"))):
        events.append(
            Contract.Awarded(
                originator_id=contract_id,
                originator_version=1,
                timestamp=day,
                originator_topic=get_topic(Contract),
                contractor_id=contractor,
                contractor_credit_code=credit_code(),
                purchaser="440103",
                terms=Terms(
                    ("care_and_nursing",),
                    ("440103",),
                    dt.date(2025, 1, 1),
                    dt.date(2025, 12, 31),
                    Decimal(50000),
                ),
                funding_source="relief_work_funds",
                awarded_on=dt.date(2025, 1, 1),
                provenance=BY_OFFICER,
            )
        )
        for n, amount in enumerate(amounts, start=2):
            events.append(
                Contract.Invoiced(
                    originator_id=contract_id,
                    originator_version=n,
                    timestamp=day + dt.timedelta(days=30 * n),
                    invoice_number=f"INV-{n}",
                    period_start=dt.date(2025, n, 1),
                    period_end=dt.date(2025, n, 28),
                    amount=Decimal(amount),
                    provenance=BY_OFFICER,
                )
            )

    recorded = [
        RecordedEvent(n, e.originator_id, e.originator_version, get_topic(type(e)), e)
        for n, e in enumerate(events, start=1)
    ]
    with runtime.pool.connection() as conn, conn.transaction():
        conn.execute(
            sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier("rm_red_flags_g1"))
        )
        BatchApplier(Flags()).apply(conn, recorded)

    position = {(e.originator_id, e.originator_version): n for n, e in enumerate(events, 1)}

    def payment_of(period: str) -> int:
        return next(
            position[(case_id, e.originator_version)]
            for e in events
            if isinstance(e, ReliefCase.PaymentRecorded) and e.period == period
        )

    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        found, _ = query_alerts(cursor, limit=100)
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for alert in found:
        by_rule.setdefault(alert["rule"], []).append(alert)
    payments = [payment_of(p) for p in ("2025-03", "2025-04", "2025-06", "2025-07", "2025-08")]
    assert cited(by_rule["record_in_suspension"], payments) == [payment_of("2025-04")]
    assert cited(by_rule["record_after_closure"], payments) == [payment_of("2025-08")]
    assert [a["subject_id"] for a in by_rule["billed_above_value"]] == [str(billed)]
    assert "55000" in by_rule["billed_above_value"][0]["reason"]
    assert set(by_rule) == {"record_in_suspension", "record_after_closure", "billed_above_value"}


# Work outside the contract -----------------------------------------------------------------


def test_work_outside_the_term_and_scope_after_a_backdated_amendment(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    today = runtime.services.clock.today()
    case = approved_case(runtime)
    contract, code = contract_for(runtime, items=["psychological_counselling", "care_and_nursing"])
    week_ago, three_days_ago = today - dt.timedelta(days=7), today - dt.timedelta(days=3)
    early = serve(
        runtime, case, at(week_ago, 9), at(week_ago, 10), by=worker(code), contract_id=contract.id
    )
    early_care = serve(
        runtime,
        case,
        at(week_ago, 14),
        at(week_ago, 15),
        by=worker(code),
        contract_id=contract.id,
        item="care_and_nursing",
    )
    later = serve(
        runtime,
        case,
        at(three_days_ago, 9),
        at(three_days_ago, 10),
        by=worker(code),
        contract_id=contract.id,
        item="care_and_nursing",
    )
    assert alerts(runtime, "work_outside_term") == []
    # Recorded today, in force from ten days ago: the term now starts five days ago and
    # counselling is no longer bought.
    services.purchasing.amend_contract(
        AmendContract(
            contract_id=contract.id,
            reason="re-scoped after review",
            effective_from=today - dt.timedelta(days=10),
            start=today - dt.timedelta(days=5),
            work_items=("care_and_nursing",),
            provenance=BY_OFFICER,
        )
    )
    case_positions = positions(ledger, case.id)
    term = alerts(runtime, "work_outside_term")
    work = [case_positions[v] for v in (early, early_care, later)]
    assert cited(term, work) == sorted([case_positions[early], case_positions[early_care]])
    assert case_positions[later] not in {p for a in term for p in a["evidence"]}
    assert all(
        a["subject_kind"] == "contract" and a["subject_id"] == str(contract.id) for a in term
    )
    assert all(a["contractor_id"] == contract.contractor_id for a in term)
    scope = alerts(runtime, "work_outside_scope")
    assert cited(scope, work) == [case_positions[early]]
    assert "psychological_counselling" in scope[0]["reason"]
    assert alerts(runtime, "work_outside_area") == []


def test_work_outside_the_area_after_a_backdated_amendment(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    today = runtime.services.clock.today()
    case = approved_case(runtime)
    contract, code = contract_for(runtime, items=["care_and_nursing"])
    day = today - dt.timedelta(days=4)
    there = serve(
        runtime,
        case,
        at(day, 9),
        at(day, 10),
        by=worker(code),
        contract_id=contract.id,
        item="care_and_nursing",
    )
    elsewhere = serve(
        runtime,
        case,
        at(day, 11),
        at(day, 12),
        by=worker(code),
        contract_id=contract.id,
        item="care_and_nursing",
        place="440103002001",
    )
    services.purchasing.amend_contract(
        AmendContract(
            contract_id=contract.id,
            reason="area split between providers",
            effective_from=today - dt.timedelta(days=10),
            service_area=("440103002",),
            provenance=BY_OFFICER,
        )
    )
    found = alerts(runtime, "work_outside_area")
    case_positions = positions(ledger, case.id)
    assert cited(found, [case_positions[there], case_positions[elsewhere]]) == [
        case_positions[there]
    ]
    assert case_positions[elsewhere] not in found[0]["evidence"]
    assert "440103001001" in found[0]["reason"]


def test_work_after_a_termination_recorded_later(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    today = runtime.services.clock.today()
    case = approved_case(runtime)
    contract, code = contract_for(runtime, items=["care_and_nursing"])
    before_day, after_day = today - dt.timedelta(days=5), today - dt.timedelta(days=2)
    before = serve(
        runtime,
        case,
        at(before_day, 9),
        at(before_day, 10),
        by=worker(code),
        contract_id=contract.id,
        item="care_and_nursing",
    )
    after = serve(
        runtime,
        case,
        at(after_day, 9),
        at(after_day, 10),
        by=worker(code),
        contract_id=contract.id,
        item="care_and_nursing",
    )
    services.purchasing.terminate_contract(
        TerminateContract(
            contract_id=contract.id,
            effective_at=at(today - dt.timedelta(days=3), 0),
            basis="contract",
            reason="falsified records",
            provenance=BY_OFFICER,
        )
    )
    found = alerts(runtime, "work_after_termination")
    case_positions = positions(ledger, case.id)
    assert cited(found, [case_positions[before], case_positions[after]]) == [case_positions[after]]
    assert case_positions[before] not in found[0]["evidence"]
    assert max(positions(ledger, contract.id).values()) in found[0]["evidence"]
    assert found[0]["severity"] == "high"


def test_work_by_a_contractor_banned_later_with_an_earlier_start(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    today = runtime.services.clock.today()
    case = approved_case(runtime)
    contract, code = contract_for(runtime, items=["care_and_nursing"])
    before_day, during_day = today - dt.timedelta(days=6), today - dt.timedelta(days=2)
    before = serve(
        runtime,
        case,
        at(before_day, 9),
        at(before_day, 10),
        by=worker(code),
        contract_id=contract.id,
        item="care_and_nursing",
    )
    during = serve(
        runtime,
        case,
        at(during_day, 9),
        at(during_day, 10),
        by=worker(code),
        contract_id=contract.id,
        item="care_and_nursing",
    )
    services.purchasing.ban_contractor(
        BanContractor(
            contractor_id=contract.contractor_id,
            start=today - dt.timedelta(days=4),
            end=today + dt.timedelta(days=365),
            reason="falsification (弄虚作假)",
            deciding_unit="440103",
            provenance=BY_SUPERVISOR,
        )
    )
    found = alerts(runtime, "work_by_banned_contractor", contractor_id=contract.contractor_id)
    case_positions = positions(ledger, case.id)
    assert cited(found, [case_positions[before], case_positions[during]]) == [
        case_positions[during]
    ]
    assert case_positions[before] not in found[0]["evidence"]
    ban_position = max(positions(ledger, contract.contractor_id).values())
    assert ban_position in found[0]["evidence"]


# Impossible days ---------------------------------------------------------------------------


def test_overlapping_services_of_one_staff_member(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    yesterday = runtime.services.clock.today() - dt.timedelta(days=1)
    case, other = approved_case(runtime), approved_case(runtime)
    a = serve(runtime, case, at(yesterday, 9), at(yesterday, 11), by=officer(who="carer-1"))
    b = serve(runtime, other, at(yesterday, 10), at(yesterday, 12), by=officer(who="carer-1"))
    # Near miss: back to back.
    serve(runtime, case, at(yesterday, 9), at(yesterday, 10), by=officer(who="carer-2"))
    serve(runtime, other, at(yesterday, 10), at(yesterday, 11), by=officer(who="carer-2"))

    # A home visit made during one's own service.
    visited = application(runtime, "440103")
    services.cases.investigate_case(
        InvestigateCase(
            case_id=visited.id,
            means_test=MeansTest(
                (IncomeItem("wages", Decimal("300")),),
                (),
                1,
                HomeVisit(at(yesterday, 10, 30), visited.registered_division.code, "carer-5"),
            ),
            contract_id=None,
            provenance=hire_staff_for(services, officer()),
        )
    )
    serve(runtime, case, at(yesterday, 10), at(yesterday, 11), by=officer(who="carer-5"))

    found = alerts(runtime, "overlapping_records")
    assert [(x["subject_kind"], x["subject_id"]) for x in found] == [
        ("staff", "carer-1"),
        ("staff", "carer-5"),
    ]
    assert "home visit at 10:30" in found[1]["reason"]
    found = found[:1]
    assert sorted(found[0]["evidence"]) == sorted(
        [positions(ledger, case.id)[a], positions(ledger, other.id)[b]]
    )
    assert yesterday.isoformat() in found[0]["reason"]

    # Voiding one of the two clears it.
    services.cases.correct_case_record(
        CorrectCaseRecord(
            case_id=other.id,
            corrects_version=b,
            correction=parse_correction({"void": True}),
            reason="entered twice",
            provenance=officer(),
        )
    )
    assert [x["status"] for x in alerts(runtime, "overlapping_records")] == ["cleared", "open"]


def test_overlaps_within_the_tolerance_are_not_flagged(runtime: Runtime) -> None:
    """``overlap_tolerance_minutes``: two services overlapping by less are no alert, by more
    one; a long service beside short ones inside it makes a candidate day the rule then
    judges pair by pair (the statement's bound is the latest end before a record)."""

    class Tolerant(RedFlagsProjection):
        preset_config = dataclasses.replace(CONFIG, overlap_tolerance_minutes=30)

    rebuild(runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, Tolerant)
    yesterday = runtime.services.clock.today() - dt.timedelta(days=1)
    case, other = approved_case(runtime), approved_case(runtime)
    serve(runtime, case, at(yesterday, 9), at(yesterday, 10), by=officer(who="carer-6"))
    serve(runtime, other, at(yesterday, 9, 40), at(yesterday, 11), by=officer(who="carer-6"))
    serve(runtime, case, at(yesterday, 8), at(yesterday, 12), by=officer(who="carer-8"))
    serve(runtime, other, at(yesterday, 9), at(yesterday, 9, 10), by=officer(who="carer-8"))
    serve(runtime, other, at(yesterday, 11, 45), at(yesterday, 12, 30), by=officer(who="carer-8"))
    run(runtime, Tolerant)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        items, _ = query_alerts(cursor, rule="overlapping_records", limit=100)
    assert items == []

    # carer-6: 45 minutes inside the first service. carer-8: 70 minutes inside the long one,
    # started after a short one (the record just before it ended long before).
    by6, by8 = officer(who="carer-6"), officer(who="carer-8")
    late = serve(runtime, other, at(yesterday, 9, 10), at(yesterday, 9, 55), by=by6)
    inside = serve(runtime, other, at(yesterday, 10, 30), at(yesterday, 11, 40), by=by8)
    run(runtime, Tolerant)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        items, _ = query_alerts(cursor, rule="overlapping_records", limit=100)
    assert sorted((x["subject_id"], x["status"]) for x in items) == [
        ("carer-6", "open"),
        ("carer-8", "open"),
    ]
    evidence = {x["subject_id"]: x["evidence"] for x in items}
    assert positions(runtime.ledger, other.id)[late] in evidence["carer-6"]
    assert positions(runtime.ledger, other.id)[inside] in evidence["carer-8"]


def test_more_service_hours_in_a_day_than_the_ceiling(runtime: Runtime) -> None:
    yesterday = runtime.services.clock.today() - dt.timedelta(days=1)
    case = approved_case(runtime)
    serve(runtime, case, at(yesterday, 8), at(yesterday, 12), by=officer(who="carer-3"))
    serve(runtime, case, at(yesterday, 12), at(yesterday, 17), by=officer(who="carer-3"))
    serve(runtime, case, at(yesterday, 8), at(yesterday, 12), by=officer(who="carer-4"))
    serve(runtime, case, at(yesterday, 12), at(yesterday, 16), by=officer(who="carer-4"))
    found = alerts(runtime, "service_hours_over_day")
    assert [x["subject_id"] for x in found] == ["carer-3"]  # 9 h > 8; carer-4's 8 h is not
    assert "9.0 hours" in found[0]["reason"]
    assert alerts(runtime, "overlapping_records") == []


def test_more_home_visits_in_a_day_than_the_ceiling(runtime: Runtime) -> None:
    services = runtime.services
    yesterday = runtime.services.clock.today() - dt.timedelta(days=1)

    def visit(visitor: str, hour: int) -> None:
        case = application(runtime, "440103")
        services.cases.investigate_case(
            InvestigateCase(
                case_id=case.id,
                means_test=MeansTest(
                    (IncomeItem("wages", Decimal("300")),),
                    (),
                    1,
                    HomeVisit(at(yesterday, hour), case.registered_division.code, visitor),
                ),
                contract_id=None,
                provenance=hire_staff_for(services, officer()),
            )
        )

    for hour in (9, 10, 11, 12):
        visit("visitor-x", hour)
    for hour in (9, 10, 11):
        visit("visitor-y", hour)  # at the ceiling, not above it
    found = alerts(runtime, "home_visits_over_ceiling")
    assert [(x["subject_id"], len(x["evidence"])) for x in found] == [("visitor-x", 4)]
    assert "4 home visits" in found[0]["reason"]


# Implausible place -------------------------------------------------------------------------


def test_a_home_visit_in_another_village(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    home = services.cases.register_household(
        RegisterHousehold(
            registered_division="440103001001",
            residence_division="440103001003",
            members=(HouseholdMember(resident_id(), "Applicant", "head"),),
            provenance=BY_CLERK,
        )
    )
    case = services.cases.receive_application(
        ReceiveApplication(
            household_id=home.id,
            applicant_id=next(iter(home.members)),
            programme="dibao",
            window_division="440103001",
            provenance=BY_CLERK,
        )
    )
    services.cases.investigate_case(
        InvestigateCase(
            case_id=case.id,
            means_test=means_test("440103001003"),
            contract_id=None,
            provenance=hire_staff_for(services, officer()),
        )
    )  # where the household lives: fine
    assert alerts(runtime, "home_visit_elsewhere") == []
    services.cases.investigate_case(
        InvestigateCase(
            case_id=case.id,
            means_test=means_test("440103002001"),
            contract_id=None,
            provenance=hire_staff_for(services, officer()),
        )
    )
    found = alerts(runtime, "home_visit_elsewhere")
    assert [(x["subject_kind"], x["subject_id"]) for x in found] == [("case", str(case.id))]
    assert max(positions(ledger, case.id).values()) in found[0]["evidence"]
    assert "440103002001" in found[0]["reason"] and "440103001003" in found[0]["reason"]


# Approval rate -----------------------------------------------------------------------------


def test_a_contractor_whose_investigations_are_approved_far_more_often(runtime: Runtime) -> None:
    county = "440305"
    outlier, outlier_code = contract_for(
        runtime, items=["household_investigation"], purchaser=county
    )
    small, small_code = contract_for(runtime, items=["household_investigation"], purchaser=county)

    def by_contractor(contract: Contract, code: str, approve: bool) -> None:
        case = application(runtime, county)
        decide(
            runtime,
            case,
            approve=approve,
            investigator=worker(code, "worker-9"),
            visit=means_test(case.registered_division.code, visitor="worker-9"),
            contract_id=contract.id,
        )

    for _ in range(6):
        by_contractor(outlier, outlier_code, True)  # 6 of 6 approved
    for _ in range(3):
        by_contractor(small, small_code, True)  # 3 of 3: too few to test (minimum 4)
    for n in range(6):
        decide(runtime, application(runtime, county), approve=n == 0)  # county staff: 1 of 6
    found = alerts(runtime, "approval_rate_outlier", county="4403")
    assert [(x["subject_kind"], x["subject_id"]) for x in found] == [
        ("contractor", str(outlier.contractor_id))
    ]
    alert = found[0]
    assert alert["county"] == county and alert["contractor_id"] == outlier.contractor_id
    assert len(alert["evidence"]) == 6  # the six approvals
    assert (
        "6 of 6" in alert["reason"]
        and "4 of 9" in alert["reason"]
        and "z = 2.24" in (alert["reason"])
    )
    # More approvals by county staff bring the rest of the county closer: the alert clears.
    for _ in range(3):
        decide(runtime, application(runtime, county))
    assert [x["status"] for x in alerts(runtime, "approval_rate_outlier")] == ["cleared"]


# Income bunching ---------------------------------------------------------------------------


def test_incomes_bunched_just_under_the_line(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    visits: dict[str, list[uuid.UUID]] = {"inv-a": [], "inv-b": []}

    def investigate(village: str, investigator: str, income: int) -> None:
        case = application(runtime, "440606", village_=village)
        services.cases.investigate_case(
            InvestigateCase(
                case_id=case.id,
                means_test=MeansTest(
                    (IncomeItem("wages", Decimal(str(income))),),
                    (),
                    1,
                    HomeVisit(
                        runtime.services.clock.now() - dt.timedelta(hours=2),
                        case.registered_division.code,
                        investigator,
                    ),
                ),
                contract_id=None,
                provenance=hire_staff_for(services, officer("440606", who=investigator)),
            )
        )
        visits[investigator].append(case.id)

    # The county's dibao standard (an event: domain/living_standards.py).
    services.standards.set_standard(
        SetStandard(
            division="440606",
            programme="dibao",
            effective_from=dt.date(2000, 1, 1),
            monthly_amount="1000",
            source="county notice (test)",
            provenance=approver("440606"),
        )
    )
    for income in (951, 958, 965, 972, 979, 986, 993, 999):
        investigate("001", "inv-a", income)  # 8 of 8 just under the line of 1000
    for income in (955, 960, 970, 980, 990, 995, 1000, 1050):
        investigate("002", "inv-b", income)  # 6 under, 2 over: p = 0.14
    investigate("002", "inv-b", 400)  # far from the line: not counted

    village = alerts(runtime, "income_bunching_village")
    assert [(x["subject_kind"], x["subject_id"]) for x in village] == [("division", "440606001001")]
    # the 8 investigations, and the standard they were placed against
    assert village[0]["county"] == "440606" and len(village[0]["evidence"]) == 9
    assert "8 of the 8" in village[0]["reason"]
    investigator = alerts(runtime, "income_bunching_investigator")
    inv_a = hire_staff_for(services, officer("440606", who="inv-a")).actor.id  # its record
    assert [(x["subject_kind"], x["subject_id"]) for x in investigator] == [("staff", inv_a)]

    # A correction moving one income well above the line leaves 7: below the minimum sample.
    case = ledger.get_case(visits["inv-a"][0])
    services.cases.correct_case_record(
        CorrectCaseRecord(
            case_id=case.id,
            corrects_version=next(iter(case.investigations)),
            correction=parse_correction(
                {"income_items": [{"source": "wages", "monthly_amount": "1800"}]}
            ),
            reason="pay slip found",
            provenance=officer("440606", who="inv-c"),
        )
    )
    assert [x["status"] for x in alerts(runtime, "income_bunching_village")] == ["cleared"]
    assert [x["status"] for x in alerts(runtime, "income_bunching_investigator")] == ["cleared"]


# Conflict of interest ----------------------------------------------------------------------


def test_conflicts_of_interest_declared_before_or_after_the_acts(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    key = runtime.settings.identity_key()

    def hire(name: str, kind: str = "handling_staff") -> uuid.UUID:
        staff = services.purchasing.hire_staff(
            HireStaff(name=name, kind=kind, government_unit="440103", provenance=BY_OFFICER)
        )
        services.purchasing.assign_staff(
            AssignStaff(staff_id=staff.id, division="440103", provenance=BY_OFFICER)
        )
        return staff.id

    def declare(staff_id: uuid.UUID, own: str, relatives: list[tuple[str, str]]) -> None:
        staff = ledger.get_staff(staff_id)
        staff.declare_interests(
            resident_id=own, relatives=relatives, key=key, provenance=BY_OFFICER
        )
        ledger.save(staff)

    # 1. An approver approves their sister's case, and declares her only afterwards.
    wang = hire("Wang", "approver")
    sister_case = application(runtime, "440103")
    decide(
        runtime,
        sister_case,
        decider=staff_actor(str(wang), Role.APPROVER),
    )
    declare(wang, resident_id(), [(sister_case.applicant_id, "sibling")])

    # 2. An investigator who lives in the applicant's household (declared beforehand).
    li, li_number = hire("Li"), resident_id(born="19900101")
    head = resident_id()
    home = services.cases.register_household(
        RegisterHousehold(
            registered_division="440103001001",
            residence_division="440103001001",
            members=(
                HouseholdMember(head, "Head", "head"),
                HouseholdMember(li_number, "Li", "sibling"),
            ),
            provenance=BY_CLERK,
        )
    )
    declare(li, li_number, [])
    shared = services.cases.receive_application(
        ReceiveApplication(
            household_id=home.id,
            applicant_id=head,
            programme="dibao",
            window_division="440103001",
            provenance=BY_CLERK,
        )
    )
    services.cases.investigate_case(
        InvestigateCase(
            case_id=shared.id,
            means_test=means_test("440103001001", visitor=str(li)),
            contract_id=None,
            provenance=staff_actor(str(li)),
        )
    )

    # 3. Near miss: declared relatives, none of them the applicant or in the household.
    zhao = hire("Zhao")
    declare(zhao, resident_id(), [(resident_id(), "spouse")])
    unrelated = application(runtime, "440103")
    decide(runtime, unrelated, investigator=staff_actor(str(zhao)))

    found = by_subject(alerts(runtime, "conflict_of_interest"))
    assert set(found) == {str(wang), str(li)}
    assert "declared sibling" in found[str(wang)]["reason"]
    assert "approver" in found[str(wang)]["reason"]
    assert "belong to the applicant's household" in found[str(li)]["reason"]
    assert found[str(li)]["severity"] == "high" and found[str(li)]["county"] == "440103"
    wang_declaration = max(positions(ledger, wang).values())
    assert wang_declaration in found[str(wang)]["evidence"]
    assert sister_case.applicant_id not in found[str(wang)]["reason"]

    # A corrected declaration (the sister was declared by mistake) clears it.
    declare(wang, resident_id(), [])
    assert by_subject(alerts(runtime, "conflict_of_interest"))[str(wang)]["status"] == "cleared"


# Contract money ----------------------------------------------------------------------------


def test_value_raised_after_a_poor_evaluation(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    today = runtime.services.clock.today()
    poor, _ = contract_for(runtime, items=["care_and_nursing"])
    good, _ = contract_for(runtime, items=["care_and_nursing"])
    for contract, score in ((poor, "42"), (good, "85")):
        services.purchasing.evaluate_contract(
            EvaluateContract(
                contract_id=contract.id,
                period_start=today - dt.timedelta(days=30),
                period_end=today - dt.timedelta(days=1),
                score=score,
                provenance=BY_SUPERVISOR,
            )
        )
        services.purchasing.amend_contract(
            AmendContract(
                contract_id=contract.id,
                reason="more households",
                value="80000",
                provenance=BY_OFFICER,
            )
        )
    found = alerts(runtime, "value_raised_after_poor_evaluation")
    assert [(x["subject_kind"], x["subject_id"]) for x in found] == [("contract", str(poor.id))]
    assert "42" in found[0]["reason"] and "80000" in found[0]["reason"]
    assert sorted(found[0]["evidence"]) == sorted(positions(ledger, poor.id).values())[1:]
    assert alerts(runtime, "billed_above_value") == []


def test_contracts_split_just_under_the_threshold(runtime: Runtime) -> None:
    today = runtime.services.clock.today()
    first, _ = contract_for(
        runtime, items=["care_and_nursing"], value="95000", awarded_on=today - dt.timedelta(days=25)
    )
    for days, value in ((12, "98000"), (2, "91000")):
        contract_for(
            runtime,
            items=["care_and_nursing"],
            value=value,
            awarded_on=today - dt.timedelta(days=days),
            contractor_id=first.contractor_id,
        )
    # Near misses: the same three values spread over 100 days, and three close together of
    # which one is not "just under".
    spread, _ = contract_for(
        runtime,
        items=["care_and_nursing"],
        value="95000",
        awarded_on=today - dt.timedelta(days=100),
    )
    for days in (50, 0):
        contract_for(
            runtime,
            items=["care_and_nursing"],
            value="95000",
            awarded_on=today - dt.timedelta(days=days),
            contractor_id=spread.contractor_id,
        )
    mixed, _ = contract_for(
        runtime, items=["care_and_nursing"], value="95000", awarded_on=today - dt.timedelta(days=5)
    )
    for value in ("96000", "60000"):
        contract_for(
            runtime,
            items=["care_and_nursing"],
            value=value,
            awarded_on=today - dt.timedelta(days=3),
            contractor_id=mixed.contractor_id,
        )
    found = alerts(runtime, "contract_splitting")
    assert [(x["subject_kind"], x["subject_id"]) for x in found] == [
        ("contractor", str(first.contractor_id))
    ]
    assert len(found[0]["evidence"]) == 3 and found[0]["county"] == "440103"


# Determinism, configuration, queries -------------------------------------------------------


def write_story(runtime: Runtime) -> None:
    """A history in which many rules fire, clear, and stay silent."""
    today = runtime.services.clock.today()
    yesterday = today - dt.timedelta(days=1)
    case = approved_case(runtime, start_date=month_start(today, -2))
    for offset in (-2, -1, 0):
        runtime.services.cases.record_payment(
            RecordPayment(
                case_id=case.id, period=month(today, offset), amount="900", provenance=officer()
            )
        )
    contract, code = contract_for(runtime, items=["care_and_nursing", "psychological_counselling"])
    for hour in (9, 10):
        serve(
            runtime,
            case,
            at(yesterday, hour),
            at(yesterday, hour + 2),
            by=worker(code),
            contract_id=contract.id,
            item="care_and_nursing",
        )
    runtime.services.purchasing.terminate_contract(
        TerminateContract(
            contract_id=contract.id,
            effective_at=at(yesterday, 0),
            basis="law",
            reason="fraud",
            provenance=BY_OFFICER,
        )
    )
    runtime.services.cases.record_death(
        RecordDeath(
            resident_id=case.applicant_id,
            on=month_start(today, -1) - dt.timedelta(days=1),
            provenance=BY_CLERK,
        )
    )
    for _ in range(4):
        approved_case(runtime, "440104")  # four home visits by officer-1 in one day
    other = approved_case(runtime)
    voided = serve(runtime, other, at(yesterday, 13), at(yesterday, 15), by=officer(who="c"))
    serve(runtime, other, at(yesterday, 14), at(yesterday, 16), by=officer(who="c"))
    runtime.services.cases.correct_case_record(
        CorrectCaseRecord(
            case_id=other.id,
            corrects_version=voided,
            correction=parse_correction({"void": True}),
            reason="dup",
            provenance=officer(),
        )
    )
    # The remaining kinds of event the projection reads, so that replay covers them all.
    runtime.services.cases.review_case(
        ReviewCase(
            case_id=other.id,
            outcome="adjust",
            notes="new pension",
            new_monthly_amount="800",
            effective_from=today,
            provenance=hire_staff_for(runtime.services, approver()),
        )
    )
    runtime.services.cases.review_case(
        ReviewCase(case_id=other.id, outcome="continue", notes="unchanged", provenance=approver())
    )
    runtime.services.cases.correct_case_record(
        CorrectCaseRecord(
            case_id=other.id,
            corrects_version=next(iter(runtime.ledger.get_case(other.id).investigations)),
            correction=parse_correction({"household_size": 2}),
            reason="a child was left out",
            provenance=officer(who="officer-2"),
        )
    )
    rejected = application(runtime, "440103")
    decide(runtime, rejected, approve=False)
    running, _ = contract_for(runtime, items=["care_and_nursing"])
    runtime.services.purchasing.invoice_contract(
        InvoiceContract(
            contract_id=running.id,
            invoice_number="2026-001",
            period_start=today - dt.timedelta(days=30),
            period_end=today - dt.timedelta(days=1),
            amount="20000",
            provenance=BY_OFFICER,
        )
    )
    runtime.services.purchasing.evaluate_contract(
        EvaluateContract(
            contract_id=running.id,
            period_start=today - dt.timedelta(days=30),
            period_end=today - dt.timedelta(days=1),
            score="55",
            provenance=BY_SUPERVISOR,
        )
    )
    runtime.services.purchasing.renew_contract(
        RenewContract(
            contract_id=running.id,
            new_end=today + dt.timedelta(days=400),
            added_value="30000",
            reason="second year",
            provenance=BY_OFFICER,
        )
    )
    staff = runtime.services.purchasing.hire_staff(
        HireStaff(
            name="Zhou", kind="handling_staff", government_unit="440103", provenance=BY_OFFICER
        )
    )
    declared = runtime.ledger.get_staff(staff.id)
    declared.declare_interests(
        resident_id=resident_id(),
        relatives=[(rejected.applicant_id, "child")],
        key=runtime.settings.identity_key(),
        provenance=BY_OFFICER,
    )
    runtime.ledger.save(declared)


def test_a_rebuild_gives_the_same_alerts_as_the_incremental_run(runtime: Runtime) -> None:
    write_story(runtime)
    run(runtime, batch=1)
    incremental = projection_tables(runtime, "rm_red_flags_g1")
    rules = {row[1] for row in incremental["alerts"]}
    assert {
        "record_after_death",
        "work_after_termination",
        "overlapping_records",
        "home_visits_over_ceiling",
        "value_raised_after_poor_evaluation",
    } <= rules
    # Event by event, an alert is raised and later cleared (the voided service's overlap).
    assert {row[12] for row in incremental["alerts"]} == {"open", "cleared"}
    for row in incremental["alerts"]:
        assert row[0] == alert_id(row[1], row[2])  # ids from rule and key only
    concluded = projection_conclusions(runtime, "rm_red_flags_g1")
    rebuild(runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, Flags, batch_size=500)
    # One batch: the same open alerts (ids, evidence, first and last seen), the same facts.
    assert projection_conclusions(runtime, "rm_red_flags_g2") == concluded
    rebuilt = projection_tables(runtime, "rm_red_flags_g2")
    # Applying the same events again (a replay over the built tables) changes nothing.
    with runtime.pool.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL search_path TO rm_red_flags_g2")
        notifications = runtime.ledger.recorder.select_notifications(start=None, limit=100_000)
        projection = Flags()
        events = [
            RecordedEvent(
                n.id,
                n.originator_id,
                n.originator_version,
                n.topic,
                runtime.ledger.mapper.to_domain_event(n),
            )
            for n in notifications
            if n.topic in set(Flags.topics())
        ]
        BatchApplier(projection).apply(conn, events)
    assert projection_tables(runtime, "rm_red_flags_g2") == rebuilt


def test_other_thresholds_need_a_rebuild(runtime: Runtime) -> None:
    write_story(runtime)
    run(runtime)

    class Stricter(RedFlagsProjection):
        preset_config = dataclasses.replace(CONFIG, max_home_visits_per_day=10)

    approved_case(runtime)
    with pytest.raises(ProjectionHalted) as halted:
        run(runtime, Stricter)
    assert isinstance(halted.value.cause, ConfigurationChanged)
    rebuild(runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, Stricter)
    run(runtime, Stricter)
    with runtime.pool.connection() as conn:
        row = conn.execute("SELECT fingerprint FROM rm_red_flags_g2.rf_config").fetchone()
        assert row == (Stricter.preset_config.fingerprint,)  # type: ignore[union-attr]
        rules = {r[0] for r in conn.execute("SELECT rule FROM read_models.alerts").fetchall()}
    assert "home_visits_over_ceiling" not in rules


def test_query_alerts_filters_and_pages_by_key(runtime: Runtime) -> None:
    write_story(runtime)
    run(runtime, batch=1)  # event by event: an alert is raised, then cleared
    everything = alerts(runtime)
    assert len(everything) >= 4
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        seen: list[Any] = []
        token = None
        for _ in itertools.count():
            page, token = query_alerts(cursor, limit=2, after=token)
            seen.extend(a["alert_id"] for a in page)
            if token is None:
                break
        assert sorted(seen) == sorted(a["alert_id"] for a in everything)
        assert len(seen) == len(set(seen))
        opened, _ = query_alerts(cursor, status="cleared")
        assert opened and all(a["status"] == "cleared" for a in opened)
        county, _ = query_alerts(cursor, county="440104")
        assert {a["rule"] for a in county} == {"home_visits_over_ceiling"}
        contractor = next(a["contractor_id"] for a in everything if a["contractor_id"])
        mine, _ = query_alerts(cursor, contractor_id=contractor)
        assert mine and all(a["contractor_id"] == contractor for a in mine)
        assert query_alerts(cursor, rule="contract_splitting") == ([], None)


@pytest.mark.parametrize("first, second", [(1, 7), (500, 3)])
def test_a_rebuild_in_two_stages_gives_the_same_alerts(
    runtime: Runtime, first: int, second: int
) -> None:
    """The facts applied first, the rules behind them in batches of their own (seeing facts
    of later events): the same open alerts, evidence and facts as event by event."""
    write_story(runtime)
    run(runtime, batch=1)
    concluded = projection_conclusions(runtime, "rm_red_flags_g1")
    stages: list[StageInThread] = []

    def second_stage(schema: str) -> StageInThread:
        stages.append(StageInThread(runtime, Flags, schema, second))
        return stages[-1]

    rebuild(
        runtime.pool,
        runtime.ledger.recorder,
        runtime.ledger.mapper,
        Flags,
        batch_size=first,
        second_stage=second_stage,
    )
    assert len(stages) == 1 and stages[0].runner.position > 0
    assert projection_conclusions(runtime, "rm_red_flags_g2") == concluded
