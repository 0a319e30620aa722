"""Tamper evidence: a hash chain over the global log, kept as events commit, and its check.

Each stored event's link is SHA-256(previous link || position || aggregate id || version ||
recording time (microseconds since the Unix epoch) || topic || 0x00 || stored state). The
recording time is the as-of index; it is chained because the event's own timestamp is sealed
inside the encrypted state, out of reach of SQL. A trigger on the events table writes the link
in the same transaction as the event; inserts are serialised by the store's table lock, so the chain
follows commit order. ``verify_chain`` recomputes the links from the stored events and names the
first position where the record departs from the chain: changed bytes, a missing row, an
inserted row, or rows moved to other positions.

What this catches: edits made to the events table alone. An operator who rewrites the chain
table too is caught only by signed checkpoints held outside the database (next step).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from infra import merkle

if TYPE_CHECKING:
    from infra.checkpoints import Checkpoint

GENESIS = bytes(32)
EVENTS_TABLE = "public.relief_events"

AUDIT_DDL = (
    "CREATE SCHEMA IF NOT EXISTS audit",
    """CREATE TABLE IF NOT EXISTS audit.chain (
        position bigint PRIMARY KEY,
        originator_id uuid NOT NULL,
        originator_version bigint NOT NULL,
        recorded_at timestamptz NOT NULL,
        hash bytea NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS chain_aggregate ON audit.chain (originator_id, originator_version)",
    """CREATE OR REPLACE FUNCTION audit.chain_event() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        previous bytea;
        stamp timestamptz;
    BEGIN
        SELECT hash INTO previous FROM audit.chain WHERE position < NEW.notification_id
            ORDER BY position DESC LIMIT 1;
        IF previous IS NULL THEN
            previous := decode(repeat('00', 32), 'hex');
        END IF;
        -- Truncated to what timestamptz keeps, so the hash covers exactly the stored value.
        stamp := date_trunc('microseconds', clock_timestamp());
        INSERT INTO audit.chain (position, originator_id, originator_version, recorded_at, hash)
        VALUES (NEW.notification_id, NEW.originator_id, NEW.originator_version,
                stamp,
                sha256(previous || int8send(NEW.notification_id) || uuid_send(NEW.originator_id)
                       || int8send(NEW.originator_version)
                       || int8send((extract(epoch FROM stamp) * 1000000)::bigint)
                       || convert_to(NEW.topic, 'UTF8')
                       || '\\x00'::bytea || NEW.state));
        RETURN NULL;
    END $$""",
    f"DROP TRIGGER IF EXISTS relief_events_chain ON {EVENTS_TABLE}",
    f"CREATE TRIGGER relief_events_chain AFTER INSERT ON {EVENTS_TABLE}"
    " FOR EACH ROW EXECUTE FUNCTION audit.chain_event()",
)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def microseconds(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


def event_bytes(
    position: int,
    originator_id: UUID,
    version: int,
    recorded_at: dt.datetime,
    topic: str,
    state: bytes,
) -> bytes:
    """The canonical bytes of one stored event: what the chain and Merkle leaves cover."""
    return (
        position.to_bytes(8, "big", signed=True)
        + originator_id.bytes
        + version.to_bytes(8, "big", signed=True)
        + microseconds(recorded_at).to_bytes(8, "big", signed=True)
        + topic.encode("utf-8")
        + b"\x00"
        + state
    )


def link(
    previous: bytes,
    position: int,
    originator_id: UUID,
    version: int,
    recorded_at: dt.datetime,
    topic: str,
    state: bytes,
) -> bytes:
    """One link of the chain, exactly as the trigger computes it."""
    return hashlib.sha256(
        previous + event_bytes(position, originator_id, version, recorded_at, topic, state)
    ).digest()


@dataclass(frozen=True)
class Verification:
    intact: bool
    intact_up_to: int  # last position whose link verified (0: none)
    checked: int
    break_position: int | None = None
    kind: str | None = None  # changed, missing, inserted, reordered
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "intact_up_to": self.intact_up_to,
            "checked": self.checked,
            "break_position": self.break_position,
            "kind": self.kind,
            "detail": self.detail,
        }


_WALK = f"""
    SELECT coalesce(e.notification_id, c.position) AS position,
           e.originator_id, e.originator_version, e.topic, e.state,
           c.originator_id, c.originator_version, c.hash, c.recorded_at
    FROM {EVENTS_TABLE} e FULL OUTER JOIN audit.chain c ON c.position = e.notification_id
    ORDER BY 1
"""


def verify_chain(
    pool: ConnectionPool,
    *,
    progress: Callable[[int], None] | None = None,
    batch: int = 5000,
    trusted_key: bytes | None = None,
    held_elsewhere: Sequence[Checkpoint] = (),
) -> Verification:
    """Recompute the chain from the stored events; report the first break, if any.

    Checkpoints: every one must be signed by ``trusted_key`` (or, without one, all by a single
    key), ranges must follow each other, and each must match the recomputed link and Merkle
    root at its position, which must still hold an event; checkpoints an auditor holds outside
    the database (``held_elsewhere``) must still be there unchanged. The chain's ids and time
    index must agree with the events they index.
    """
    from infra.checkpoints import checkpoints as load_checkpoints

    signed = {c.position: c for c in load_checkpoints(pool, limit=100_000_000)}
    problem = _check_checkpoints(signed, trusted_key, held_elsewhere)
    if problem is not None:
        return problem
    previous, before_last = GENESIS, GENESIS
    last_position, position_before_last, checked = 0, 0, 0
    last_checkpoint, leaves, matched = 0, [], set()
    with pool.connection() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with conn.cursor(name="audit_walk") as cursor:
            cursor.itersize = batch
            cursor.execute(_WALK)
            for row in cursor:
                (
                    position,
                    event_id,
                    event_version,
                    topic,
                    state,
                    chain_id,
                    chain_version,
                    chain_hash,
                    chain_time,
                ) = row
                checked += 1
                if progress is not None and checked % batch == 0:
                    progress(checked)
                if event_id is None:
                    return _broken(
                        last_position,
                        checked,
                        position,
                        "missing",
                        f"the event recorded at position {position} "
                        f"({chain_id} v{chain_version}) is gone",
                    )
                if chain_hash is None:
                    return _broken(
                        last_position,
                        checked,
                        position,
                        "inserted",
                        f"position {position} ({event_id} v{event_version}) was "
                        "never chained: inserted outside the store",
                    )
                state = bytes(state)
                computed = link(
                    previous, position, event_id, event_version, chain_time, topic, state
                )
                same_ids = (event_id, event_version) == (chain_id, chain_version)
                if computed == bytes(chain_hash) and same_ids:
                    leaves.append(
                        merkle.leaf_hash(
                            event_bytes(position, event_id, event_version, chain_time, topic, state)
                        )
                    )
                    held = signed.get(position)
                    if held is not None:
                        if held.hash != computed or held.merkle_root != merkle.root(leaves):
                            return _broken(
                                last_checkpoint,
                                checked,
                                position,
                                "rewritten",
                                f"the record after position {last_checkpoint} up to {position} "
                                "was altered together with its chain: the signed checkpoint "
                                f"at {position} does not match",
                            )
                        last_checkpoint, leaves = position, []
                        matched.add(position)
                    before_last, previous = previous, computed
                    position_before_last, last_position = last_position, position
                    continue
                relinked = link(
                    before_last, position, event_id, event_version, chain_time, topic, state
                )
                if relinked == bytes(chain_hash):
                    return _broken(
                        position_before_last,
                        checked,
                        last_position,
                        "inserted",
                        f"position {last_position} was inserted after position "
                        f"{position} had been chained",
                    )
                if not same_ids:
                    moved = _chained_position(conn, event_id, event_version)
                    if moved is not None:
                        return _broken(
                            last_position,
                            checked,
                            position,
                            "reordered",
                            f"position {position} holds the event chained at "
                            f"position {moved} ({event_id} v{event_version})",
                        )
                    return _broken(
                        last_position,
                        checked,
                        position,
                        "inserted",
                        f"position {position} holds {event_id} v{event_version}, "
                        "an event never chained",
                    )
                return _broken(
                    last_position,
                    checked,
                    position,
                    "changed",
                    f"the stored bytes or the recording time (time index) of position "
                    f"{position} ({event_id} v{event_version}) differ from what was "
                    "chained, or the row before it was removed with its link",
                )
    unmatched = sorted(set(signed) - matched)
    if unmatched:
        return _broken(
            last_position,
            checked,
            unmatched[0],
            "missing",
            f"signed checkpoint {unmatched[0]} names a position that holds no event "
            "any more: history was removed or renumbered",
        )
    return Verification(True, last_position, checked)


def _check_checkpoints(
    signed: dict[int, Checkpoint], trusted_key: bytes | None, held_elsewhere: Sequence[Checkpoint]
) -> Verification | None:
    for outside in held_elsewhere:
        inside = signed.get(outside.position)
        if inside != outside:
            return _broken(
                0,
                0,
                outside.position,
                "missing" if inside is None else "rewritten",
                f"the checkpoint at {outside.position} held outside the database "
                f"is {'gone from' if inside is None else 'different in'} it",
            )
    keys = {c.public_key for c in signed.values()}
    if trusted_key is None and len(keys) > 1:
        first = min(signed)
        return _broken(
            0,
            0,
            first,
            "forged-checkpoint",
            "checkpoints are signed by several keys; name the trusted one",
        )
    expected_start = 1
    for position in sorted(signed):
        checkpoint = signed[position]
        if not checkpoint.signature_valid(trusted_key):
            return _broken(
                0,
                0,
                position,
                "forged-checkpoint",
                f"the checkpoint at position {position} is not signed by the trusted key",
            )
        if checkpoint.range_start != expected_start:
            return _broken(
                0,
                0,
                position,
                "missing",
                f"checkpoint {position} starts at {checkpoint.range_start}, not "
                f"{expected_start}: a checkpoint before it is gone",
            )
        expected_start = position + 1
    return None


def _chained_position(conn: psycopg.Connection[Any], event_id: UUID, version: int) -> int | None:
    row = conn.execute(
        "SELECT position FROM audit.chain WHERE originator_id = %s AND originator_version = %s",
        (event_id, version),
    ).fetchone()
    return int(row[0]) if row else None


def _broken(intact_up_to: int, checked: int, position: int, kind: str, detail: str) -> Verification:
    return Verification(False, intact_up_to, checked, position, kind, detail)


def version_at(pool: ConnectionPool, aggregate_id: UUID, moment: Any) -> int | None:
    """The aggregate's version as it stood at ``moment`` (indexed; no history scan)."""
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT max(originator_version) FROM audit.chain"
            " WHERE originator_id = %s AND recorded_at <= %s",
            (aggregate_id, moment),
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else None
