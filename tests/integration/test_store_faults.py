"""The store and the projection runner meet a transient database failure: nothing is halted,
refused, lost or recorded twice (issue 16, item 5)."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest
from eventsourcing.persistence import RecordConflictError, StoredEvent
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict

from api.safe_writes import IdempotencyStore
from domain.case import ReliefCase
from domain.clock import Clock
from domain.household import Household, HouseholdMember
from infra.projection_runner import PostgresFeedRunner, ProjectionHalted, projection_status
from infra.runtime import Runtime
from projections.base import RecordedEvent, handles
from projections.caseload import CaseloadProjection
from projections.registry import ALL_PROJECTIONS
from tests.factories import BY_CLERK, resident_id, village
from tests.integration.helpers import caseload_rows, register_head
from tests.scenario import application

pytestmark = pytest.mark.integration


def end_sessions(runtime: Runtime) -> int:
    """What a failover does: end every other session of the test's database."""
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (conninfo_to_dict(runtime.database_url)["dbname"],),
        ).fetchall()
    return len(rows)


def test_an_insert_cut_off_after_its_commit_is_neither_refused_nor_recorded_twice(
    runtime: Runtime,
) -> None:
    ledger, recorder = runtime.ledger, runtime.ledger.recorder
    place = village()
    home = Household.register(
        registered_division=place,
        residence_division=place,
        members=[HouseholdMember(resident_id(), "Chen Hua", "head")],
        today=Clock().today(),
        provenance=BY_CLERK,
    )
    stored = [ledger.mapper.to_stored_event(e) for e in home.collect_events()]
    positions = recorder.insert_events(stored)
    assert positions
    # The commit went through, but the answer was lost with the session: the same insert is
    # sent again on a session that is gone.
    assert end_sessions(runtime) > 0
    assert recorder.insert_events(stored) == positions
    assert recorder.max_notification_id() == positions[-1]
    # Other events at versions already taken are refused as ever (a real conflict).
    others = [
        StoredEvent(s.originator_id, s.originator_version, s.topic, s.state + b"\x00")
        for s in stored
    ]
    assert end_sessions(runtime) > 0
    with pytest.raises(RecordConflictError):
        recorder.insert_events(others)


def test_a_command_whose_commit_was_in_doubt_is_settled_before_its_key_answers(
    runtime: Runtime,
) -> None:
    """A command cut off in its COMMIT, with the database away too long to tell: its
    Idempotency-Key is held, then settled by looking for its sealed events. Recorded, a retry
    is told so (409 naming the records) and the command is not run again; not recorded, the
    key is free and a retry runs it."""
    ledger = runtime.ledger
    keys = IdempotencyStore(runtime.pool, None, runtime.were_recorded)
    place = village()

    def household_events() -> list[StoredEvent]:
        home = Household.register(
            registered_division=place,
            residence_division=place,
            members=[HouseholdMember(resident_id(), "Chen Hua", "head")],
            today=Clock().today(),
            provenance=BY_CLERK,
        )
        return [ledger.mapper.to_stored_event(e) for e in home.collect_events()]

    recorded, lost = household_events(), household_events()
    head = ledger.recorder.max_notification_id() or 0
    ledger.recorder.insert_events(recorded)
    for key, events in (("key-recorded", recorded), ("key-not-recorded", lost)):
        assert keys.claim("caller", key, b"request") == ("new", None)
        keys.hold_in_doubt("caller", key, events)

    outcome, kept = keys.claim("caller", "key-recorded", b"request")
    assert outcome == "done" and kept[0] == 409
    problem = json.loads(kept[2])
    assert problem["type"] == "/problems/recorded-answer-lost"
    assert {r["id"] for r in problem["records"]} == {str(recorded[0].originator_id)}
    assert keys.claim("caller", "key-not-recorded", b"request") == ("new", None)
    assert ledger.recorder.max_notification_id() == head + len(recorded)


class Serialising(CaseloadProjection):
    """Meets a serialization failure on its first event, as a busy server may answer."""

    failures = 1

    @handles(ReliefCase.ApplicationReceived)
    def received(self, cursor, recorded: RecordedEvent) -> None:  # type: ignore[no-untyped-def]
        if Serialising.failures:
            Serialising.failures -= 1
            raise errors.SerializationFailure("could not serialize access")
        super().received(cursor, recorded)


def test_a_transient_failure_does_not_halt_a_projection(runtime: Runtime) -> None:
    application(runtime)
    runner = PostgresFeedRunner(
        runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, Serialising
    )
    with pytest.raises(ProjectionHalted):  # the run stops; its supervisor starts it again
        runner.run_forever(threading.Event())
    status = next(
        s
        for s in projection_status(runtime.pool, ALL_PROJECTIONS, runtime.head_position())
        if s.name == "caseload"
    )
    # not halted, nothing applied: where the template's runner left it, after the register
    assert status.last_error is None and status.position == register_head(runtime.database_url)
    runner.catch_up()
    assert [row[3] for row in caseload_rows(runtime.database_url)] == [1]
