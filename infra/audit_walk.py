"""One range of the chain, walked: links, Merkle leaves and seals recomputed from stored bytes.

The events and their chain rows come in one ``COPY ... (FORMAT BINARY)`` in position order
through a merge join of the two primary-key indexes (nothing sorts). PostgreSQL assembles each
event's canonical bytes (``audit.event_bytes``, the trigger's own definition), so each row is
one buffer feeding the link, the Merkle leaf and the seal check, and the recording time arrives
as integer microseconds: no datetime work per row.

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

from infra import merkle
from infra.sealing import Seal, describe

#: A position no event reaches: "no checkpoint ahead".
BEYOND = 2**63

WALK = """COPY (
    SELECT e.notification_id,
           audit.event_bytes(e.notification_id, e.originator_id, e.originator_version,
                             c.recorded_at, e.topic, e.state),
           c.hash, c.previous_position,
           e.originator_id = c.originator_id AND e.originator_version = c.originator_version
    FROM public.relief_events e JOIN audit.chain c ON c.position = e.notification_id
    WHERE e.notification_id > %(after)s AND e.notification_id <= %(upto)s
      AND c.position > %(after)s AND c.position <= %(upto)s
    ORDER BY e.notification_id
) TO STDOUT (FORMAT BINARY)"""
ROW_TYPES = ["int8", "bytea", "bytea", "int8", "bool"]


@dataclass(frozen=True)
class Finding:
    """Where the record departs from what was chained, signed or sealed, and how."""

    position: int
    kind: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class Span:
    """Positions (after, upto], walked from the link at ``after``; ``checkpoints`` inside it
    (position, link, Merkle root of the range it closes) must be matched on the way."""

    after: int
    upto: int
    start_link: bytes
    checkpoints: tuple[tuple[int, bytes, bytes], ...] = ()


@dataclass
class Walked:
    span: Span
    checked: int = 0
    last_position: int = 0  # the last position that verified (span.after: none)
    link: bytes = b""  # the link at last_position
    tree: merkle.Tree = field(default_factory=merkle.Tree)  # leaves since the last checkpoint
    matched: list[int] = field(default_factory=list)  # checkpoint positions matched
    chain_break: Finding | None = None
    unopened: list[Finding] = field(default_factory=list)  # events that do not open in place
    legacy: int = 0  # events opened with a pre-binding seal (at or below the boundary)

    @property
    def complete(self) -> bool:
        """Every position of the span verified and every checkpoint in it matched."""
        return self.chain_break is None and len(self.matched) == len(self.span.checkpoints)


def walk(
    conn: psycopg.Connection[Any],
    span: Span,
    seal: Seal | None,
    *,
    stop_at_unopened: bool = False,
    unopened_limit: int = 100,
    progress: Callable[[int], None] | None = None,
) -> Walked:
    """Walk ``span`` inside the caller's transaction (its snapshot is what gets checked).

    Stops at the first break of the chain. Events whose seal does not open at their place are
    listed (up to ``unopened_limit``) and the walk goes on, or, with ``stop_at_unopened``, stops
    before the first of them (the checkpointer signs nothing from there on).
    """
    conn.execute("SET LOCAL enable_hashjoin = off")  # a merge join of the indexes, in order
    conn.execute("SET LOCAL enable_sort = off")
    sha256 = hashlib.sha256
    result = Walked(span, last_position=span.after, link=span.start_link)
    targets = span.checkpoints
    target = 0
    next_checkpoint = targets[0][0] if targets else BEYOND
    tree = result.tree
    add_leaf = tree.add
    opener = seal.open if seal is not None else None
    previous = before_last = span.start_link
    last = span.after
    checked = legacy = 0
    mismatch: tuple[Any, ...] | None = None
    with (
        conn.cursor() as cursor,
        cursor.copy(WALK, {"after": span.after, "upto": span.upto}) as copy,
    ):
        copy.set_types(ROW_TYPES)
        for position, data, chained, previous_position, same in copy.rows():
            if position > next_checkpoint:
                result.chain_break = _checkpoint_gone(next_checkpoint)
                break
            if previous_position is not None and previous_position != last:
                result.chain_break = _gap(position, previous_position, last)
                break
            computed = sha256(previous + data).digest()
            if computed != chained or not same:
                mismatch = (position, data, chained, same, previous_position, before_last, last)
                break
            if opener is not None:
                end = data.index(0, 40)
                outcome = opener(data[end + 1 :], data[8:32] + data[40:end], position)[0]
                if outcome == "legacy":
                    legacy += 1
                elif outcome != "bound":
                    if stop_at_unopened:
                        result.unopened.append(_unopened(position, data, outcome))
                        break
                    if len(result.unopened) < unopened_limit:
                        result.unopened.append(_unopened(position, data, outcome))
            add_leaf(sha256(b"\x00" + data).digest())
            checked += 1
            before_last, previous, last = previous, computed, position
            if position == next_checkpoint:
                _, signed_link, signed_root = targets[target]
                if computed != signed_link or tree.root() != signed_root:
                    result.chain_break = Finding(
                        position,
                        "rewritten",
                        f"the record up to position {position} was altered together with its "
                        f"chain: the signed checkpoint at {position} does not match",
                    )
                    break
                result.matched.append(position)
                tree = merkle.Tree()
                add_leaf = tree.add
                target += 1
                next_checkpoint = targets[target][0] if target < len(targets) else BEYOND
            if progress is not None and not checked % 8192:
                progress(checked)
        while copy.read():  # after a stop: the rest of the COPY, unread, so the session is free
            pass
    if mismatch is not None:
        result.chain_break = _mismatch(conn, *mismatch)
    if result.chain_break is None and next_checkpoint != BEYOND:
        result.chain_break = _checkpoint_gone(next_checkpoint)
    result.checked, result.legacy = checked, legacy
    result.last_position, result.link, result.tree = last, previous, tree
    return result


def _describe_event(data: bytes) -> str:
    return f"{UUID(bytes=data[8:24])} v{int.from_bytes(data[24:32], 'big', signed=True)}"


def _unopened(position: int, data: bytes, outcome: str) -> Finding:
    return Finding(
        position,
        outcome,
        f"{describe(outcome, position)} ({_describe_event(data)})",  # type: ignore[arg-type]
    )


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
    chained: bytes,
    same: bool,
    previous_position: int | None,
    before_last: bytes,
    last: int,
) -> Finding:
    """Name a link that does not recompute (the failure path: may query)."""
    event = _describe_event(data)
    if not same:
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
    return Finding(
        position,
        "changed",
        f"the stored bytes or the recording time (time index) of position {position} ({event}) "
        "differ from what was chained"
        + (
            ""
            if previous_position is not None
            else ", or the row before it was removed with its link"
        ),
    )
