"""One range of the chain, walked: links, Merkle leaves and seals recomputed from stored bytes.

The events and their chain rows come in one ``COPY ... (FORMAT BINARY)`` in position order
through a merge join of the two primary-key indexes (nothing sorts; rows the join cannot see are
found by the verifier's anti-joins). PostgreSQL sends each event's canonical bytes in two pieces
made by built-in functions only (the trigger's own expressions, ``event_parts_sql``;
``search_path`` pinned so nothing of the database's own can stand in) with the recording time
between them as stored: a timestamptz in binary form, which is integer microseconds since 2000,
made Unix microseconds by one addition (``unix_micros``): no datetime work per row, and no
numeric arithmetic in the server either. Rows are read as libpq receives them, one message
each, and cut at fixed offsets (no field objects built); the link is hashed straight from the
message's pieces, and the Merkle leaf from the link. The canonical bytes are put together as
one buffer only where something needs them whole: a seal to open, a leaf of a format-v1
range, a break to describe.

Used by the verifier (infra/audit_verify.py, one walk per range between checkpoints, in parallel
processes) and by the checkpointer (infra/checkpoints.py, which signs only what a walk
authenticated). Light imports on purpose: worker processes start from this module.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from cryptography.exceptions import InvalidTag

from infra import merkle
from infra.audit_chain import POSTGRES_EPOCH_US, event_parts_sql
from infra.sealing import Outcome, Seal, describe

#: A position no event reaches: "no checkpoint ahead".
BEYOND = 2**63

#: The canonical bytes of each stored event but its recording time, from the events (e)
#: columns: position, aggregate id and version (32 bytes), then topic, 0x00 and stored state.
HEAD, TAIL = event_parts_sql(
    "e.notification_id", "e.originator_id", "e.originator_version", "e.topic", "e.state"
)
#: Per event: the head of its bytes, its recording time (binary timestamptz), the chained link
#: (NULL when the chain row names another event), the position the link was chained after,
#: the tail of its bytes.
WALK = f"""COPY (
    SELECT {HEAD}, c.recorded_at,
           CASE WHEN e.originator_id = c.originator_id
                 AND e.originator_version = c.originator_version THEN c.hash END,
           c.previous_position, {TAIL}
    FROM public.relief_events e JOIN audit.chain c ON c.position = e.notification_id
    WHERE e.notification_id > %(after)s AND e.notification_id <= %(upto)s
      AND c.position > %(after)s AND c.position <= %(upto)s
    ORDER BY e.notification_id
) TO STDOUT (FORMAT BINARY)"""
#: A binary COPY opens with this signature (then 32-bit flags and a header extension length),
#: and ends with a row of field count -1.
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
COPY_TRAILER = b"\xff\xff"
#: A row is a 16-bit field count, then each field as a 32-bit length (-1: NULL) and its bytes.
#: With no NULL (every row chained by this version) the fields lie at fixed offsets, read by
#: one unpack: the head (its position the first 8 bytes), the recording time, the link, the
#: previous position, each after its length; the tail follows from ``TAIL_AT``. The lengths of
#: the link and the previous position say whether a row is such a row.
FIXED = struct.Struct(">hi32siqi32si8si")
TAIL_AT = FIXED.size


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

    Positions stay as the 8 bytes the row carries (big-endian, so for positions, which are
    positive, bytes compare as the numbers do) and become numbers only where reported.
    """
    pin_session(conn)
    sha256 = hashlib.sha256
    blank = sha256()  # copied for each link: cheaper than a new hash object
    unpack = FIXED.unpack_from
    result = Walked(span, last_position=span.after, link=span.start_link)
    targets = span.checkpoints
    target = 0
    next_checkpoint = _at(targets[0].position if targets else BEYOND)
    # Leaves of the range being walked: over links, except in ranges format-v1 checkpoints
    # signed (and beyond the last checkpoint, where the next one will be chained).
    over_links = targets[0].over_links if targets else True
    leaves: list[bytes] = []
    add_leaf = leaves.append
    decrypt = seal.aead.decrypt if seal is not None else None
    legacy_until = seal.legacy_until if seal is not None else 0
    previous = before_last = span.start_link
    last = _at(span.after)
    checked = legacy = 0
    mismatch: tuple[Any, ...] | None = None
    chained: bytes | None  # None: the chain row names another event
    previous_at: bytes | None  # None: a chain row from before rows named their predecessor
    with (
        conn.cursor() as cursor,
        cursor.copy(WALK, {"after": span.after, "upto": span.upto}) as copy,
    ):
        for row in _rows(copy, conn.pgconn):
            try:
                _, _, head, _, stamp, link_size, chained, previous_size, previous_at, _ = unpack(
                    row
                )
                fixed = link_size == 32 and previous_size == 8
            except struct.error:  # shorter than a row without NULLs
                fixed = False
            if fixed:
                tail = row[TAIL_AT:]
            else:
                head, stamp, chained, previous_at, tail = _fields(row)
            position = head[:8]
            if position > next_checkpoint:
                result.chain_break = _checkpoint_gone(_number(next_checkpoint))
                break
            if previous_at != last and previous_at is not None:
                result.chain_break = _gap(_number(position), _number(previous_at), _number(last))
                break
            recorded = (stamp + POSTGRES_EPOCH_US).to_bytes(8, "big", signed=True)
            link = blank.copy()
            link.update(previous)
            link.update(head)
            link.update(recorded)
            link.update(tail)
            computed = link.digest()
            if computed != chained:
                mismatch = (
                    _number(position),
                    head + recorded + tail,
                    chained,
                    None if previous_at is None else _number(previous_at),
                    before_last,
                    _number(last),
                )
                break
            if seal is not None and decrypt is not None:
                whole = bytes(tail)
                end = whole.index(0)
                sealed, at = whole[end + 1 :], head[8:32] + whole[:end]
                number = _number(position)
                # Above the boundary the place-bound seal is the rule: tried here, inline.
                if number <= legacy_until or not _opens(decrypt, sealed, at):
                    outcome = seal.open(sealed, at, number)[0]
                    if outcome == "legacy":
                        legacy += 1
                    elif outcome != "bound":
                        data = head + recorded + tail
                        if stop_at_unopened:
                            result.unopened.append(_unopened(number, data, outcome))
                            break
                        if len(result.unopened) < unopened_limit:
                            result.unopened.append(_unopened(number, data, outcome))
            add_leaf(
                sha256(b"\x00" + (computed if over_links else head + recorded + tail)).digest()
            )
            checked += 1
            before_last, previous, last = previous, computed, position
            if position == next_checkpoint:
                signed = targets[target]
                if computed != signed.link or merkle.root(leaves) != signed.root:
                    number = _number(position)
                    result.chain_break = Finding(
                        number,
                        "rewritten",
                        f"the record up to position {number} was altered together with its "
                        f"chain: the signed checkpoint at {number} does not match",
                    )
                    break
                result.matched.append(signed.position)
                leaves = []
                add_leaf = leaves.append
                target += 1
                if target < len(targets):
                    next_checkpoint = _at(targets[target].position)
                    over_links = targets[target].over_links
                else:
                    next_checkpoint, over_links = _at(BEYOND), True
            if progress is not None and not checked % 8192:
                progress(checked)
        while copy.read():  # after a stop: the rest of the COPY, unread, so the session is free
            pass
    if mismatch is not None:
        result.chain_break = _mismatch(conn, *mismatch)
    if result.chain_break is None and next_checkpoint != _at(BEYOND):
        result.chain_break = _checkpoint_gone(_number(next_checkpoint))
    result.checked, result.legacy = checked, legacy
    result.opened = checked if seal is not None else 0
    result.last_position, result.link = _number(last), previous
    if want_root:
        result.root = merkle.root(leaves)
    return result


def _at(position: int) -> bytes:
    """A position as a row carries it (unsigned here, so that ``BEYOND`` fits)."""
    return position.to_bytes(8, "big")


def _number(at: bytes) -> int:
    """A position from a row's 8 bytes."""
    return int.from_bytes(at, "big", signed=True)


def _rows(copy: psycopg.Copy, pgconn: Any) -> Iterator[memoryview]:
    """The rows of a binary COPY as libpq receives them, one message each (not copied), the
    header cut off, up to the trailer. A message libpq holds already is taken directly;
    psycopg's own read (which waits on the socket, and ends the COPY or raises the server's
    error) only when none is in yet, and for the end."""
    get = pgconn.get_copy_data
    header = True
    while True:
        size, message = get(1)  # 0: no whole message received yet
        if size < 0:  # the COPY ended before its trailer: the server's error is waiting
            failed = pgconn.get_result()
            detail = failed.error_message.decode(errors="replace") if failed is not None else ""
            raise psycopg.OperationalError(f"the walk's COPY ended early: {detail}")
        row: memoryview = message if size else memoryview(copy.read())
        if not row:
            return
        if header:
            if row[: len(COPY_SIGNATURE)] != COPY_SIGNATURE:
                raise psycopg.DataError("the walk's COPY does not start with its signature")
            row = row[19 + int.from_bytes(row[15:19], "big") :]
            header = False
        if row == COPY_TRAILER:
            while copy.read():
                pass
            return
        yield row


def _fields(row: memoryview) -> tuple[bytes, int, bytes | None, bytes | None, memoryview]:
    """A row's five fields wherever they lie (a NULL link or previous position moves the rest),
    the recording time as a number (microseconds since 2000)."""
    if int.from_bytes(row[:2], "big") != 5:
        raise psycopg.DataError(f"a row of the walk's COPY has {row[:2].hex()} fields, not 5")
    fields: list[memoryview | None] = []
    at = 2
    for _ in range(5):
        size = int.from_bytes(row[at : at + 4], "big", signed=True)
        at += 4
        fields.append(None if size < 0 else row[at : at + size])
        at += max(size, 0)
    head, stamp, chained, previous_at, tail = fields
    if head is None or stamp is None or tail is None or len(head) != 32 or len(stamp) != 8:
        raise psycopg.DataError("a row of the walk's COPY lacks a field that cannot be NULL")
    return (
        bytes(head),
        int.from_bytes(stamp, "big", signed=True),
        None if chained is None else bytes(chained),
        None if previous_at is None else bytes(previous_at),
        tail,
    )


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
