"""Tamper evidence on the real store: each kind of alteration is named at its position."""

from __future__ import annotations

import random

import psycopg
import pytest

from domain.commands.cases import CloseCase, RecordPayment, ResumeCase, ReviewCase, SuspendCase
from infra.audit_chain import verify_chain, version_at
from infra.runtime import Runtime
from tests.factories import approver
from tests.scenario import application, approve, write_history

pytestmark = pytest.mark.integration


def sql(runtime: Runtime, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def test_an_untouched_log_verifies_to_its_head(runtime: Runtime) -> None:
    write_history(runtime, 20)
    report = verify_chain(runtime.pool)
    assert report.intact and report.intact_up_to == runtime.head_position()
    assert report.checked == runtime.head_position()


def test_changed_bytes_are_named_at_their_position(runtime: Runtime) -> None:
    write_history(runtime, 10)
    target = runtime.head_position() // 2
    sql(
        runtime,
        "UPDATE relief_events SET state = replace(state::text, 'dibao', 'tekun')::bytea"
        " WHERE notification_id = %s",
        (target,),
    )
    sql(
        runtime,
        "UPDATE relief_events SET state = state || '\\x20'::bytea WHERE notification_id = %s",
        (target,),
    )
    report = verify_chain(runtime.pool)
    assert (report.intact, report.break_position, report.kind) == (False, target, "changed")
    assert report.intact_up_to == target - 1


def test_a_deleted_row_is_named_missing(runtime: Runtime) -> None:
    write_history(runtime, 10)
    target = runtime.head_position() - 3
    sql(runtime, "DELETE FROM relief_events WHERE notification_id = %s", (target,))
    report = verify_chain(runtime.pool)
    assert (report.break_position, report.kind) == (target, "missing")


def test_a_forged_row_is_named_inserted(runtime: Runtime) -> None:
    write_history(runtime, 5)
    # A rolled-back insert leaves a gap in positions; a forger fills it in afterwards.
    [(gap,)] = sql(
        runtime, "SELECT nextval(pg_get_serial_sequence('relief_events', 'notification_id'))"
    )
    write_history(runtime, 5, seed=3)
    [(oid, state)] = sql(
        runtime, "SELECT originator_id, state FROM relief_events ORDER BY notification_id LIMIT 1"
    )
    sql(
        runtime,
        "INSERT INTO relief_events (originator_id, originator_version, topic, state,"
        " notification_id) VALUES (%s, 99, 'domain.case:ReliefCase.Closed', %s, %s)",
        (oid, state, gap),
    )
    report = verify_chain(runtime.pool)
    assert (report.break_position, report.kind) == (gap, "inserted")


def test_a_row_slipped_in_without_its_link_is_named_inserted(runtime: Runtime) -> None:
    write_history(runtime, 5)
    [(oid, state)] = sql(runtime, "SELECT originator_id, state FROM relief_events LIMIT 1")
    head = runtime.head_position()
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # triggers off
        conn.execute(
            "INSERT INTO relief_events (originator_id, originator_version, topic,"
            " state, notification_id) VALUES (%s, 98, 't', %s, %s)",
            (oid, state, head + 1),
        )
    report = verify_chain(runtime.pool)
    assert (report.break_position, report.kind) == (head + 1, "inserted")


def test_two_swapped_rows_are_named_reordered(runtime: Runtime) -> None:
    write_history(runtime, 10)
    a, b = 4, 9
    sql(runtime, "UPDATE relief_events SET notification_id = -1 WHERE notification_id = %s", (a,))
    sql(runtime, "UPDATE relief_events SET notification_id = %s WHERE notification_id = %s", (a, b))
    sql(runtime, "UPDATE relief_events SET notification_id = %s WHERE notification_id = -1", (b,))
    report = verify_chain(runtime.pool)
    assert (report.break_position, report.kind) == (a, "reordered")
    assert f"position {b}" in (report.detail or "")


def test_as_of_equals_a_naive_replay_cut_at_that_instant(runtime: Runtime) -> None:
    """As of an instant: the events the ledger had recorded by then (their recording time;
    the event's own timestamp is sealed inside the encrypted state)."""
    ledger = runtime.ledger
    services = runtime.services
    case = application(runtime)
    approve(runtime, case)
    services.cases.record_payment(
        RecordPayment(
            case_id=case.id,
            period=runtime.services.clock.today().strftime("%Y-%m"),
            amount="900",
            provenance=approver(who="payer"),
        )
    )
    services.cases.review_case(
        ReviewCase(
            case_id=case.id, outcome="continue", notes="annual", provenance=approver(who="reviewer")
        )
    )
    services.cases.suspend_case(SuspendCase(case_id=case.id, reason="check", provenance=approver()))
    services.cases.resume_case(ResumeCase(case_id=case.id, reason="ok", provenance=approver()))
    services.cases.close_case(
        CloseCase(case_id=case.id, reason_code="voluntary", provenance=approver())
    )
    events = list(ledger.events.get(case.id))
    with runtime.pool.connection() as conn:
        recorded = [
            row[0]
            for row in conn.execute(
                "SELECT recorded_at FROM audit.chain WHERE originator_id = %s"
                " ORDER BY originator_version",
                (case.id,),
            )
        ]
    assert len(recorded) == len(events)
    assert all(e.timestamp <= at for e, at in zip(events, recorded, strict=True))
    first, last = recorded[0], recorded[-1]
    rng = random.Random(5)
    instants = [first + (last - first) * rng.random() for _ in range(40)]
    instants += [*recorded, first.replace(year=first.year - 1)]
    for instant in instants:
        cut = [e for e, at in zip(events, recorded, strict=True) if at <= instant]
        version = version_at(runtime.pool, case.id, instant)
        if not cut:
            assert version is None
            continue
        naive = None
        for event in cut:
            naive = event.mutate(naive)
        assert version == len(cut)
        assert ledger.get_case(case.id, version=version).summary() == naive.summary()


def test_signed_checkpoints_catch_a_rewrite_of_events_and_chain(runtime: Runtime) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.audit_chain import GENESIS, link
    from infra.checkpoints import raw_public_key, sign_checkpoint

    key = Ed25519PrivateKey.generate()
    trusted = raw_public_key(key.public_key())
    write_history(runtime, 8)
    checkpoint = sign_checkpoint(runtime.pool, key)
    assert checkpoint is not None and checkpoint.position == runtime.head_position()
    assert sign_checkpoint(runtime.pool, key) is None  # the head is signed already
    assert verify_chain(runtime.pool, trusted_key=trusted).intact

    # An operator alters one event and recomputes every later link of the chain table.
    target = 5
    sql(
        runtime,
        "UPDATE relief_events SET state = state || '\\x20'::bytea WHERE notification_id = %s",
        (target,),
    )
    rows = sql(
        runtime,
        "SELECT notification_id, e.originator_id, e.originator_version, recorded_at, topic,"
        " state FROM relief_events e JOIN audit.chain c ON c.position = e.notification_id"
        " ORDER BY notification_id",
    )
    previous = GENESIS
    for position, oid, version, at, topic, state in rows:
        previous = link(previous, position, oid, version, at, topic, bytes(state))
        sql(runtime, "UPDATE audit.chain SET hash = %s WHERE position = %s", (previous, position))
    report = verify_chain(runtime.pool, trusted_key=trusted)
    assert (report.kind, report.break_position) == ("rewritten", checkpoint.position)
    assert report.intact_up_to == 0  # no earlier checkpoint vouches for anything before


def test_a_forged_checkpoint_is_rejected(runtime: Runtime) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.checkpoints import raw_public_key, sign_checkpoint

    key, impostor = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    write_history(runtime, 4)
    checkpoint = sign_checkpoint(runtime.pool, key)
    assert checkpoint is not None
    sql(
        runtime,
        "UPDATE audit.checkpoints SET signature = %s WHERE position = %s",
        (bytes(64), checkpoint.position),
    )
    report = verify_chain(runtime.pool)
    assert (report.kind, report.break_position) == ("forged-checkpoint", checkpoint.position)
    # A well-formed signature by another key is refused when the auditor names the key.
    sql(runtime, "DELETE FROM audit.checkpoints")
    sign_checkpoint(runtime.pool, impostor)
    report = verify_chain(runtime.pool, trusted_key=raw_public_key(key.public_key()))
    assert report.kind == "forged-checkpoint"


def test_renumbering_the_whole_history_is_caught_by_the_checkpoints(runtime: Runtime) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.audit_chain import GENESIS, link
    from infra.checkpoints import raw_public_key, sign_checkpoint

    key = Ed25519PrivateKey.generate()
    write_history(runtime, 6)
    checkpoint = sign_checkpoint(runtime.pool, key)
    assert checkpoint is not None
    sql(runtime, "UPDATE relief_events SET notification_id = notification_id + 1000000000")
    recorded = dict(
        sql(
            runtime,
            "SELECT originator_id || ':' || originator_version, recorded_at FROM audit.chain",
        )
    )
    sql(runtime, "DELETE FROM audit.chain")
    previous = GENESIS
    for position, oid, version, topic, state in sql(
        runtime,
        "SELECT notification_id, originator_id, originator_version, topic, state"
        " FROM relief_events ORDER BY notification_id",
    ):
        at = recorded[f"{oid}:{version}"]
        previous = link(previous, position, oid, version, at, topic, bytes(state))
        sql(
            runtime,
            "INSERT INTO audit.chain VALUES (%s, %s, %s, %s, %s)",
            (position, oid, version, at, previous),
        )
    report = verify_chain(runtime.pool, trusted_key=raw_public_key(key.public_key()))
    assert (report.kind, report.break_position) == ("missing", checkpoint.position)


def test_no_checkpoint_vouches_for_events_that_disagree_with_the_chain(runtime: Runtime) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.checkpoints import ChainMismatch, sign_checkpoint

    write_history(runtime, 4)
    sql(
        runtime,
        "UPDATE relief_events SET state = state || '\\x20'::bytea WHERE notification_id = 3",
    )
    with pytest.raises(ChainMismatch):
        sign_checkpoint(runtime.pool, Ed25519PrivateKey.generate())
    assert sql(runtime, "SELECT count(*) FROM audit.checkpoints") == [(0,)]


def test_checkpoints_held_elsewhere_and_a_single_key(runtime: Runtime) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.checkpoints import checkpoints, sign_checkpoint

    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    write_history(runtime, 3)
    sign_checkpoint(runtime.pool, key)
    write_history(runtime, 3, seed=4)
    sign_checkpoint(runtime.pool, key)
    held = checkpoints(runtime.pool)
    assert verify_chain(runtime.pool, held_elsewhere=held).intact
    sql(runtime, "DELETE FROM audit.checkpoints WHERE position = %s", (held[-1].position,))
    report = verify_chain(runtime.pool, held_elsewhere=held)
    assert (report.kind, report.break_position) == ("missing", held[-1].position)
    write_history(runtime, 2, seed=5)
    sign_checkpoint(runtime.pool, other)  # a second key appears in the database
    report = verify_chain(runtime.pool)
    assert report.kind == "forged-checkpoint" and "several keys" in (report.detail or "")


def test_an_altered_time_index_is_named(runtime: Runtime) -> None:
    write_history(runtime, 4)
    sql(
        runtime,
        "UPDATE audit.chain SET recorded_at = recorded_at - interval '1 day' WHERE position = 2",
    )
    report = verify_chain(runtime.pool)
    assert (report.kind, report.break_position) == ("changed", 2)
    assert "recording time" in (report.detail or "")
