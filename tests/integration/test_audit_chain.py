"""Tamper evidence on the real store: each kind of alteration is named at its position."""

from __future__ import annotations

import base64
import random
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.case import ReliefCase
from domain.commands.cases import CloseCase, ResumeCase, ReviewCase, SuspendCase
from infra import merkle
from infra.audit_chain import GENESIS, link, version_at
from infra.audit_verify import Limits, Verification, verify_log
from infra.checkpoints import (
    Checkpoint,
    Signing,
    all_checkpoints,
    checkpoints,
    raw_public_key,
    sign_checkpoint,
)
from infra.evidence import range_leaves
from infra.runtime import Runtime
from infra.sealing import seal_of
from tests.factories import approver
from tests.scenario import paid_case, write_history

pytestmark = pytest.mark.integration


def sql(runtime: Runtime, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def verified(runtime: Runtime, **options: Any) -> Verification:
    """The whole check as an auditor holding the cipher key runs it."""
    cipher_key = base64.b64decode(runtime.settings.cipher_key())
    return verify_log(runtime.database_url, cipher_key=cipher_key, **options)


def kind_at(report: Verification) -> tuple[str, int] | None:
    found = report.first_break
    return (found.kind, found.position) if found else None


def sign(runtime: Runtime, key: Ed25519PrivateKey, **options: Any) -> Signing:
    return sign_checkpoint(runtime.pool, key, seal_of(runtime.ledger), **options)


def relink_chain(runtime: Runtime) -> None:
    """What an operator holding neither key can do after editing events: recompute every link
    of the chain table from the stored rows."""
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


def copy_payment_as_next_version(runtime: Runtime, case: Any) -> int:
    """The insider's plain SQL: the case's payment, sealed bytes and all, as its next version.
    Its position."""
    [(position,)] = sql(
        runtime,
        "INSERT INTO relief_events (originator_id, originator_version, topic, state)"
        " SELECT originator_id, %s, topic, state FROM relief_events"
        " WHERE originator_id = %s AND topic LIKE %s RETURNING notification_id",
        (case.version + 1, case.id, "%PaymentRecorded"),
    )
    return int(position)


@pytest.fixture()
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_an_untouched_log_verifies_to_its_head(runtime: Runtime) -> None:
    write_history(runtime, 20)
    report = verified(runtime)
    assert report.intact and report.intact_up_to == runtime.head_position()
    assert report.checked == runtime.head_position()
    assert report.seals_checked and report.legacy_events == 0


def test_changed_bytes_are_named_at_their_position(runtime: Runtime) -> None:
    write_history(runtime, 10)
    target = runtime.head_position() // 2
    sql(
        runtime,
        "UPDATE relief_events SET state = state || '\\x20'::bytea WHERE notification_id = %s",
        (target,),
    )
    report = verified(runtime)
    assert kind_at(report) == ("changed", target)
    assert report.intact_up_to == target - 1


def test_a_deleted_row_is_named_missing(runtime: Runtime) -> None:
    write_history(runtime, 10)
    target = runtime.head_position() - 3
    sql(runtime, "DELETE FROM relief_events WHERE notification_id = %s", (target,))
    assert kind_at(verified(runtime)) == ("missing", target)


def test_a_row_deleted_with_its_link_is_missing_at_its_own_position(runtime: Runtime) -> None:
    """Not "changed" at the next position: each chain row names the row it was chained after."""
    write_history(runtime, 10)
    target = runtime.head_position() - 3
    sql(runtime, "DELETE FROM relief_events WHERE notification_id = %s", (target,))
    sql(runtime, "DELETE FROM audit.chain WHERE position = %s", (target,))
    report = verified(runtime)
    assert kind_at(report) == ("missing", target)
    assert report.intact_up_to == target - 1


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
    report = verified(runtime)
    assert kind_at(report) == ("inserted", gap)
    assert [(f.kind, f.position) for f in report.unopened] == [("forged", gap)]


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
    assert kind_at(verified(runtime)) == ("inserted", head + 1)


def test_two_swapped_rows_are_named_reordered(runtime: Runtime) -> None:
    write_history(runtime, 10)
    a, b = 4, 9
    sql(runtime, "UPDATE relief_events SET notification_id = -1 WHERE notification_id = %s", (a,))
    sql(runtime, "UPDATE relief_events SET notification_id = %s WHERE notification_id = %s", (a, b))
    sql(runtime, "UPDATE relief_events SET notification_id = %s WHERE notification_id = -1", (b,))
    report = verified(runtime)
    assert kind_at(report) == ("reordered", a)
    assert report.first_break is not None and f"position {b}" in report.first_break.detail


def test_a_payment_copied_by_sql_under_the_next_version_does_not_verify(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    """The insider's append: the trigger chains it, but its seal is bound to another place.
    Verify names it, the checkpointer signs only up to it, and the case refuses to load it."""
    case = paid_case(runtime)
    forged = copy_payment_as_next_version(runtime, case)
    write_history(runtime, 2)  # the ledger carries on after it
    report = verified(runtime)
    assert kind_at(report) == ("forged", forged)
    assert [f.position for f in report.unopened] == [forged]
    assert str(case.id) in report.unopened[0].detail
    assert report.intact_up_to == forged - 1

    signing = sign(runtime, key)
    assert signing.checkpoint is not None and signing.checkpoint.position == forged - 1
    assert signing.refused is not None and signing.refused.position == forged
    assert sign(runtime, key).checkpoint is None  # and never past it
    assert verified(runtime).signed_up_to == forged - 1

    from eventsourcing.persistence import MapperDeserialisationError

    with pytest.raises(MapperDeserialisationError, match="does not open at its place"):
        runtime.ledger.repository.get(case.id)


def test_a_checkpoint_is_signed_only_over_events_that_open_at_their_place(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    """Two events of one aggregate swap sealed states: links are recomputed by the trigger's
    own rule, so only the seals tell."""
    case = paid_case(runtime)
    rows = sql(
        runtime,
        "SELECT originator_version, state FROM relief_events WHERE originator_id = %s"
        " ORDER BY originator_version",
        (case.id,),
    )
    (v1, s1), (v2, s2) = rows[0], rows[1]
    for version, state in ((v1, s2), (v2, s1)):
        sql(
            runtime,
            "UPDATE relief_events SET state = %s WHERE originator_id = %s"
            " AND originator_version = %s",
            (state, case.id, version),
        )
    relink_chain(runtime)
    [(first,)] = sql(
        runtime,
        "SELECT notification_id FROM relief_events WHERE originator_id = %s"
        " AND originator_version = %s",
        (case.id, v1),
    )
    assert kind_at(verified(runtime)) == ("forged", first)
    signing = sign(runtime, key)
    assert signing.refused is not None and signing.refused.position == first
    assert signing.checkpoint is None or signing.checkpoint.position < first


def test_as_of_equals_a_naive_replay_cut_at_that_instant(runtime: Runtime) -> None:
    """As of an instant: the events the ledger had recorded by then (their recording time;
    the event's own timestamp is sealed inside the encrypted state)."""
    cases = runtime.services.cases
    case = paid_case(runtime)
    cases.review_case(
        ReviewCase(
            case_id=case.id, outcome="continue", notes="annual", provenance=approver(who="reviewer")
        )
    )
    cases.suspend_case(SuspendCase(case_id=case.id, reason="check", provenance=approver()))
    cases.resume_case(ResumeCase(case_id=case.id, reason="ok", provenance=approver()))
    runtime.services.cases.close_case(
        CloseCase(case_id=case.id, reason_code="voluntary", provenance=approver())
    )
    events = list(runtime.ledger.events.get(case.id))
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
        assert runtime.ledger.get(ReliefCase, case.id, version=version).summary() == naive.summary()


def test_signed_checkpoints_catch_a_rewrite_of_events_and_chain(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    trusted = raw_public_key(key.public_key())
    write_history(runtime, 8)
    checkpoint = sign(runtime, key).checkpoint
    assert checkpoint is not None and checkpoint.position == runtime.head_position()
    assert sign(runtime, key).checkpoint is None  # the head is signed already
    assert verified(runtime, trusted_key=trusted).intact

    # An operator alters one event and recomputes every later link of the chain table.
    target = 5
    sql(
        runtime,
        "UPDATE relief_events SET state = state || '\\x20'::bytea WHERE notification_id = %s",
        (target,),
    )
    relink_chain(runtime)
    # With the cipher key, the altered seal is found at its own position ...
    report = verified(runtime, trusted_key=trusted)
    assert kind_at(report) == ("forged", target)
    assert report.signed_up_to == 0  # no checkpoint vouches for anything before
    # ... without it, the signed checkpoint over the range gives the rewrite away.
    blind = verify_log(runtime.database_url, trusted_key=trusted)
    assert kind_at(blind) == ("rewritten", checkpoint.position)
    assert not blind.seals_checked


def test_a_forged_checkpoint_is_rejected(runtime: Runtime, key: Ed25519PrivateKey) -> None:
    impostor = Ed25519PrivateKey.generate()
    write_history(runtime, 4)
    checkpoint = sign(runtime, key).checkpoint
    assert checkpoint is not None
    sql(
        runtime,
        "UPDATE audit.checkpoints SET signature = %s WHERE sequence = %s",
        (bytes(64), checkpoint.sequence),
    )
    report = verified(runtime)
    assert kind_at(report) == ("forged-checkpoint", checkpoint.position)
    # A well-formed signature by another key is refused when the auditor names the key.
    sql(runtime, "DELETE FROM audit.checkpoints")
    sign(runtime, impostor)
    report = verified(runtime, trusted_key=raw_public_key(key.public_key()))
    assert report.first_break is not None and report.first_break.kind == "forged-checkpoint"


def test_renumbering_the_whole_history_is_caught_by_the_checkpoints(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    write_history(runtime, 6)
    checkpoint = sign(runtime, key).checkpoint
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
    report = verified(runtime, trusted_key=raw_public_key(key.public_key()))
    assert kind_at(report) == ("missing", checkpoint.position)


def test_the_checkpointer_refuses_to_chain_to_a_checkpoint_it_did_not_sign(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    write_history(runtime, 3)
    sign(runtime, Ed25519PrivateKey.generate())
    write_history(runtime, 2, seed=4)
    signing = sign(runtime, key)
    assert signing.checkpoint is None
    assert signing.refused is not None and signing.refused.kind == "forged-checkpoint"


def test_checkpoints_held_elsewhere_and_a_single_key(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    write_history(runtime, 3)
    sign(runtime, key)
    write_history(runtime, 3, seed=4)
    sign(runtime, key)
    held = checkpoints(runtime.pool)
    assert verified(runtime, held_elsewhere=held).intact
    sql(runtime, "DELETE FROM audit.checkpoints WHERE sequence = %s", (held[-1].sequence,))
    report = verified(runtime, held_elsewhere=held)
    assert kind_at(report) == ("missing", held[-1].position)
    assert verified(runtime).intact  # without the kept copy, nothing shows
    write_history(runtime, 2, seed=5)
    other = Ed25519PrivateKey.generate()
    with psycopg.connect(runtime.database_url) as conn:
        newest = all_checkpoints(conn)[-1]
    forge_successor(runtime, newest, other)  # a second key appears in the database
    report = verified(runtime)
    assert report.first_break is not None and report.first_break.kind == "forged-checkpoint"
    assert "several keys" in report.first_break.detail


def forge_successor(runtime: Runtime, previous: Checkpoint, key: Ed25519PrivateKey) -> Checkpoint:
    """A checkpoint chained to ``previous``, validly signed by ``key``, over the next event."""
    import dataclasses
    import datetime as dt

    [(position, chained)] = sql(
        runtime,
        "SELECT position, hash FROM audit.chain WHERE position > %s ORDER BY position LIMIT 1",
        (previous.position,),
    )
    unsigned = Checkpoint(
        previous.sequence + 1,
        position,
        previous.position + 1,
        bytes(chained),
        b"",
        dt.datetime.now(dt.UTC),
        raw_public_key(key.public_key()),
        b"",
        previous.digest(),
        previous.legacy_until,
    )
    leaves = [leaf for _, leaf in range_leaves(runtime.pool, unsigned)]  # over the links
    unsigned = dataclasses.replace(unsigned, merkle_root=merkle.root(leaves))
    forged = dataclasses.replace(unsigned, signature=key.sign(unsigned.message()))
    sql(
        runtime,
        "INSERT INTO audit.checkpoints (sequence, position, range_start, hash, merkle_root,"
        " signed_at, public_key, signature, previous, legacy_until)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            forged.sequence,
            forged.position,
            forged.range_start,
            forged.hash,
            forged.merkle_root,
            forged.signed_at,
            forged.public_key,
            forged.signature,
            forged.previous,
            forged.legacy_until,
        ),
    )
    return forged


def test_seals_a_checkpoint_vouches_for_are_opened_on_request(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    """Chained checkpoints are signed over authenticated events only, so by default their ranges
    are not opened again. A signing key used without that check (stolen) is caught by opening
    every seal."""
    case = paid_case(runtime)
    first = sign(runtime, key).checkpoint
    assert first is not None
    copy_payment_as_next_version(runtime, case)
    forge_successor(runtime, first, key)  # signed without opening the seal
    report = verified(runtime)
    assert report.intact and report.signed_up_to == runtime.head_position()
    assert report.seals_opened == 0
    everything = verified(runtime, open_signed=True)
    assert kind_at(everything) == ("forged", runtime.head_position())
    assert everything.seals_opened == runtime.head_position()


def test_a_table_the_verifier_reads_must_be_the_table_itself(runtime: Runtime) -> None:
    """A view or a row-security policy in its place could show the verifier other rows."""
    write_history(runtime, 2)
    sql(runtime, "ALTER TABLE audit.chain ENABLE ROW LEVEL SECURITY")
    report = verified(runtime)
    assert report.first_break is not None and report.first_break.kind == "substituted"
    assert "audit.chain" in report.first_break.detail


def test_an_altered_time_index_is_named(runtime: Runtime) -> None:
    write_history(runtime, 4)
    sql(
        runtime,
        "UPDATE audit.chain SET recorded_at = recorded_at - interval '1 day' WHERE position = 2",
    )
    report = verified(runtime)
    assert kind_at(report) == ("changed", 2)
    assert report.first_break is not None and "recording time" in report.first_break.detail


def test_how_far_the_log_is_signed_and_the_limits(runtime: Runtime, key: Ed25519PrivateKey) -> None:
    write_history(runtime, 6)
    unsigned = verified(runtime, limits=Limits(max_unsigned=runtime.head_position() - 1))
    assert unsigned.intact and not unsigned.ok  # "intact" is no longer the whole story
    assert (unsigned.signed_up_to, unsigned.unsigned_events) == (0, runtime.head_position())
    assert unsigned.newest_checkpoint is None and unsigned.over_limits
    signed = sign(runtime, key).checkpoint
    assert signed is not None
    write_history(runtime, 2, seed=9)
    report = verified(runtime, limits=Limits(max_checkpoint_age=3600, max_unsigned=100))
    assert report.ok
    assert report.signed_up_to == signed.position
    assert report.unsigned_events == runtime.head_position() - signed.position
    stale = verified(runtime, limits=Limits(max_checkpoint_age=0.0))
    assert stale.intact and not stale.ok and "old" in stale.over_limits[0]


def test_checkpoints_are_chained_so_a_removed_one_is_missing(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    signed = []
    for seed in range(3):
        write_history(runtime, 2, seed=seed)
        checkpoint = sign(runtime, key).checkpoint
        assert checkpoint is not None
        signed.append(checkpoint)
    assert [c.sequence for c in signed] == [1, 2, 3]
    assert signed[2].previous == signed[1].digest()
    sql(runtime, "DELETE FROM audit.checkpoints WHERE sequence = 2")
    report = verified(runtime)
    assert kind_at(report) == ("missing", signed[2].position)
    assert report.signed_up_to == signed[0].position


def test_a_heartbeat_signs_the_same_head_again(runtime: Runtime, key: Ed25519PrivateKey) -> None:
    write_history(runtime, 2)
    first = sign(runtime, key).checkpoint
    assert first is not None
    assert sign(runtime, key).checkpoint is None
    beat = sign(runtime, key, heartbeat=True).checkpoint
    assert beat is not None and beat.heartbeat and beat.position == first.position
    assert beat.sequence == 2 and beat.signed_at > first.signed_at
    report = verified(runtime)
    assert report.intact and report.newest_checkpoint == beat
    assert report.signed_up_to == first.position


def test_the_checkpointer_signs_when_due_beats_when_idle_and_backs_off_when_refused(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    from infra.checkpoints import Checkpointer

    checkpointer = Checkpointer(
        runtime.pool,
        key,
        seal_of(runtime.ledger),
        every_events=1000,
        every_seconds=3600,
        heartbeat_seconds=0,
    )
    case = paid_case(runtime)
    first = checkpointer.run_once()  # nothing signed yet: due at once
    assert first is not None and first.checkpoint is not None
    beat = checkpointer.run_once()  # no new event: a heartbeat (heartbeat_seconds=0)
    assert beat is not None and beat.checkpoint is not None and beat.checkpoint.heartbeat
    copy_payment_as_next_version(runtime, case)
    slow = Checkpointer(
        runtime.pool,
        key,
        seal_of(runtime.ledger),
        every_events=1,
        every_seconds=3600,
        heartbeat_seconds=0,
    )
    refused = slow.run_once()
    assert refused is not None and refused.checkpoint is None and refused.refused is not None
    assert slow.run_once() is None  # not again before every_seconds


def test_ranges_verified_in_parallel_processes_agree_with_one_walk(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    for seed in range(6):
        write_history(runtime, 3, seed=seed)
        sign(runtime, key)
    write_history(runtime, 3, seed=99)  # an unsigned tail
    parallel = {"workers": 2, "parallel_from": 0}
    one, many = verified(runtime), verified(runtime, **parallel)
    assert many.intact and many.checked == one.checked == runtime.head_position()
    assert many.signed_up_to == one.signed_up_to > 0
    target = runtime.head_position() - 5
    sql(
        runtime,
        "UPDATE relief_events SET state = state || '\\x20'::bytea WHERE notification_id = %s",
        (target,),
    )
    assert kind_at(verified(runtime, **parallel)) == kind_at(verified(runtime))
    assert kind_at(verified(runtime, **parallel)) == ("changed", target)
