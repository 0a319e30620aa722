"""A log written by an earlier version of the ledger is still read, whole and unaltered.

``tests/fixtures/event_log_v1.json`` holds every stored row and chain link of a history that
covers every event type of commit 3a5a858 (see tests/fixtures/make_event_log_v1.py). The rows
go into a fresh database as they were stored; then every event is read through the
application's own mapper (and so through the upcasters), the hash chain is verified, the
aggregates rebuild to the records that code showed, and every projection reads the log.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import Notification
from eventsourcing.utils import resolve_topic

from infra.audit_verify import verify_log
from infra.runtime import Runtime
from infra.schema import init_schema
from infra.settings import Settings
from projections.base import RecordedEvent
from projections.history import history_item
from projections.registry import ALL_PROJECTIONS

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "event_log_v1.json"


@pytest.fixture(scope="module")
def log_v1() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return document


@pytest.fixture()
def old_log(
    settings: Settings, empty_database_url: str, log_v1: dict[str, Any]
) -> Iterator[Runtime]:
    """A runtime on a database holding the fixture's rows exactly as they were stored, opened
    as an upgrade of that database would be: its first start records the legacy boundary, then
    loads the division register above it (the old version had none)."""
    keys = log_v1["keys"]
    settings = settings.with_(
        database_url=empty_database_url,
        identity_key_hex=keys["identity_key"],
        cipher_key_b64=keys["cipher_key"],
    )
    init_schema(settings.database_url, ALL_PROJECTIONS)  # the tables; then the old rows in them
    with psycopg.connect(settings.database_url) as conn, conn.transaction():
        # The old version kept no boundary: as if this version had never started here.
        conn.execute("DELETE FROM audit.seal_boundary")
        # The rows and their links as the old code chained them, not as a trigger would now.
        conn.execute("ALTER TABLE public.relief_events DISABLE TRIGGER relief_events_chain")
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO public.relief_events"
                " (notification_id, originator_id, originator_version, topic, state)"
                " VALUES (%s, %s, %s, %s, %s)",
                [
                    (
                        e["position"],
                        UUID(e["originator_id"]),
                        e["originator_version"],
                        e["topic"],
                        base64.b64decode(e["state"]),
                    )
                    for e in log_v1["events"]
                ],
            )
            cursor.executemany(
                "INSERT INTO audit.chain"
                " (position, originator_id, originator_version, recorded_at, hash)"
                " VALUES (%s, %s, %s, %s, %s)",
                [
                    (
                        c["position"],
                        UUID(c["originator_id"]),
                        c["originator_version"],
                        dt.datetime.fromisoformat(c["recorded_at"]),
                        bytes.fromhex(c["hash"]),
                    )
                    for c in log_v1["chain"]
                ],
            )
        conn.execute("ALTER TABLE public.relief_events ENABLE TRIGGER relief_events_chain")
        # as a restore does: the positions handed out next follow the restored ones
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('public.relief_events', 'notification_id'),"
            " (SELECT max(notification_id) FROM public.relief_events))"
        )
    runtime = Runtime.open(settings)
    yield runtime
    runtime.close()


def stored(row: dict[str, Any]) -> Notification:
    """The stored row with its position: a seal is judged by its place (infra/sealing.py)."""
    return Notification(
        id=row["position"],
        originator_id=UUID(row["originator_id"]),
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=base64.b64decode(row["state"]),
    )


def untyped(value: object, where: str) -> list[str]:
    """Where a value holds a plain dict (an untyped payload), at any depth."""
    if isinstance(value, dict):
        return [where]
    if isinstance(value, (list, tuple)):
        return [p for n, item in enumerate(value) for p in untyped(item, f"{where}[{n}]")]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            p
            for f in dataclasses.fields(value)
            for p in untyped(getattr(value, f.name), f"{where}.{f.name}")
        ]
    return []


def test_every_stored_event_reads_as_a_typed_event_of_today(
    old_log: Runtime, log_v1: dict[str, Any]
) -> None:
    mapper = old_log.ledger.mapper
    upcast = set()
    for row in log_v1["events"]:
        event = mapper.to_domain_event(stored(row))
        assert type(event) is resolve_topic(row["topic"])
        assert event.originator_version == row["originator_version"]
        name = type(event).__qualname__
        assert [p for k, v in vars(event).items() for p in untyped(v, f"{name}.{k}")] == []
        if getattr(type(event), "class_version", 1) > 1:
            upcast.add(name)
    # Every event class whose shape changed is in the fixture, written in its old shape.
    assert upcast == {
        "ReliefCase.Investigated",
        "ReliefCase.RecordCorrected",
        "Household.Registered",
        "Contract.Awarded",
        "Contract.Amended",
        "Contract.Renewed",
        "Contract.ViolationRecorded",
        "StaffMember.InterestsDeclared",
        "StaffMember.Hired",
        "Investigation.Opened",
        "Investigation.FindingsRecorded",
        "Investigation.Closed",
    }


def test_an_upcast_event_is_stored_again_in_todays_shape_unchanged(
    old_log: Runtime, log_v1: dict[str, Any]
) -> None:
    """Read old, write new, read again: the same event (the typed shape keeps everything)."""
    mapper = old_log.ledger.mapper
    for row in log_v1["events"]:
        event = mapper.to_domain_event(stored(row))
        again = mapper.to_domain_event(mapper.to_stored_event(event))
        assert history_item(RecordedEvent(1, again.originator_id, 1, row["topic"], again)) == (
            history_item(RecordedEvent(1, event.originator_id, 1, row["topic"], event))
        )


def test_the_chain_over_the_old_rows_verifies(old_log: Runtime, log_v1: dict[str, Any]) -> None:
    cipher_key = base64.b64decode(log_v1["keys"]["cipher_key"])
    report = verify_log(old_log.database_url, cipher_key=cipher_key)
    assert report.intact, report.first_break
    # the old events, then the register's, loaded place-bound by the upgrade's first start
    assert report.checked == old_log.head_position() > len(log_v1["events"])
    # Every old event is a pre-binding seal, accepted below the boundary its upgrade recorded.
    assert report.legacy_until == log_v1["events"][-1]["position"]
    assert report.legacy_events == len(log_v1["events"])


def test_the_aggregates_rebuild_to_the_records_the_old_code_showed(
    old_log: Runtime, log_v1: dict[str, Any]
) -> None:
    ledger = old_log.ledger
    written_on = dt.date.fromisoformat(log_v1["written_on"])
    for aggregate_id, expected in log_v1["summaries"].items():
        aggregate: Any = ledger.repository.get(UUID(aggregate_id))
        kind = type(aggregate).__name__
        if kind == "Household":
            shown = aggregate.summary(masked=False)
        elif kind == "StaffMember":
            contract = ledger.get_contract(aggregate.contract_id) if aggregate.contract_id else None
            shown = aggregate.summary(written_on, contract)
            expected = {**expected, "sign_ins": []}  # shown since v1; the old log linked none
        elif kind in ("Contract", "Contractor"):
            shown = aggregate.summary(written_on)
        else:
            shown = aggregate.summary()
        assert json.loads(json.dumps(shown, default=str)) == expected, kind


def test_every_projection_reads_the_old_log(old_log: Runtime, log_v1: dict[str, Any]) -> None:
    head = log_v1["events"][-1]["position"]
    # the old rows, then the register the upgrade's first start loaded above them
    assert old_log.head_position() > head
    with psycopg.connect(old_log.database_url) as conn:
        row = conn.execute("SELECT position FROM audit.seal_boundary").fetchone()
    assert row is not None and row[0] == head
    for projection in ALL_PROJECTIONS:
        covered = old_log.projection_runner(projection).catch_up()
        if projection.name in ("divisions", "policies"):
            continue  # brought up by the first start already (the register, the band tables)
        assert covered == old_log.head_position(), projection.name
