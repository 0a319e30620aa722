"""Signed checkpoints of the hash chain: what an auditor holds outside the database.

A checkpoint covers the range of positions since the previous one. It signs, with an Ed25519
key the database operator does not hold: the last position, the chain link there, and the
Merkle root of the range's events. Verification recomputes the chain and requires every
checkpoint to match (catching a rewrite of events *and* chain); the Merkle root lets one event
be proven against a checkpoint without the rest of the log (infra/evidence.py).
"""

from __future__ import annotations

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

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from psycopg_pool import ConnectionPool

from infra import merkle
from infra.audit_chain import GENESIS, event_bytes

log = logging.getLogger(__name__)

CHECKPOINT_DDL = (
    """CREATE TABLE IF NOT EXISTS audit.checkpoints (
        position bigint PRIMARY KEY,
        range_start bigint NOT NULL,
        hash bytea NOT NULL,
        merkle_root bytea NOT NULL,
        signed_at timestamptz NOT NULL,
        public_key bytea NOT NULL,
        signature bytea NOT NULL,
        published_at timestamptz
    )""",
)
DOMAIN_TAG = b"relief-ledger checkpoint v1\x00"


def message(position: int, link: bytes, range_start: int, merkle_root: bytes) -> bytes:
    return (
        DOMAIN_TAG
        + position.to_bytes(8, "big", signed=True)
        + link
        + range_start.to_bytes(8, "big", signed=True)
        + merkle_root
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


@dataclass(frozen=True)
class Checkpoint:
    position: int
    range_start: int
    hash: bytes
    merkle_root: bytes
    signed_at: dt.datetime
    public_key: bytes
    signature: bytes

    def signature_valid(self, trusted: bytes | None = None) -> bool:
        """True when signed by ``trusted`` (or the key it names, if none is given)."""
        if trusted is not None and self.public_key != trusted:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                self.signature,
                message(self.position, self.hash, self.range_start, self.merkle_root),
            )
        except (InvalidSignature, ValueError):
            return False
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "range_start": self.range_start,
            "hash": self.hash.hex(),
            "merkle_root": self.merkle_root.hex(),
            "signed_at": self.signed_at.isoformat(),
            "public_key": self.public_key.hex(),
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            int(data["position"]),
            int(data["range_start"]),
            bytes.fromhex(data["hash"]),
            bytes.fromhex(data["merkle_root"]),
            dt.datetime.fromisoformat(data["signed_at"]),
            bytes.fromhex(data["public_key"]),
            bytes.fromhex(data["signature"]),
        )


#: The stored events in (after, upto] with their recording time: what links and leaves cover.
CHAINED_EVENTS = (
    "SELECT e.notification_id, e.originator_id, e.originator_version, c.recorded_at,"
    " e.topic, e.state FROM public.relief_events e"
    " JOIN audit.chain c ON c.position = e.notification_id"
    " WHERE e.notification_id > %s AND e.notification_id <= %s ORDER BY e.notification_id"
)


def range_leaves(pool: ConnectionPool, start: int, end: int) -> list[tuple[int, bytes]]:
    """(position, leaf hash) of every stored event in [start, end], in order."""
    with pool.connection() as conn:
        rows = conn.execute(
            CHAINED_EVENTS,
            (start - 1, end),
        ).fetchall()
    return [
        (
            int(r[0]),
            merkle.leaf_hash(event_bytes(int(r[0]), r[1], int(r[2]), r[3], r[4], bytes(r[5]))),
        )
        for r in rows
    ]


class ChainMismatch(Exception):
    """The stored events do not relink to the chain's head: nothing is signed."""


def sign_checkpoint(pool: ConnectionPool, key: Ed25519PrivateKey) -> Checkpoint | None:
    """Sign the chain's current head, unless it is signed already.

    In one snapshot, the range since the previous checkpoint is relinked from the stored
    events; the signature is given only if that reproduces the chain's head, so a checkpoint
    never vouches for events that disagree with the chain.
    """
    with pool.connection() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        head = conn.execute(
            "SELECT position, hash FROM audit.chain ORDER BY position DESC LIMIT 1"
        ).fetchone()
        if head is None:
            return None
        position, head_link = int(head[0]), bytes(head[1])
        last = conn.execute(
            "SELECT position, hash FROM audit.checkpoints ORDER BY position DESC LIMIT 1"
        ).fetchone()
        previous_position, link = (int(last[0]), bytes(last[1])) if last else (0, GENESIS)
        if previous_position >= position:
            return None
        rows = conn.execute(
            CHAINED_EVENTS,
            (previous_position, position),
        ).fetchall()
    leaves = []
    for event_position, oid, version, recorded_at, topic, state in rows:
        data = event_bytes(int(event_position), oid, int(version), recorded_at, topic, bytes(state))
        link = hashlib.sha256(link + data).digest()
        leaves.append(merkle.leaf_hash(data))
    if link != head_link:
        raise ChainMismatch(
            f"events {previous_position + 1}..{position} do not relink to the chain head; "
            "run relief audit verify"
        )
    start, root = previous_position + 1, merkle.root(leaves)
    checkpoint = Checkpoint(
        position,
        start,
        head_link,
        root,
        dt.datetime.now(dt.UTC),
        raw_public_key(key.public_key()),
        key.sign(message(position, head_link, start, root)),
    )
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO audit.checkpoints (position, range_start, hash, merkle_root,"
            " signed_at, public_key, signature) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (position) DO NOTHING",
            (
                checkpoint.position,
                checkpoint.range_start,
                checkpoint.hash,
                checkpoint.merkle_root,
                checkpoint.signed_at,
                checkpoint.public_key,
                checkpoint.signature,
            ),
        )
    return checkpoint


def checkpoints(pool: ConnectionPool, *, after: int = 0, limit: int = 1000) -> list[Checkpoint]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT position, range_start, hash, merkle_root, signed_at, public_key, signature"
            " FROM audit.checkpoints WHERE position > %s ORDER BY position LIMIT %s",
            (after, limit),
        ).fetchall()
    return [
        Checkpoint(int(r[0]), int(r[1]), bytes(r[2]), bytes(r[3]), r[4], bytes(r[5]), bytes(r[6]))
        for r in rows
    ]


def covering(pool: ConnectionPool, position: int) -> Checkpoint | None:
    """The checkpoint whose range holds ``position``."""
    found = checkpoints(pool, after=position - 1, limit=1)
    return found[0] if found and found[0].range_start <= position else None


class Checkpointer:
    """Signs the head every ``every_events`` events or ``every_seconds``, whichever first, and
    publishes each checkpoint (HTTP serves them from the table; Kafka gets a copy)."""

    def __init__(
        self,
        pool: ConnectionPool,
        key: Ed25519PrivateKey,
        *,
        every_events: int,
        every_seconds: float,
        kafka_bootstrap: str | None = None,
        kafka_topic: str | None = None,
    ) -> None:
        self.pool, self.key = pool, key
        self.every_events, self.every_seconds = every_events, every_seconds
        self.kafka_bootstrap, self.kafka_topic = kafka_bootstrap, kafka_topic
        self._producer: Any = None

    def run_forever(self, stop: threading.Event) -> None:
        last_signed, last_time = 0, 0.0
        while not stop.is_set():
            with self.pool.connection() as conn:
                row = conn.execute("SELECT max(position) FROM audit.chain").fetchone()
            head = int(row[0]) if row and row[0] is not None else 0
            due = head - last_signed >= self.every_events or (
                head > last_signed and time.monotonic() - last_time >= self.every_seconds
            )
            if due:
                try:
                    checkpoint = sign_checkpoint(self.pool, self.key)
                except ChainMismatch as mismatch:
                    log.error("not signing: %s", mismatch)
                    checkpoint = None
                last_signed, last_time = head, time.monotonic()
                if checkpoint is not None:
                    log.info("signed checkpoint at position %d", checkpoint.position)
            self.publish_pending()
            stop.wait(1.0)

    def publish_pending(self) -> int:
        """Copy unpublished checkpoints to Kafka (at least once); 0 without a broker."""
        if not (self.kafka_bootstrap and self.kafka_topic):
            return 0
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT position, range_start, hash, merkle_root, signed_at, public_key,"
                " signature FROM audit.checkpoints WHERE published_at IS NULL ORDER BY position"
            ).fetchall()
        pending = [
            Checkpoint(
                int(r[0]), int(r[1]), bytes(r[2]), bytes(r[3]), r[4], bytes(r[5]), bytes(r[6])
            )
            for r in rows
        ]
        if not pending:
            return 0
        from infra import kafka_io

        try:
            if self._producer is None:
                kafka_io.ensure_topic(self.kafka_bootstrap, self.kafka_topic, 1)
                self._producer = kafka_io.producer(self.kafka_bootstrap)
            for checkpoint in pending:
                envelope = {
                    "specversion": "1.0",
                    "id": f"checkpoint/{checkpoint.position}",
                    "source": "urn:relief-ledger:audit",
                    "type": "relief.audit.checkpoint",
                    "time": checkpoint.signed_at.isoformat(),
                    "datacontenttype": "application/json",
                    "data": checkpoint.as_dict(),
                }
                self._producer.send(
                    self.kafka_topic, key=b"checkpoint", value=json.dumps(envelope).encode()
                )
            self._producer.flush(timeout=10)
        except Exception:  # broker away: the checkpoints stay pending and go next time
            log.warning("could not publish checkpoints to Kafka", exc_info=True)
            self._producer = None
            return 0
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE audit.checkpoints SET published_at = now() WHERE position = ANY(%s)",
                ([c.position for c in pending],),
            )
        return len(pending)
