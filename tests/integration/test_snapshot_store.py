"""Snapshots in PostgreSQL: taken by saves and by the bulk path, sealed to their place like
events, outside the audit chain, ignored when they do not open, and used by as-of loads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from domain.case import ReliefCase
from domain.clock import SetClock
from domain.commands.cases import ReviewCase
from domain.errors import NotFound
from infra.audit_verify import verify_log
from infra.ledger import ABSENT, RecordUnreadable, WouldLoad, replay, request_loads
from infra.runtime import Runtime
from infra.sealing import place, seal_of
from infra.settings import Settings
from tests.factories import officer
from tests.scenario import application, approve, write_history


@pytest.fixture()
def snapshotting(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.open(settings.with_(snapshot_interval=2))
    yield runtime
    runtime.close()


def rows(runtime: Runtime, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def execute(runtime: Runtime, statement: str, params: tuple[Any, ...] = ()) -> None:
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute(statement, params)


def full_replay(runtime: Runtime, case_id: Any, version: int | None = None) -> Any:
    return replay(None, runtime.ledger.events.get(case_id, lte=version))


def reviewed_case(runtime: Runtime, reviews: int) -> ReliefCase:
    case = application(runtime)
    approve(runtime, runtime.ledger.get_case(case.id))
    for _ in range(reviews):
        runtime.services.cases.review_case(
            ReviewCase(
                case_id=case.id,
                outcome="continue",
                notes="monthly check",
                provenance=officer(case.county.code),
            )
        )
    return runtime.ledger.get_case(case.id)


def test_saves_take_sealed_snapshots_that_loads_start_from(snapshotting: Runtime) -> None:
    runtime = snapshotting
    case = reviewed_case(runtime, 5)
    taken = rows(
        runtime,
        "SELECT originator_version, topic, state FROM relief_snapshots WHERE originator_id = %s"
        " ORDER BY originator_version",
        (case.id,),
    )
    assert [v for v, _, _ in taken] and all(v % 2 == 0 for v, _, _ in taken)
    seal = seal_of(runtime.ledger)
    for version, topic, state in taken:
        assert seal.open(bytes(state), place(case.id, version, topic), None)[0] == "bound"
        assert seal.open(bytes(state), place(case.id, version + 1, topic), None)[0] == "forged"
        assert case.applicant_id.encode() not in bytes(state)  # sealed: no ID number in clear
    for version in range(1, case.version + 1):
        loaded = runtime.ledger.reconstruct(case.id, version)
        assert vars(loaded) == vars(full_replay(runtime, case.id, version))
    # snapshots are outside the audit chain: the log verifies as before
    assert verify_log(runtime.database_url, cipher_key=None, trusted_key=None).intact


def test_a_snapshot_moved_to_another_version_is_ignored(snapshotting: Runtime) -> None:
    runtime = snapshotting
    case = reviewed_case(runtime, 5)
    (low, high) = rows(
        runtime,
        "SELECT min(originator_version), max(originator_version) FROM relief_snapshots"
        " WHERE originator_id = %s",
        (case.id,),
    )[0]
    assert low < high
    execute(
        runtime,
        "UPDATE relief_snapshots SET state = (SELECT state FROM relief_snapshots"
        " WHERE originator_id = %s AND originator_version = %s)"
        " WHERE originator_id = %s AND originator_version = %s",
        (case.id, low, case.id, high),
    )
    loaded = runtime.ledger.reconstruct(case.id, high)
    assert vars(loaded) == vars(full_replay(runtime, case.id, high))
    assert loaded.version == high


def test_the_bulk_path_takes_snapshots_too_and_as_of_uses_them(snapshotting: Runtime) -> None:
    runtime = snapshotting
    bulk = runtime.bulk(SetClock(runtime.services.clock.now()))
    write_history(bulk, 4, seed=3)
    bulk.store.flush()
    bulk.close()
    assert rows(runtime, "SELECT count(*) FROM relief_snapshots")[0][0] > 0
    case = reviewed_case(runtime, 3)
    for version, moment in rows(
        runtime,
        "SELECT originator_version, recorded_at FROM audit.chain WHERE originator_id = %s",
        (case.id,),
    ):
        as_of = runtime.ledger.as_of(case.id, moment)
        assert as_of.version == version
        assert vars(as_of) == vars(full_replay(runtime, case.id, version))
    # the backfill takes the multiples that saves of several events stepped over, once
    runtime.ledger.take_snapshots(2)
    assert runtime.ledger.take_snapshots(2) == 0


def loop_fetch(runtime: Runtime) -> Any:
    """A ``Fetch`` as the API's ``LoopReads`` sends: one statement on an async connection."""

    async def fetch(query: str, params: dict[str, Any]) -> list[Any]:
        async with await psycopg.AsyncConnection.connect(
            runtime.database_url, autocommit=True, row_factory=dict_row
        ) as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    return fetch


def test_loads_on_the_event_loop_equal_full_replays_and_know_what_is_absent(
    snapshotting: Runtime,
) -> None:
    """``load_on_loop`` reads several aggregates in one statement (from their snapshots, or
    after their cached versions) into the request's loads: each equals a full replay of its
    events, an id with no events is known absent, and inside ``loaded_only`` nothing else is
    read (``WouldLoad``)."""
    runtime = snapshotting
    ledger = runtime.ledger
    first, second = reviewed_case(runtime, 5), reviewed_case(runtime, 2)
    ledger.latest.discard(first.id)  # first from its snapshot, second after its cached version
    cached = ledger.cached(ReliefCase, second.id)
    assert cached is not None
    runtime.services.cases.review_case(
        ReviewCase(
            case_id=second.id,
            outcome="continue",
            notes="after it was cached",
            provenance=officer(second.county.code),
        )
    )
    ledger.latest.offer(cached)  # as another process's write leaves this one's cache behind
    missing = uuid.uuid4()
    with request_loads(writes=True) as loads:
        asyncio.run(
            ledger.load_on_loop([first.id, second.id, missing, first.id], loop_fetch(runtime))
        )
        assert set(loads) == {first.id, second.id, missing} and loads[missing] is ABSENT
        with ledger.loaded_only():
            for case_id in (first.id, second.id):
                loaded = ledger.get(ReliefCase, case_id)
                assert vars(loaded) == vars(full_replay(runtime, case_id))
            assert ledger.get(ReliefCase, second.id).version == cached.version + 1
            with pytest.raises(NotFound):
                ledger.get(ReliefCase, missing)
            assert not ledger.exists(missing) and ledger.exists(first.id)
            with pytest.raises(WouldLoad):
                ledger.get(ReliefCase, uuid.uuid4())
        # a command's loads are its own copies: changing one leaves the cache as it was
        ledger.get(ReliefCase, second.id).reviews.clear()
    assert ledger.cached(ReliefCase, second.id).reviews  # type: ignore[union-attr]


def test_reads_from_events_this_process_decoded_before_equal_full_replays(
    snapshotting: Runtime,
) -> None:
    """Events decoded once are kept (``ReliefLedger.decoded``) and shared by later reads: a
    replay must never change one. Every aggregate of a generated history, at every version,
    newest first then oldest first (each read starting from events an earlier read applied),
    equals a full replay decoded afresh by the library's event store."""
    runtime = snapshotting
    bulk = runtime.bulk(SetClock(runtime.services.clock.now()))
    write_history(bulk, 6, seed=5)
    bulk.store.flush()
    bulk.close()
    case = reviewed_case(runtime, 6)
    heads = rows(
        runtime,
        "SELECT originator_id, max(originator_version) FROM relief_events GROUP BY 1",
    )
    ledger = runtime.ledger
    assert ledger.decoded is not None
    kinds = set()
    for aggregate_id, head in heads:
        expected = {v: vars(full_replay(runtime, aggregate_id, v)) for v in range(1, head + 1)}
        for order in (range(head, 0, -1), range(1, head + 1)):
            for version in order:
                loaded = ledger.reconstruct(aggregate_id, version)
                assert vars(loaded) == expected[version], (aggregate_id, version)
        kinds.add(type(loaded).__name__)
    assert {"ReliefCase", "Household", "Person"} <= kinds
    # kept, so shared: the events after each snapshot (versions 1, 3, 5...; 2, 4... start one)
    assert ledger.decoded.get((case.id, case.version - 1)) is not None


def test_a_row_changed_after_its_event_was_decoded_and_kept_is_still_refused(
    snapshotting: Runtime,
) -> None:
    runtime = snapshotting
    case = reviewed_case(runtime, 1)  # 5 events: snapshots at 2 and 4
    ledger = runtime.ledger
    ledger.reconstruct(case.id, 3)  # event 3 decoded and kept
    assert ledger.decoded is not None and ledger.decoded.get((case.id, 3)) is not None
    execute(
        runtime,
        "UPDATE relief_events SET state = state || '\\x20'::bytea"
        " WHERE originator_id = %s AND originator_version = 3",
        (case.id,),
    )
    with pytest.raises(RecordUnreadable):
        ledger.reconstruct(case.id, 3)
