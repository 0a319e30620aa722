"""Snapshots: a load started from a snapshot equals the full replay, for every aggregate type
of a generated history, at every version (infra/snapshots.py, infra/ledger.py).

Over the library's in-memory store; the snapshot goes through the application's mapper (JSON
transcoder) as it would into the snapshots table. Sealing is exercised against PostgreSQL in
tests/integration/test_snapshot_store.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import uuid
from collections import defaultdict
from decimal import Decimal
from enum import Enum
from types import SimpleNamespace
from typing import Any

import pytest

from domain.clock import BUSINESS_TZ, Clock
from domain.commands.supervision import CloseInvestigation, OpenInvestigation, RecordFindings
from domain.investigation import BanOrder, CitedAlert, PenaltyOrder, VerdictInput, ViolationOrder
from infra.ledger import ReliefLedger, own_copy, replay, request_loads
from infra.snapshots import AggregateSnapshot, SnapshotStateError, decode_state, encode_state
from services import Services
from tests.factories import BY_SUPERVISOR, IDENTITY_KEY
from tests.scenario import write_rich_history
from tests.unit.test_services import contractor_and_contract, listed_register


def in_memory_ledger(**env: str) -> ReliefLedger:
    return ReliefLedger(env={"IS_SNAPSHOTTING_ENABLED": "y", **env})


def generated_history(ledger: ReliefLedger) -> None:
    """Cases, households, people, staff, contractors, contracts and an investigation closed
    with a violation, a penalty and a ban: every aggregate type of the ledger."""
    services = Services.over(
        ledger,
        clock=Clock(),
        identity_key=IDENTITY_KEY,
        register=listed_register(),
    )
    write_rich_history(SimpleNamespace(ledger=ledger, services=services), seed=5)  # type: ignore[arg-type]
    contractor, contract = contractor_and_contract(services)
    alert = uuid.uuid4()
    opened = services.supervision.open_investigation(
        OpenInvestigation(
            subject_kind="contractor",
            subject_id=contractor.id,
            alerts=(CitedAlert(alert, "work_outside_scope", (3, 4)),),
            grounds="services outside the contract",
            provenance=BY_SUPERVISOR,
        )
    )
    services.supervision.record_findings(
        RecordFindings(
            investigation_id=opened.id,
            summary="confirmed",
            verdicts=(VerdictInput(alert, "confirmed"),),
            provenance=BY_SUPERVISOR,
        )
    )
    services.supervision.close_investigation(
        CloseInvestigation(
            investigation_id=opened.id,
            outcome="violation",
            summary="falsified",
            violation=ViolationOrder(
                contract_id=contract.id,
                kind="falsification",
                severity="grave",
                description="visits never made",
                penalty=PenaltyOrder("fine", "clause 9", Decimal("2000")),
                ban=BanOrder(dt.date(2026, 7, 1), dt.date(2027, 6, 30), "falsification", "440103"),
            ),
            provenance=BY_SUPERVISOR,
        )
    )


def all_histories(ledger: ReliefLedger) -> dict[uuid.UUID, list[Any]]:
    histories: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for notification in ledger.recorder.select_notifications(start=1, limit=1_000_000):
        histories[notification.originator_id].append(ledger.mapper.to_domain_event(notification))
    return histories


def typed(value: Any) -> Any:
    """``value`` compared with its types: a set is not a frozenset, a list not a tuple."""
    kind = type(value).__qualname__
    if isinstance(value, dict):
        return (kind, sorted(((repr(typed(k)), typed(v)) for k, v in value.items()), key=repr))
    if isinstance(value, list | tuple):
        return (kind, [typed(v) for v in value])
    if isinstance(value, set | frozenset):
        return (kind, sorted((typed(v) for v in value), key=repr))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (kind, [(f.name, typed(getattr(value, f.name))) for f in dataclasses.fields(value)])
    if hasattr(value, "__dict__") and not isinstance(value, Enum | type):
        return (kind, typed(vars(value)))
    return (kind, value)


def state(aggregate: Any) -> Any:
    return typed({k: v for k, v in vars(aggregate).items() if k != "_pending_events"})


def through_the_mapper(ledger: ReliefLedger, aggregate: Any) -> Any:
    """A snapshot as it is stored and read back (transcoded to bytes and decoded)."""
    stored = ledger.mapper.to_stored_event(AggregateSnapshot.take(aggregate))
    return ledger.mapper.to_domain_event(stored).mutate(None)


def test_a_snapshot_started_load_equals_the_full_replay_for_every_type_at_every_version() -> None:
    ledger = in_memory_ledger()
    generated_history(ledger)
    histories = all_histories(ledger)
    kinds = {type(replay(None, events)).__name__ for events in histories.values()}
    assert kinds >= {
        "ReliefCase",
        "Household",
        "Person",
        "Contract",
        "Contractor",
        "StaffMember",
        "Investigation",
    }, kinds
    checked = 0
    for events in histories.values():
        latest = replay(None, events)
        for version in range(1, len(events) + 1):
            at_version = replay(None, events[:version])
            started = through_the_mapper(ledger, at_version)
            assert type(started) is type(at_version)
            assert state(started) == state(at_version), (type(at_version).__name__, version)
            # ... and the events after it bring it to the same newest state as a full replay
            assert state(replay(started, events[version:])) == state(latest)
            checked += 1
    assert checked > 200


def test_loads_start_from_the_nearest_snapshot_at_or_below_the_version() -> None:
    ledger = in_memory_ledger(SNAPSHOT_INTERVAL="2")
    generated_history(ledger)
    histories = all_histories(ledger)
    events = max(histories.values(), key=len)
    aggregate_id = events[0].originator_id
    assert ledger.snapshots is not None
    taken = [s.originator_version for s in ledger.snapshots.get(aggregate_id)]
    assert taken and all(v >= 2 for v in taken)  # taken by saves crossing multiples of 2
    for version in range(1, len(events) + 1):
        loaded = ledger.reconstruct(aggregate_id, version)
        assert state(loaded) == state(replay(None, events[:version]))


def test_a_save_takes_a_snapshot_each_time_the_interval_is_crossed() -> None:
    ledger = in_memory_ledger(SNAPSHOT_INTERVAL="3")
    generated_history(ledger)
    assert ledger.snapshots is not None
    for aggregate_id, events in all_histories(ledger).items():
        versions = [s.originator_version for s in ledger.snapshots.get(aggregate_id)]
        # one per multiple of 3 crossed (a save of several events takes one, at its end)
        assert len(versions) <= len(events) // 3
        if len(events) >= 3:
            assert versions, aggregate_id


def test_no_interval_no_snapshots() -> None:
    ledger = in_memory_ledger()
    generated_history(ledger)
    assert ledger.snapshots is not None
    for aggregate_id in all_histories(ledger):
        assert list(ledger.snapshots.get(aggregate_id)) == []


class Colour(Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: tuple[int, ...]


def test_the_state_tree_keeps_every_type() -> None:
    value = {
        "t": (1, "a", None),
        "l": [1.5, True],
        "s": {1, 2},
        "f": frozenset({"x"}),
        "m": {1: "one", (2, 3): "pair"},
        "d": Decimal("960.50"),
        "u": uuid.UUID(int=5),
        "dt": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=BUSINESS_TZ),
        "date": dt.date(2026, 1, 2),
        "§": "a key that looks like a tag",
    }
    assert decode_state(encode_state(value)) == value
    assert type(decode_state(encode_state(value))["t"]) is tuple


def test_the_state_tree_refuses_what_it_cannot_restore() -> None:
    with pytest.raises(SnapshotStateError):
        encode_state(object())
    # enums and value types are restored from the domain's modules only
    with pytest.raises(SnapshotStateError):
        decode_state(encode_state(Colour.RED))
    with pytest.raises(SnapshotStateError):
        decode_state({"§": "o", "c": "os:system", "v": {}})


def test_a_snapshot_that_does_not_decode_is_ignored_and_the_events_replayed() -> None:
    ledger = in_memory_ledger(SNAPSHOT_INTERVAL="1")
    generated_history(ledger)
    histories = all_histories(ledger)
    aggregate_id, events = max(histories.items(), key=lambda item: len(item[1]))
    assert ledger.snapshots is not None
    bad = AggregateSnapshot(  # type: ignore[call-arg]
        originator_id=aggregate_id,
        originator_version=len(events) + 1000,
        timestamp=AggregateSnapshot.create_timestamp(),
        topic="os:system",
        state={"tree": {}},
    )
    ledger.snapshots.put([bad])
    assert state(ledger.reconstruct(aggregate_id, None)) == state(replay(None, events))


def test_one_load_per_request_and_reads_share_the_cached_aggregate() -> None:
    ledger = in_memory_ledger(AGGREGATE_CACHE_MAXSIZE="100")
    generated_history(ledger)
    aggregate_id, events = max(all_histories(ledger).items(), key=lambda item: len(item[1]))
    kind = type(replay(None, events))
    with request_loads(writes=False):
        first = ledger.get(kind, aggregate_id)
        assert ledger.get(kind, aggregate_id) is first
    with request_loads(writes=False):
        assert ledger.get(kind, aggregate_id) is first  # shared: no copy for a read
    with request_loads(writes=True) as loads:
        mine = ledger.get(kind, aggregate_id)
        assert mine is not first and loads[aggregate_id] is mine  # a command's own copy
        assert state(mine) == state(first)
    outside = ledger.get(kind, aggregate_id)
    assert outside is not first  # callers outside a request get their own copy


def test_a_commands_own_copy_equals_the_aggregate_and_changing_it_leaves_the_original() -> None:
    ledger = in_memory_ledger()
    generated_history(ledger)
    for events in all_histories(ledger).values():
        for version in range(1, len(events) + 1):
            original = replay(None, events[:version])
            before = state(original)
            copied = own_copy(original)
            assert copied is not original and state(copied) == before
            replay(copied, events[version:])  # every later change, applied to the copy
            assert state(original) == before


def test_what_decides_a_cases_scope_never_changes_after_it_is_received() -> None:
    """The access check may read a case's scope on any version of it, the cached one too
    (api/access.py ``SCOPE_FIXED_AT_CREATION``): its registered village and receiving county
    are the same at every version of every case of a history with every kind of case event."""
    from api.access import SCOPE_FIXED_AT_CREATION
    from domain.case import ReliefCase

    assert ReliefCase in SCOPE_FIXED_AT_CREATION
    ledger = in_memory_ledger()
    generated_history(ledger)
    kinds: set[str] = set()
    cases = 0
    for events in all_histories(ledger).values():
        first = replay(None, events[:1])
        if not isinstance(first, ReliefCase):
            continue
        cases += 1
        scope = (first.registered_division, first.received_county)
        for version in range(2, len(events) + 1):
            kinds.add(type(events[version - 1]).__qualname__)
            case = replay(None, events[:version])
            assert (case.registered_division, case.received_county) == scope, version
    assert cases >= 5 and len(kinds) >= 6, (cases, sorted(kinds))
    # ... and no event of a case but its first so much as names those fields in its apply
    events = [
        kind
        for kind in vars(ReliefCase).values()
        if isinstance(kind, type) and issubclass(kind, ReliefCase.Event)
    ]
    assert len(events) >= 14
    for kind in events:
        if kind is not ReliefCase.ApplicationReceived and "apply" in vars(kind):
            source = inspect.getsource(kind.apply)
            assert "registered_division" not in source, kind
            assert "received_county" not in source, kind
