"""One range of the chain, walked: links, Merkle leaves and seals recomputed from stored bytes.

The events and their chain rows come in one ``COPY ... (FORMAT BINARY)`` in position order
through a merge join of the two primary-key indexes (nothing sorts). PostgreSQL assembles each
event's canonical bytes from the stored columns with built-in functions only (the same
expression as the trigger's, ``event_bytes_sql``; ``search_path`` pinned so nothing of the
database's own can stand in), so each row is one buffer feeding the link, the Merkle leaf and
the seal check, and the recording time arrives as integer microseconds: no datetime work per
row.

Used by the verifier (infra/audit_verify.py, one walk per range between checkpoints, in parallel
processes) and by the checkpointer (infra/checkpoints.py, which signs only what a walk
authenticated). Light imports on purpose: worker processes start from this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from cryptography.exceptions import InvalidTag

from infra import merkle
from infra.audit_chain import event_bytes_sql
from infra.sealing import Outcome, Seal, describe

#: A position no event reaches: "no checkpoint ahead".
BEYOND = 2**63

#: The canonical bytes of each stored event, from the events (e) and chain (c) columns.
EVENT_BYTES = event_bytes_sql(
    "e.notification_id",
    "e.originator_id",
    "e.originator_version",
    "c.recorded_at",
    "e.topic",
    "e.state",
)
#: Position, canonical bytes, the chained link (NULL when the chain row names another event),
#: the position the link was chained after.
WALK = f"""COPY (
    SELECT e.notification_id, {EVENT_BYTES},
           CASE WHEN e.originator_id = c.originator_id
                 AND e.originator_version = c.originator_version THEN c.hash END,
           c.previous_position
    FROM public.relief_events e JOIN audit.chain c ON c.position = e.notification_id
    WHERE e.notification_id > %(after)s AND e.notification_id <= %(upto)s
      AND c.position > %(after)s AND c.position <= %(upto)s
    ORDER BY e.notification_id
) TO STDOUT (FORMAT BINARY)"""
ROW_TYPES = ["int8", "bytea", "bytea", "int8"]


def pin_session(conn: psycopg.Connection[Any]) -> None:
    """For the current transaction: built-in functions only, and a plan that merge-joins the
    two position indexes (no hash table, no sort)."""
    conn.execute("SET LOCAL search_path = pg_catalog, pg_temp")
    conn.execute("SET LOCAL enable_hashjoin = off")
    conn.execute("SET LOCAL enable_sort = off")
    conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")


@dataclass(frozen=True)
class Finding:
    """Where the record departs from what was chained, signed or sealed, and how."""

    position: int
    kind: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class Target:
    """A checkpoint a walk must match: its position, link, and the Merkle root of the range it
    closes, over the range's links (chained checkpoints) or its event bytes (format v1)."""

    position: int
    link: bytes
    root: bytes
    over_links: bool


@dataclass(frozen=True)
class Span:
    """Positions (after, upto], walked from the link at ``after``; the ``checkpoints`` inside it
    must be matched on the way."""

    after: int
    upto: int
    start_link: bytes
    checkpoints: tuple[Target, ...] = ()
    vouched: bool = False  # chained checkpoints, which sign only authenticated events, cover it


@dataclass
class Walked:
    span: Span
    checked: int = 0
    opened: int = 0  # events whose seal was opened
    last_position: int = 0  # the last position that verified (span.after: none)
    link: bytes = b""  # the link at last_position
    root: bytes | None = None  # Merkle root since the last checkpoint (when asked for)
    matched: list[int] = field(default_factory=list)  # checkpoint positions matched
    chain_break: Finding | None = None
    unopened: list[Finding] = field(default_factory=list)  # events that do not open in place
    legacy: int = 0  # events opened with a pre-binding seal (at or below the boundary)


def walk(
    conn: psycopg.Connection[Any],
    span: Span,
    seal: Seal | None,
    *,
    stop_at_unopened: bool = False,
    unopened_limit: int = 100,
    want_root: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Walked:
    """Walk ``span`` inside the caller's transaction (its snapshot is what gets checked).

    Stops at the first break of the chain. Events whose seal does not open at their place are
    listed (up to ``unopened_limit``) and the walk goes on, or, with ``stop_at_unopened``, stops
    before the first of them (the checkpointer signs nothing from there on). ``want_root``: the
    Merkle root of the links after the span's last checkpoint, for the checkpointer to sign.
    """
    pin_session(conn)
    sha256 = hashlib.sha256
    result = Walked(span, last_position=span.after, link=span.start_link)
    targets = span.checkpoints
    target = 0
    next_checkpoint = targets[0].position if targets else BEYOND
    # Leaves of the range being walked: over links, except in ranges format-v1 checkpoints
    # signed (and beyond the last checkpoint, where the next one will be chained).
    over_links = targets[0].over_links if targets else True
    leaves: list[bytes] = []
    add_leaf = leaves.append
    opener = seal.open if seal is not None else None
    decrypt = seal.aead.decrypt if seal is not None else None
    legacy_until = seal.legacy_until if seal is not None else 0
    previous = before_last = span.start_link
    last = span.after
    checked = legacy = 0
    mismatch: tuple[Any, ...] | None = None
    with (
        conn.cursor() as cursor,
        cursor.copy(WALK, {"after": span.after, "upto": span.upto}) as copy,
    ):
        copy.set_types(ROW_TYPES)
        for position, data, chained, previous_position in copy.rows():
            if position > next_checkpoint:
                result.chain_break = _checkpoint_gone(next_checkpoint)
                break
            if previous_position != last and previous_position is not None:
                result.chain_break = _gap(position, previous_position, last)
                break
            computed = sha256(previous + data).digest()
            if computed != chained:
                mismatch = (position, data, chained, previous_position, before_last, last)
                break
            if opener is not None and decrypt is not None:
                end = data.index(0, 40)
                sealed, at = data[end + 1 :], data[8:32] + data[40:end]
                # Above the boundary the place-bound seal is the rule: tried here, inline.
                if position <= legacy_until or not _opens(decrypt, sealed, at):
                    outcome = opener(sealed, at, position)[0]
                    if outcome == "legacy":
                        legacy += 1
                    elif outcome != "bound":
                        if stop_at_unopened:
                            result.unopened.append(_unopened(position, data, outcome))
                            break
                        if len(result.unopened) < unopened_limit:
                            result.unopened.append(_unopened(position, data, outcome))
            add_leaf(sha256(b"\x00" + (computed if over_links else data)).digest())
            checked += 1
            before_last, previous, last = previous, computed, position
            if position == next_checkpoint:
                signed = targets[target]
                if computed != signed.link or merkle.root(leaves) != signed.root:
                    result.chain_break = Finding(
                        position,
                        "rewritten",
                        f"the record up to position {position} was altered together with its "
                        f"chain: the signed checkpoint at {position} does not match",
                    )
                    break
                result.matched.append(position)
                leaves = []
                add_leaf = leaves.append
                target += 1
                if target < len(targets):
                    next_checkpoint, over_links = (
                        targets[target].position,
                        targets[target].over_links,
                    )
                else:
                    next_checkpoint, over_links = BEYOND, True
            if progress is not None and not checked % 8192:
                progress(checked)
        while copy.read():  # after a stop: the rest of the COPY, unread, so the session is free
            pass
    if mismatch is not None:
        result.chain_break = _mismatch(conn, *mismatch)
    if result.chain_break is None and next_checkpoint != BEYOND:
        result.chain_break = _checkpoint_gone(next_checkpoint)
    result.checked, result.legacy = checked, legacy
    result.opened = checked if seal is not None else 0
    result.last_position, result.link = last, previous
    if want_root:
        result.root = merkle.root(leaves)
    return result


def _opens(decrypt: Callable[..., bytes], sealed: bytes, at: bytes) -> bool:
    """Whether a seal in the library's layout (nonce, tag, ciphertext) opens at ``at``."""
    try:
        decrypt(sealed[:12], sealed[28:] + sealed[12:28], at)
    except InvalidTag:
        return False
    return True


def _describe_event(data: bytes) -> str:
    return f"{UUID(bytes=data[8:24])} v{int.from_bytes(data[24:32], 'big', signed=True)}"


def _unopened(position: int, data: bytes, outcome: Outcome) -> Finding:
    detail = describe(outcome, position)
    return Finding(position, outcome, f"{detail} ({_describe_event(data)})")


def _checkpoint_gone(position: int) -> Finding:
    return Finding(
        position,
        "missing",
        f"the signed checkpoint at position {position} names a position that holds no event "
        "any more: history was removed or renumbered",
    )


def _gap(position: int, previous_position: int, last: int) -> Finding:
    if previous_position > last:
        return Finding(
            previous_position,
            "missing",
            f"the event at position {previous_position} is gone together with its link "
            f"(position {position} was chained after it)",
        )
    return Finding(
        last,
        "inserted",
        f"position {last} was inserted after position {position} had been chained",
    )


def _mismatch(
    conn: psycopg.Connection[Any],
    position: int,
    data: bytes,
    chained: bytes | None,
    previous_position: int | None,
    before_last: bytes,
    last: int,
) -> Finding:
    """Name a link that does not recompute (the failure path: may query)."""
    event = _describe_event(data)
    if chained is None:  # the chain row at this position names another event
        row = conn.execute(
            "SELECT position FROM audit.chain WHERE originator_id = %s AND originator_version = %s",
            (UUID(bytes=data[8:24]), int.from_bytes(data[24:32], "big", signed=True)),
        ).fetchone()
        if row is not None:
            return Finding(
                position,
                "reordered",
                f"position {position} holds the event chained at position {row[0]} ({event})",
            )
        return Finding(
            position, "inserted", f"position {position} holds {event}, an event never chained"
        )
    if previous_position is None and hashlib.sha256(before_last + data).digest() == chained:
        # A chain written before rows named their predecessor: the link skips the row before.
        return Finding(
            last,
            "inserted",
            f"position {last} was inserted after position {position} had been chained",
        )
    removed = "" if previous_position is not None else ", or the row before it was removed"
    return Finding(
        position,
        "changed",
        f"the stored bytes or the recording time (time index) of position {position} ({event}) "
        f"differ from what was chained{removed}",
    )
