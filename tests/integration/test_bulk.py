"""The bulk path against the real PostgreSQL: units are all-or-nothing, the stored events are
the ones the commands produced, seeds are deterministic, legacy imports report their rejects."""

from __future__ import annotations

import collections
import datetime as dt
import gc
import json
import sys
import uuid
from typing import Any

import psycopg
import pytest

from domain.clock import SetClock
from domain.commands.cases import ReceiveApplication, RegisterHousehold
from domain.errors import DomainError
from domain.household import HouseholdMember
from infra.legacy_import import import_lines
from infra.runtime import Bulk, Runtime
from tests.factories import BY_CLERK, resident_id, village
from tests.integration.helpers import REFERENCE, caseload_rows
from tools.synthetic.legacy import legacy_lines
from tools.synthetic.province import SimulatedClock, seed_province

pytestmark = pytest.mark.integration


def stored_topics(runtime: Runtime) -> collections.Counter[str]:
    with psycopg.connect(runtime.database_url) as conn:
        rows = conn.execute(
            "SELECT topic, count(*) FROM relief_events WHERE NOT topic LIKE ANY(%s) GROUP BY topic",
            (REFERENCE,),
        ).fetchall()
    return collections.Counter({topic: count for topic, count in rows})


def test_a_refused_unit_leaves_nothing_and_the_others_are_kept(runtime: Runtime) -> None:
    bulk = runtime.bulk(SetClock(runtime.services.clock.now()))
    ledger, services = bulk.store, bulk.services
    kept, lost = resident_id(), resident_id()
    with ledger.unit():
        services.cases.register_household(
            RegisterHousehold(
                registered_division=village(),
                residence_division=village(),
                members=(HouseholdMember(kept, "Chen Hua", "head"),),
                provenance=BY_CLERK,
            )
        )
    with pytest.raises(DomainError), ledger.unit():
        home = services.cases.register_household(
            RegisterHousehold(
                registered_division=village(),
                residence_division=village(),
                members=(HouseholdMember(lost, "Li Ming", "head"),),
                provenance=BY_CLERK,
            )
        )
        services.cases.receive_application(
            ReceiveApplication(
                household_id=home.id,
                applicant_id=lost,
                programme="lottery",
                window_division="440103001",
                provenance=BY_CLERK,
            )
        )
    assert services.cases.find_person(lost) is None  # not even in memory
    assert ledger.kept_events == 2  # the first unit: household and person
    ledger.flush()
    assert runtime.services.cases.find_person(kept) is not None
    assert runtime.services.cases.find_person(lost) is None
    assert sum(stored_topics(runtime).values()) == 2


def test_seeding_stores_exactly_the_events_the_commands_produced(runtime: Runtime) -> None:
    clock = SimulatedClock(dt.date(2026, 11, 27))
    bulk = runtime.bulk(clock, flush_events=200)
    ledger = bulk.store
    seed_province(bulk, clock, households=60, seed=3)
    assert ledger.events_written == sum(stored_topics(runtime).values()) > 60 * 5
    # Every aggregate the bulk ledger holds in memory equals the same aggregate replayed from
    # the store: what was written is what the domain produced.
    checked = 0
    for aggregate in list(ledger._clean.values())[:400]:
        replayed = runtime.ledger.repository.get(aggregate.id)
        assert replayed.version == aggregate.version
        assert vars(replayed) == vars(aggregate)
        checked += 1
    assert checked > 100


def test_the_same_seed_gives_the_same_province(settings: Any, tmp_path: Any) -> None:
    from tests.conftest import fresh_database  # the fixture's helper, for a second database

    shapes = []
    for _ in range(2):
        url = fresh_database(settings.database_url)
        runtime = Runtime.open(settings.with_(database_url=url, data_dir=tmp_path / "d"))
        try:
            clock = SimulatedClock(dt.date(2026, 11, 27))
            seed_province(runtime.bulk(clock), clock, households=80, seed=11)
            from projections.caseload import CaseloadProjection

            runtime.projection_runner(CaseloadProjection).catch_up()
            shapes.append((stored_topics(runtime), caseload_rows(runtime.database_url)))
        finally:
            runtime.close()
    assert shapes[0] == shapes[1]
    topics, caseload = shapes[0]
    assert topics["domain.case:ReliefCase.PaymentRecorded"] > 100
    assert {row[2] for row in caseload} >= {"approved", "closed", "rejected"}


def test_a_legacy_import_keeps_good_lines_and_reports_the_rest(runtime: Runtime) -> None:
    bulk: Bulk = runtime.bulk(SetClock(runtime.services.clock.now()))
    villages = [code for code in runtime.register.current() if len(code) == 12]
    lines = list(
        legacy_lines(50, seed=2, bad_every=10, today=dt.date(2026, 11, 27), villages=villages)
    )
    report = import_lines(bulk, lines)
    assert (report.read, report.imported, len(report.rejects)) == (50, 45, 5)
    by_line = {r.line: r for r in report.rejects}
    assert sorted(by_line) == [10, 20, 30, 40, 50]
    assert by_line[10].field == "members[0].resident_id"
    assert by_line[10].rule == "invalid-identifier"
    assert by_line[20].field == "programme"
    assert by_line[30].field is not None and by_line[30].field.startswith("payments[")
    assert by_line[40].rule == "malformed-json"
    assert by_line[50].field == "legacy_flag"
    assert report.events == sum(stored_topics(runtime).values())
    imported_cases = []
    for number, line in enumerate(lines, start=1):
        if number in by_line:
            if by_line[number].rule in ("invalid-format", "invalid-value"):
                applicant = json.loads(line)["household"]["members"][0]["resident_id"]
                assert runtime.services.cases.find_person(applicant) is None, (
                    number
                )  # nothing half-written
            continue
        applicant = json.loads(line)["household"]["members"][0]["resident_id"]
        person = runtime.services.cases.find_person(applicant)
        assert person is not None and len(person.cases) == 1
        imported_cases.extend(person.cases)
    statuses = {runtime.ledger.get_case(case_id).status.value for case_id in imported_cases}
    assert statuses <= {"approved", "closed"} and "approved" in statuses


def test_whether_an_aggregate_exists_is_answered_from_the_log_and_the_runs_own_writes(
    runtime: Runtime,
) -> None:
    known = resident_id()
    runtime.services.cases.register_household(
        RegisterHousehold(
            registered_division=village(),
            residence_division=village(),
            members=(HouseholdMember(known, "Wang Fang", "head"),),
            provenance=BY_CLERK,
        )
    )
    bulk = runtime.bulk(SetClock(runtime.services.clock.now()), flush_events=1)
    ledger, cases = bulk.store, bulk.services.cases
    before = cases.person_id(known)
    assert ledger.exists(before)  # written before the run: read from the log
    assert not ledger.exists(uuid.uuid4())
    new = resident_id()
    with ledger.unit():
        cases.register_household(
            RegisterHousehold(
                registered_division=village(),
                residence_division=village(),
                members=(HouseholdMember(new, "Zhao Lei", "head"),),
                provenance=BY_CLERK,
            )
        )
    ledger.flush()
    ledger._clean.clear()  # forgotten in memory: answered by the ids the flushes kept
    assert ledger.exists(cases.person_id(new))
    assert ledger.exists(before)
    ledger.close()


def test_the_collector_runs_once_per_transaction_and_is_back_on_after_the_block(
    runtime: Runtime,
) -> None:
    bulk = runtime.bulk(SetClock(runtime.services.clock.now()), flush_events=2)
    ledger, cases = bulk.store, bulk.services.cases
    passes: list[int] = []

    def counted(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    assert gc.isenabled()
    gc.callbacks.append(counted)
    try:
        with pytest.raises(DomainError), ledger.collector_per_transaction():
            for _ in range(3):  # each a household and its person: one transaction each
                with ledger.unit():
                    cases.register_household(
                        RegisterHousehold(
                            registered_division=village(),
                            residence_division=village(),
                            members=(HouseholdMember(resident_id(), "Sun Li", "head"),),
                            provenance=BY_CLERK,
                        )
                    )
                assert not gc.isenabled()
            with ledger.unit():
                cases.register_household(
                    RegisterHousehold(
                        registered_division="not a division",
                        residence_division=village(),
                        members=(HouseholdMember(resident_id(), "Sun Li", "head"),),
                        provenance=BY_CLERK,
                    )
                )
    finally:
        gc.callbacks.remove(counted)
    assert gc.isenabled()  # back on, though the block ended by an exception
    assert passes == [1, 1, 1]  # one young pass per hand-over, none of its own between
    ledger.close()
    with ledger.collector_per_transaction():
        pass
    gc.disable()  # the caller's choice stands
    try:
        with ledger.collector_per_transaction():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_writer_gets_its_turns_during_an_import_and_the_interval_is_put_back(
    runtime: Runtime,
) -> None:
    ledger = runtime.bulk(SetClock(runtime.services.clock.now())).store
    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError), ledger.writer_turns():
        assert sys.getswitchinterval() == ledger.WRITER_SWITCH_S < before
        raise RuntimeError("an import that fails")
    assert sys.getswitchinterval() == before
    ledger.close()
