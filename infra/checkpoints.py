"""Signed checkpoints of the hash chain: what an auditor holds outside the database.

A checkpoint covers the range of positions since the previous one. It signs, with an Ed25519
key the database operator does not hold: its sequence number, the last position, the chain link
there, the Merkle root over the range's links (each link commits to its event's bytes; a leaf
over 32 bytes instead of the event's hundreds), the digest of the previous checkpoint, the
legacy boundary of the seals (infra/sealing.py) and the signing time. So checkpoints form a chain of
their own: any later checkpoint an auditor kept exposes a checkpoint removed or altered before
it. A checkpoint is signed only over events the checkpointer authenticated: each one's seal
opens at its place and its link recomputes (infra/audit_walk.py).

When no event was recorded for ``heartbeat`` seconds the checkpointer signs again at the same
position (an empty range), so a fresh checkpoint means "the signer is alive and saw this head".

Checkpoints signed before sequence numbers existed (format v1: position, link, range start,
Merkle root over the events' bytes) stay valid; their sequence numbers are their order, and
the first chained checkpoint after them names the digest of the last one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from psycopg_pool import ConnectionPool

from infra.audit_chain import GENESIS, microseconds
from infra.audit_walk import Finding, Span, walk
from infra.database import create_missing_index
from infra.sealing import Seal, read_boundary

log = logging.getLogger(__name__)

CHECKPOINTS_TABLE = """CREATE TABLE IF NOT EXISTS audit.checkpoints (
    sequence bigint PRIMARY KEY,
    position bigint NOT NULL,
    range_start bigint NOT NULL,
    hash bytea NOT NULL,
    merkle_root bytea NOT NULL,
    signed_at timestamptz NOT NULL,
    public_key bytea NOT NULL,
    signature bytea NOT NULL,
    previous bytea,
    legacy_until bigint
)"""
#: A table of format-v1 checkpoints (keyed by position) becomes the chained one: v1 rows are
#: numbered in position order and keep their signatures; ``published_at`` goes (the relay
#: tracks what it published).
MIGRATE_V1 = (
    "ALTER TABLE audit.checkpoints ADD COLUMN sequence bigint, ADD COLUMN previous bytea,"
    " ADD COLUMN legacy_until bigint",
    "UPDATE audit.checkpoints c SET sequence = numbered.n FROM (SELECT position,"
    " row_number() OVER (ORDER BY position) AS n FROM audit.checkpoints) numbered"
    " WHERE numbered.position = c.position",
    "ALTER TABLE audit.checkpoints DROP CONSTRAINT checkpoints_pkey",
    "ALTER TABLE audit.checkpoints ALTER COLUMN sequence SET NOT NULL, ADD PRIMARY KEY (sequence)",
    "ALTER TABLE audit.checkpoints DROP COLUMN IF EXISTS published_at",
)
COLUMNS = (
    "sequence, position, range_start, hash, merkle_root, signed_at, public_key, signature,"
    " previous, legacy_until"
)
#: "relief" + "ckpt" in ASCII: only one process signs at a time, so sequences never fork.
SIGNING_LOCK_KEY = 0x72656C636B7074

DOMAIN_TAG_V1 = b"relief-ledger checkpoint v1\x00"
DOMAIN_TAG = b"relief-ledger checkpoint v2\x00"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def install(conn: psycopg.Connection[Any]) -> None:
    """Create the checkpoints table, or upgrade one of format v1 (idempotent)."""
    columns = {
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'audit' AND table_name = 'checkpoints'"
        )
    }
    if columns and "sequence" not in columns:
        for statement in MIGRATE_V1:
            conn.execute(statement)
    conn.execute(CHECKPOINTS_TABLE)
    create_missing_index(
        conn,
        "audit.checkpoints_position",
        "CREATE INDEX checkpoints_position ON audit.checkpoints (position)",
    )


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The signing key at ``path``; made (mode 0600, written whole then renamed) if missing.

    Only the processes that sign (the checkpointer, exports) call this; readers use
    ``load_public_key`` and never create a key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
        try:
            os.link(temporary, path)  # fails if another process made one first: keep theirs
            log.info("generated the Ed25519 signing key %s", path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return loaded


def load_public_key(path: Path) -> bytes | None:
    """The raw public key of the signing key at ``path``, or None where this process has none."""
    if not path.exists():
        return None
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return raw_public_key(loaded.public_key())


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def strict_hex(text: Any, size: int | None = None) -> bytes:
    """Bytes from lower-case hex exactly as this system writes it: any other spelling of the
    same bytes (upper case, spaces) is a changed byte of the document, so it is refused."""
    if not isinstance(text, str):
        raise ValueError(f"expected hex text, got {type(text).__name__}")
    value = bytes.fromhex(text)
    if value.hex() != text:
        raise ValueError(f"hex {text[:16]}... is not in canonical lower case")
    if size is not None and len(value) != size:
        raise ValueError(f"expected {size} bytes of hex, got {len(value)}")
    return value


@dataclass(frozen=True)
class Checkpoint:
    sequence: int
    position: int
    range_start: int
    hash: bytes
    merkle_root: bytes
    signed_at: dt.datetime
    public_key: bytes
    signature: bytes
    previous: bytes | None = None  # digest of the checkpoint before (None: format v1)
    legacy_until: int | None = None  # the seals' legacy boundary (None: format v1)

    @property
    def chained(self) -> bool:
        return self.previous is not None

    @property
    def heartbeat(self) -> bool:
        """Signed again at the previous position: no event in its range."""
        return self.range_start > self.position

    def message(self) -> bytes:
        """What the signature covers."""
        if self.previous is None:
            return (
                DOMAIN_TAG_V1
                + self.position.to_bytes(8, "big", signed=True)
                + self.hash
                + self.range_start.to_bytes(8, "big", signed=True)
                + self.merkle_root
            )
        return (
            DOMAIN_TAG
            + self.sequence.to_bytes(8, "big", signed=True)
            + self.position.to_bytes(8, "big", signed=True)
            + self.range_start.to_bytes(8, "big", signed=True)
            + self.hash
            + self.merkle_root
            + self.previous
            + (self.legacy_until or 0).to_bytes(8, "big", signed=True)
            + microseconds(self.signed_at).to_bytes(8, "big", signed=True)
        )

    def digest(self) -> bytes:
        """What the next checkpoint names as its ``previous``."""
        return hashlib.sha256(self.message()).digest()

    def signature_valid(self, trusted: bytes | None = None) -> bool:
        """True when signed by ``trusted`` (or the key it names, if none is given)."""
        if trusted is not None and self.public_key != trusted:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                self.signature, self.message()
            )
        except (InvalidSignature, ValueError):
            return False
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "position": self.position,
            "range_start": self.range_start,
            "hash": self.hash.hex(),
            "merkle_root": self.merkle_root.hex(),
            "signed_at": self.signed_at.astimezone(dt.UTC).isoformat(),
            "public_key": self.public_key.hex(),
            "signature": self.signature.hex(),
            "previous": self.previous.hex() if self.previous is not None else None,
            "legacy_until": self.legacy_until,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        previous = data.get("previous")
        legacy_until = data.get("legacy_until")
        signed_at = dt.datetime.fromisoformat(data["signed_at"])
        if signed_at.tzinfo is None:
            raise ValueError("signed_at needs a time zone")
        return cls(
            _integer(data.get("sequence", 0)),
            _integer(data["position"]),
            _integer(data["range_start"]),
            strict_hex(data["hash"], 32),
            strict_hex(data["merkle_root"], 32),
            signed_at,
            strict_hex(data["public_key"], 32),
            strict_hex(data["signature"], 64),
            strict_hex(previous, 32) if previous is not None else None,
            _integer(legacy_until) if legacy_until is not None else None,
        )

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Checkpoint:
        """From a row of ``COLUMNS``."""
        sequence, position, start, link, root, signed_at, key, signature, previous, legacy = row
        return cls(
            int(sequence),
            int(position),
            int(start),
            bytes(link),
            bytes(root),
            signed_at,
            bytes(key),
            bytes(signature),
            bytes(previous) if previous is not None else None,
            int(legacy) if legacy is not None else None,
        )


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def follows(
    checkpoint: Checkpoint, previous: Checkpoint | None, trusted_key: bytes | None
) -> Finding | None:
    """Why ``checkpoint`` is not a valid successor of ``previous`` (None: it is)."""
    number, at = checkpoint.sequence, checkpoint.position
    if not checkpoint.signature_valid(trusted_key):
        return Finding(
            at, "forged-checkpoint", f"checkpoint #{number} is not signed by the trusted key"
        )
    expected = previous.sequence + 1 if previous else 1
    if number != expected:
        return Finding(
            at, "missing", f"checkpoint #{number} follows #{expected - 1}: checkpoints are gone"
        )
    start = previous.position + 1 if previous else 1
    if checkpoint.range_start != start or (not checkpoint.heartbeat and at < start):
        return Finding(
            at,
            "missing",
            f"checkpoint #{number} covers {checkpoint.range_start}..{at}, not from {start}: "
            "the range before it is not signed",
        )
    if checkpoint.heartbeat and (
        previous is None or checkpoint.hash != previous.hash or checkpoint.merkle_root != EMPTY_ROOT
    ):
        return Finding(
            at, "rewritten", f"checkpoint #{number} signs an empty range it does not hold"
        )
    if checkpoint.chained and checkpoint.previous != (previous.digest() if previous else GENESIS):
        return Finding(
            at,
            "rewritten",
            f"checkpoint #{number} does not name checkpoint #{number - 1} as it is now: "
            "the checkpoints before it were replaced",
        )
    if not checkpoint.chained and previous is not None and previous.chained:
        return Finding(
            at, "forged-checkpoint", f"checkpoint #{number} is unchained after chained ones"
        )
    return None


def to_cloudevent(checkpoint: Checkpoint) -> bytes:
    """A checkpoint as a CloudEvent (JSON structured mode), as the Kafka topic carries it."""
    envelope = {
        "specversion": "1.0",
        "id": f"checkpoint/{checkpoint.sequence}",
        "source": "urn:relief-ledger:audit",
        "type": "relief.audit.checkpoint",
        "time": checkpoint.signed_at.astimezone(dt.UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": checkpoint.as_dict(),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def from_cloudevent(value: bytes) -> Checkpoint:
    envelope = json.loads(value)
    if not isinstance(envelope, dict) or envelope.get("type") != "relief.audit.checkpoint":
        raise ValueError("not a checkpoint CloudEvent")
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise ValueError("a checkpoint CloudEvent without data")
    return Checkpoint.from_dict(data)


def all_checkpoints(conn: psycopg.Connection[Any]) -> list[Checkpoint]:
    return [
        Checkpoint.from_row(row)
        for row in conn.execute(f"SELECT {COLUMNS} FROM audit.checkpoints ORDER BY sequence")
    ]


def checkpoints(pool: ConnectionPool, *, after: int = 0, limit: int = 1000) -> list[Checkpoint]:
    """Checkpoints with a sequence number above ``after``, in order."""
    with pool.connection() as conn:
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM audit.checkpoints WHERE sequence > %s"
            " ORDER BY sequence LIMIT %s",
            (after, limit),
        ).fetchall()
    return [Checkpoint.from_row(r) for r in rows]


def covering(pool: ConnectionPool, position: int) -> Checkpoint | None:
    """The checkpoint whose range holds ``position``."""
    with pool.connection() as conn:
        row = conn.execute(
            f"SELECT {COLUMNS} FROM audit.checkpoints WHERE position >= %s AND range_start <= %s"
            " ORDER BY sequence LIMIT 1",
            (position, position),
        ).fetchone()
    return Checkpoint.from_row(row) if row else None


@dataclass(frozen=True)
class Signing:
    """What one signing round did: the checkpoint signed (if any) and, when the walk stopped
    short of the head, why (the first event that did not authenticate or a break)."""

    checkpoint: Checkpoint | None
    refused: Finding | None = None


def sign_checkpoint(
    pool: ConnectionPool, key: Ed25519PrivateKey, seal: Seal, *, heartbeat: bool = False
) -> Signing:
    """Sign the chain as far as its events authenticate, unless that is signed already.

    The range since the newest checkpoint is walked from that checkpoint's link: every link must
    recompute to the stored one and every event's seal must open at its place. The signature
    covers the events up to the first that fails (none, if the first fails). With ``heartbeat``
    the head is signed again even without new events.
    """
    own_key = raw_public_key(key.public_key())
    with pool.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SIGNING_LOCK_KEY,))
        row = conn.execute(
            f"SELECT {COLUMNS} FROM audit.checkpoints ORDER BY sequence DESC LIMIT 1"
        ).fetchone()
        newest = Checkpoint.from_row(row) if row else None
        boundary = read_boundary(conn)
        if newest is not None and not newest.signature_valid(own_key):
            return Signing(
                None,
                Finding(
                    newest.position,
                    "forged-checkpoint",
                    f"checkpoint #{newest.sequence} is not signed by this key: not chaining to it",
                ),
            )
        if newest is not None and newest.chained and newest.legacy_until != boundary:
            return Signing(
                None,
                Finding(
                    min(newest.legacy_until or 0, boundary) + 1,
                    "boundary-moved",
                    f"the legacy boundary in the database ({boundary}) is not the signed one "
                    f"({newest.legacy_until})",
                ),
            )
        after = newest.position if newest is not None else 0
        start_link = newest.hash if newest is not None else GENESIS
        head_row = conn.execute("SELECT max(position) FROM audit.chain").fetchone()
        head = int(head_row[0]) if head_row and head_row[0] is not None else 0
        refused = None
        position, link, root = after, start_link, EMPTY_ROOT
        if head > after:
            walked = walk(
                conn,
                Span(after, head, start_link),
                seal.with_boundary(boundary),
                stop_at_unopened=True,
                want_root=True,
            )
            refused = walked.chain_break or (walked.unopened[0] if walked.unopened else None)
            assert walked.root is not None
            position, link, root = walked.last_position, walked.link, walked.root
        if position == after and not (heartbeat and newest is not None):
            return Signing(None, refused)
        checkpoint = _signed(
            key,
            sequence=newest.sequence + 1 if newest is not None else 1,
            position=position,
            range_start=after + 1,
            link=link,
            root=root,
            previous=newest.digest() if newest is not None else GENESIS,
            legacy_until=boundary,
        )
        conn.execute(
            f"INSERT INTO audit.checkpoints ({COLUMNS}) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                checkpoint.sequence,
                checkpoint.position,
                checkpoint.range_start,
                checkpoint.hash,
                checkpoint.merkle_root,
                checkpoint.signed_at,
                checkpoint.public_key,
                checkpoint.signature,
                checkpoint.previous,
                checkpoint.legacy_until,
            ),
        )
    return Signing(checkpoint, refused)


def _signed(
    key: Ed25519PrivateKey,
    *,
    sequence: int,
    position: int,
    range_start: int,
    link: bytes,
    root: bytes,
    previous: bytes,
    legacy_until: int,
) -> Checkpoint:
    unsigned = Checkpoint(
        sequence,
        position,
        range_start,
        link,
        root,
        dt.datetime.now(dt.UTC),
        raw_public_key(key.public_key()),
        b"",
        previous,
        legacy_until,
    )
    return dataclasses.replace(unsigned, signature=key.sign(unsigned.message()))


class Checkpointer:
    """Signs every ``every_events`` events, or ``every_seconds`` after an event, whichever comes
    first, and at least every ``heartbeat_seconds``. Checkpoints are served over HTTP from the
    table; the relay copies them to Kafka after the events they cover."""

    def __init__(
        self,
        pool: ConnectionPool,
        key: Ed25519PrivateKey,
        seal: Seal,
        *,
        every_events: int,
        every_seconds: float,
        heartbeat_seconds: float,
    ) -> None:
        self.pool, self.key, self.seal = pool, key, seal
        self.every_events, self.every_seconds = every_events, every_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._reported: Finding | None = None
        self._retry_after = 0.0  # after stopping short of the head, wait every_seconds

    def due(self) -> tuple[bool, bool]:
        """(sign now, as a heartbeat) from the head and the newest checkpoint."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT (SELECT max(position) FROM audit.chain),"
                " c.position, extract(epoch FROM now() - c.signed_at)"
                " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT position, signed_at"
                " FROM audit.checkpoints ORDER BY sequence DESC LIMIT 1) c ON true"
            ).fetchone()
        assert row is not None
        head = int(row[0] or 0)
        signed = int(row[1] or 0)
        age = float(row[2]) if row[2] is not None else float("inf")
        pending = head - signed
        if pending >= self.every_events or (pending > 0 and age >= self.every_seconds):
            return True, False
        return age >= self.heartbeat_seconds and row[1] is not None, True

    def run_once(self) -> Signing | None:
        sign, heartbeat = self.due()
        if not sign or time.monotonic() < self._retry_after:
            return None
        signing = sign_checkpoint(self.pool, self.key, self.seal, heartbeat=heartbeat)
        if signing.refused is not None:
            self._retry_after = time.monotonic() + self.every_seconds
        if signing.checkpoint is not None:
            log.info(
                "signed checkpoint #%d at position %d",
                signing.checkpoint.sequence,
                signing.checkpoint.position,
            )
        if signing.refused is not None and signing.refused != self._reported:
            log.error(
                "not signing past position %d: %s", signing.refused.position, signing.refused.detail
            )
        self._reported = signing.refused
        return signing

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.run_once()
            stop.wait(1.0)
