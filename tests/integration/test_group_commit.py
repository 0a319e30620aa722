"""Group commit (infra/group_commit.py) on the real PostgreSQL: the inserts of threads that
arrive while another is written go together in one transaction, a savepoint each; a conflict
fails only its own insert, any other database error the whole group with nothing written."""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import DataError, RecordConflictError, StoredEvent

from domain.clock import Clock
from domain.household import Household, HouseholdMember
from infra.audit_verify import verify_log
from infra.database import FailFastApplicationRecorder
from infra.runtime import Runtime
from infra.settings import Settings
from tests.factories import BY_CLERK, resident_id, village

pytestmark = pytest.mark.integration


@pytest.fixture()
def grouped(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.open(dataclasses.replace(settings, group_commit=True))
    yield rt
    rt.close()


def new_household(runtime: Runtime, name: str) -> list[StoredEvent]:
    """A new household's stored events (sealed by the ledger's mapper), not yet recorded."""
    place = village()
    home = Household.register(
        registered_division=place,
        residence_division=place,
        members=[HouseholdMember(resident_id(), name, "head")],
        today=Clock().today(),
        provenance=BY_CLERK,
    )
    return [runtime.ledger.mapper.to_stored_event(e) for e in home.collect_events()]


def stored_positions(runtime: Runtime, home: Household) -> list[int]:
    with psycopg.connect(runtime.database_url) as conn:
        return [
            int(row[0])
            for row in conn.execute(
                "SELECT notification_id FROM public.relief_events WHERE originator_id = %s"
                " ORDER BY originator_version",
                (home.id,),
            ).fetchall()
        ]


def recorder_of(runtime: Runtime) -> FailFastApplicationRecorder:
    recorder = runtime.ledger.recorder
    assert isinstance(recorder, FailFastApplicationRecorder) and recorder.groups is not None
    return recorder


def stored_at(runtime: Runtime, events: Sequence[StoredEvent]) -> list[tuple[int, bytes]]:
    with psycopg.connect(runtime.database_url) as conn:
        return [
            (int(row[0]), bytes(row[1]))
            for event in events
            for row in conn.execute(
                "SELECT notification_id, state FROM public.relief_events"
                " WHERE originator_id = %s AND originator_version = %s",
                (event.originator_id, event.originator_version),
            ).fetchall()
        ]


def inserts_queued_behind_a_held_lock(
    runtime: Runtime, first: list[StoredEvent], then: list[list[StoredEvent]]
) -> tuple[dict[int, Any], tuple[int, int]]:
    """``first`` inserted by a thread that leads and waits on the table lock (held here by
    another session), then each of ``then`` by a thread of its own, queued behind it; the lock
    is let go once all are queued. What each insert answered (positions or the exception), by
    index (0: ``first``), and how many groups and inserts were written."""
    recorder = recorder_of(runtime)
    return queued_behind_a_held_lock(
        runtime, [lambda events=events: recorder.insert_events(events) for events in [first, *then]]
    )


def queued_behind_a_held_lock(
    runtime: Runtime, writes: list[Callable[[], Any]]
) -> tuple[dict[int, Any], tuple[int, int]]:
    """The first of ``writes`` run by a thread that leads and waits on the table lock (held
    here by another session), then each of the others by a thread of its own, queued behind
    it; the lock is let go once all are queued. What each answered (or raised), by index, and
    how many groups and inserts were written."""
    groups = recorder_of(runtime).groups
    assert groups is not None
    answers: dict[int, Any] = {}

    def run(index: int) -> None:
        try:
            answers[index] = writes[index]()
        except Exception as error:
            answers[index] = error

    groups_before, inserts_before = groups.groups, groups.inserts
    with psycopg.connect(runtime.database_url) as holder:
        holder.execute("LOCK TABLE public.relief_events IN EXCLUSIVE MODE")
        leader = threading.Thread(target=run, args=(0,))
        leader.start()
        until(lambda: groups.leading)
        followers = [threading.Thread(target=run, args=(i,)) for i in range(1, len(writes))]
        for thread in followers:
            thread.start()
        until(lambda: groups.queued() == len(followers))
        holder.rollback()  # the lock goes: the leader writes, then the group behind it
    for thread in [leader, *followers]:
        thread.join()
    return answers, (groups.groups - groups_before, groups.inserts - inserts_before)


def until(condition: Callable[[], bool]) -> None:
    """Wait for another thread to get there (a guard against a hang, not a timing)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "the threads never got there"
        time.sleep(0.005)


def test_a_conflict_in_a_group_fails_only_its_own_command(grouped: Runtime) -> None:
    taken = new_household(grouped, "Li Na")
    before = recorder_of(grouped).insert_events(taken)
    assert before
    others = [new_household(grouped, "Member " + "ABCDE"[n]) for n in range(4)]
    # The same aggregate and version as one recorded already: a stale writer's event.
    stale = [StoredEvent(e.originator_id, e.originator_version, e.topic, e.state) for e in taken]
    first = new_household(grouped, "Wang Fang")
    answers, sizes = inserts_queued_behind_a_held_lock(
        grouped, first, [others[0], others[1], stale, others[2], others[3]]
    )
    assert sizes == (2, 6)  # the leader alone, then the five queued behind it in one group
    assert isinstance(answers[3], RecordConflictError)  # the API's 409 (api/problems.py)
    recorded = [answers[i] for i in (0, 1, 2, 4, 5)]
    assert all(isinstance(p, list) and len(p) == 1 for p in recorded)
    positions = [p[0] for p in recorded]
    assert positions == sorted(positions) and len(set(positions)) == 5
    # Each caller's positions are where its own sealed bytes are, in the order they queued.
    for events, answer in zip([first, *others[:2], *others[2:]], recorded, strict=True):
        assert stored_at(grouped, events) == [(answer[0], bytes(events[0].state))]
    # The stale event was not written over the recorded one.
    assert stored_at(grouped, taken) == [(before[0], bytes(taken[0].state))]
    report = verify_log(
        grouped.database_url, cipher_key=base64.b64decode(grouped.settings.cipher_key())
    )
    assert report.intact and report.intact_up_to == grouped.head_position()


def test_a_database_error_in_a_group_fails_it_all_and_writes_nothing(grouped: Runtime) -> None:
    first = new_household(grouped, "Wang Fang")
    good = [new_household(grouped, "Member " + "ABCDE"[n]) for n in range(2)]
    event = new_household(grouped, "Zhao Lei")[0]
    # A version beyond bigint: the server refuses the statement (not a conflict).
    broken = [StoredEvent(event.originator_id, 2**63, event.topic, event.state)]
    head = grouped.head_position()
    answers, sizes = inserts_queued_behind_a_held_lock(grouped, first, [good[0], broken, good[1]])
    assert sizes == (2, 4)  # the leader alone, then the three queued behind it
    assert isinstance(answers[0], list)  # the leader's own insert, alone before the group
    for index in (1, 2, 3):
        assert isinstance(answers[index], DataError), answers[index]
        assert not isinstance(answers[index], RecordConflictError)
    assert grouped.head_position() == answers[0][0]
    assert grouped.head_position() == head + 1
    for events in [*good, broken]:
        assert stored_at(grouped, events) == []
    report = verify_log(
        grouped.database_url, cipher_key=base64.b64decode(grouped.settings.cipher_key())
    )
    assert report.intact and report.intact_up_to == grouped.head_position()
    # The recorder is not left stuck: the next insert leads and is recorded.
    assert recorder_of(grouped).insert_events(good[0])


def test_saves_of_the_ledger_are_grouped_and_a_stale_one_is_refused(grouped: Runtime) -> None:
    """Through ``ReliefLedger.save``, as the API's commands save (the library passes
    ``tracking=None``): concurrent saves share a group; a save from a stale version is
    refused as a conflict (409), the others are recorded and cached at their new version."""
    ledger = grouped.ledger
    place = village()
    homes = [
        Household.register(
            registered_division=place,
            residence_division=place,
            members=[HouseholdMember(resident_id(), "Member " + letter, "head")],
            today=Clock().today(),
            provenance=BY_CLERK,
        )
        for letter in "ABCD"
    ]
    ledger.save(homes[3])
    stale = ledger.get_household(homes[3].id)
    newer = ledger.get_household(homes[3].id)
    for copy, name in ((newer, "Hu Jun"), (stale, "Sun Li")):
        copy.add_member(
            member=HouseholdMember(resident_id(), name, "spouse"),
            by_birth=False,
            today=Clock().today(),
            provenance=BY_CLERK,
        )
    ledger.save(newer)
    answers, written = queued_behind_a_held_lock(
        grouped,
        [lambda h=h: ledger.save(h) for h in homes[:3]] + [lambda: ledger.save(stale)],
    )
    assert written == (2, 4)
    assert isinstance(answers[3], RecordConflictError)
    for index in range(3):
        assert [r.notification.id for r in answers[index]] == stored_positions(
            grouped, homes[index]
        )
    names = {m.name for m in ledger.get_household(homes[3].id).members.values()}
    assert "Hu Jun" in names and "Sun Li" not in names
