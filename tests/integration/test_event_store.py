"""The event store on a real PostgreSQL: one ordered log, provenance on every event, conflicts."""

import json
import multiprocessing
import threading
import uuid

import psycopg
import pytest
from eventsourcing.persistence import RecordConflictError

from domain.errors import CaseAlreadyClosed, NotFound, VersionMismatch
from infra.database import store_env
from infra.ledger import ReliefLedger
from infra.runtime import Runtime
from infra.schema import init_schema
from projections.registry import ALL_PROJECTIONS
from tests.factories import BY_CLERK, resident_id, village

pytestmark = pytest.mark.integration


def test_open_and_close_are_stored_in_one_ordered_log(runtime: Runtime) -> None:
    ledger = runtime.ledger
    first = ledger.open_case(
        programme="dibao",
        applicant_id=resident_id(),
        registered_division=village(),
        provenance=BY_CLERK,
    )
    second = ledger.open_case(
        programme="tekun",
        applicant_id=resident_id(),
        registered_division=village("440305"),
        provenance=BY_CLERK,
    )
    ledger.close_case(first.id, reason_code="voluntary", provenance=BY_CLERK)

    notifications = ledger.recorder.select_notifications(start=None, limit=10)
    assert [(n.originator_id, n.originator_version) for n in notifications] == [
        (first.id, 1),
        (second.id, 1),
        (first.id, 2),
    ]
    assert [n.id for n in notifications] == sorted(n.id for n in notifications)
    stored = json.loads(notifications[2].state)
    assert stored["reason_code"] == "voluntary"
    assert stored["provenance"]["_data_"] == {
        "actor_id": "clerk-1",
        "actor_role": "intake_clerk",
        "actor_organisation": "440103",
        "reason": "walk-in application",
        "correlation_id": "corr-1",
    }
    assert "timestamp" in stored
    reloaded = ledger.get_case(first.id)
    assert reloaded.status.value == "closed" and reloaded.version == 2
    assert ledger.get_case(first.id, version=1).status.value == "open"


def test_refusals_record_nothing(runtime: Runtime) -> None:
    ledger = runtime.ledger
    case = ledger.open_case(
        programme="dibao",
        applicant_id=resident_id(),
        registered_division=village(),
        provenance=BY_CLERK,
    )
    ledger.close_case(case.id, reason_code="death", provenance=BY_CLERK)
    head = ledger.recorder.max_notification_id()
    with pytest.raises(CaseAlreadyClosed):
        ledger.close_case(case.id, reason_code="death", provenance=BY_CLERK)
    with pytest.raises(NotFound):
        ledger.get_case(uuid.uuid4())
    assert ledger.recorder.max_notification_id() == head


def test_a_stale_expected_version_is_refused(runtime: Runtime) -> None:
    ledger = runtime.ledger
    case = ledger.open_case(
        programme="dibao",
        applicant_id=resident_id(),
        registered_division=village(),
        provenance=BY_CLERK,
    )
    with pytest.raises(VersionMismatch):
        ledger.close_case(case.id, reason_code="death", provenance=BY_CLERK, expected_version=7)
    assert ledger.get_case(case.id).version == 1


def test_two_writers_of_the_same_version_one_wins(runtime: Runtime, database_url: str) -> None:
    """Optimistic concurrency: two ledgers load version 1 and both try to close."""
    case = runtime.ledger.open_case(
        programme="dibao",
        applicant_id=resident_id(),
        registered_division=village(),
        provenance=BY_CLERK,
    )
    other = ReliefLedger(env=store_env(database_url, pool_size=1))
    try:
        mine, theirs = runtime.ledger.get_case(case.id), other.get_case(case.id)
        mine.close(reason_code="death", provenance=BY_CLERK)
        theirs.close(reason_code="voluntary", provenance=BY_CLERK)
        runtime.ledger.save(mine)
        with pytest.raises(RecordConflictError):
            other.save(theirs)
    finally:
        other.close()
    assert runtime.ledger.get_case(case.id).closure_reason.value == "death"


def _init(url: str, barrier: "multiprocessing.synchronize.Barrier") -> None:
    barrier.wait()
    init_schema(url, ALL_PROJECTIONS)


def test_processes_starting_together_do_not_race_on_the_schema(database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    processes = [context.Process(target=_init, args=(database_url, barrier)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    with psycopg.connect(database_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT schemaname || '.' || tablename FROM pg_tables"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
        }
    assert {
        "public.relief_events",
        "relief.projections",
        "relief.relay_state",
        "rm_caseload_g1.caseload",
    } <= tables


def test_concurrent_opens_get_distinct_increasing_positions(runtime: Runtime) -> None:
    errors: list[BaseException] = []

    def open_some() -> None:
        try:
            for _ in range(10):
                runtime.ledger.open_case(
                    programme="temporary",
                    applicant_id=resident_id(),
                    registered_division=village(),
                    provenance=BY_CLERK,
                )
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=open_some) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ids = [n.id for n in runtime.ledger.recorder.select_notifications(start=None, limit=100)]
    assert len(ids) == 40 and len(set(ids)) == 40 and ids == sorted(ids)
