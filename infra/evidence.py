"""Evidence bundles: one aggregate's full history with the proofs, checkable offline.

A bundle holds the aggregate's stored events (bytes as stored, and the chain link before each),
the signed checkpoints whose ranges hold them, a Merkle inclusion proof of each event in its
checkpoint's range (of its link, recomputed from the link before it and its bytes, under a
chained checkpoint; of its bytes under one of format v1), and the public key. The whole file
is also signed, so no byte of it can change unnoticed.
``verify_bundle`` needs neither the database nor this application's configuration: only the
file and, ideally, the public key the auditor obtained independently.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from psycopg_pool import ConnectionPool

from domain.errors import InvalidState
from infra import merkle
from infra.audit_chain import GENESIS, event_bytes
from infra.checkpoints import (
    Checkpoint,
    covering,
    raw_public_key,
    sign_checkpoint,
    strict_hex,
)
from infra.sealing import Seal

FORMAT = "relief-ledger evidence bundle v1"
BUNDLE_TAG = b"relief-ledger bundle v1\x00"


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def range_leaves(pool: ConnectionPool, checkpoint: Checkpoint) -> list[tuple[int, bytes]]:
    """(position, leaf hash) of every stored event in the checkpoint's range, in order: over
    each event's link (chained checkpoints) or its bytes (format v1), as it was signed."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT e.notification_id, e.originator_id, e.originator_version, c.recorded_at,"
            " e.topic, e.state, c.hash FROM public.relief_events e"
            " JOIN audit.chain c ON c.position = e.notification_id"
            " WHERE e.notification_id BETWEEN %s AND %s ORDER BY e.notification_id",
            (checkpoint.range_start, checkpoint.position),
        ).fetchall()
    if checkpoint.chained:
        return [(int(r[0]), merkle.leaf_hash(bytes(r[6]))) for r in rows]
    return [
        (
            int(r[0]),
            merkle.leaf_hash(event_bytes(int(r[0]), r[1], int(r[2]), r[3], r[4], bytes(r[5]))),
        )
        for r in rows
    ]


def build_bundle(
    pool: ConnectionPool, aggregate_id: UUID, key: Ed25519PrivateKey, seal: Seal
) -> bytes:
    """Export the aggregate's history; signs a checkpoint first if its last event has none
    (only over events that authenticate: one that does not stays outside every bundle)."""
    with pool.connection() as conn:
        # With the link each event was chained after: chained checkpoints' leaves are links.
        rows = conn.execute(
            "SELECT e.notification_id, e.originator_version, c.recorded_at, e.topic, e.state,"
            " (SELECT p.hash FROM audit.chain p WHERE p.position < c.position"
            "  ORDER BY p.position DESC LIMIT 1)"
            " FROM public.relief_events e JOIN audit.chain c ON c.position = e.notification_id"
            " WHERE e.originator_id = %s ORDER BY e.originator_version",
            (aggregate_id,),
        ).fetchall()
    if not rows:
        raise LookupError(f"no events for {aggregate_id}")
    if covering(pool, int(rows[-1][0])) is None:
        sign_checkpoint(pool, key, seal)
    events, proofs, held, ranges = [], [], {}, {}
    for position, version, recorded_at, topic, state, previous_link in rows:
        checkpoint = covering(pool, int(position))
        if checkpoint is None:
            raise InvalidState(
                f"position {position} is not under a signed checkpoint: the log does not verify"
                " there (relief audit verify names the event)",
                field="aggregate_id",
            )
        if checkpoint.position not in ranges:
            ranges[checkpoint.position] = range_leaves(pool, checkpoint)
            held[str(checkpoint.position)] = checkpoint.as_dict()
        leaves = ranges[checkpoint.position]
        index = [p for p, _ in leaves].index(int(position))
        path = merkle.inclusion_proof([leaf for _, leaf in leaves], index)
        events.append(
            {
                "position": int(position),
                "version": int(version),
                "recorded_at": recorded_at.isoformat(),
                "topic": topic,
                "state": base64.b64encode(bytes(state)).decode("ascii"),
                "previous_link": bytes(previous_link or GENESIS).hex(),
            }
        )
        proofs.append(
            {
                "position": int(position),
                "checkpoint": checkpoint.position,
                "index": index,
                "size": len(leaves),
                "path": [h.hex() for h in path],
            }
        )
    bundle: dict[str, Any] = {
        "format": FORMAT,
        "aggregate_id": str(aggregate_id),
        "exported_at": dt.datetime.now(dt.UTC).isoformat(),
        "public_key": raw_public_key(key.public_key()).hex(),
        "events": events,
        "checkpoints": held,
        "proofs": proofs,
    }
    bundle["bundle_signature"] = key.sign(BUNDLE_TAG + canonical(bundle)).hex()
    return canonical(bundle)


@dataclass
class BundleReport:
    ok: bool
    aggregate_id: str | None = None
    versions: int = 0
    through_position: int | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _strict_base64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("state is not base64 text")
    data = base64.b64decode(text, validate=True)
    if base64.b64encode(data).decode("ascii") != text:
        raise ValueError("state is not in canonical base64")
    return data


def verify_bundle(data: bytes, trusted_key: bytes | None = None) -> BundleReport:
    """Check a bundle offline: file signature, checkpoint signatures, every inclusion proof,
    and that the versions run 1..n without a gap."""
    report = BundleReport(ok=False)
    try:
        bundle = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        report.problems.append("not a JSON document")
        return report
    if (
        not isinstance(bundle, dict)
        or not isinstance(bundle.get("checkpoints"), dict)
        or not (isinstance(bundle.get("events"), list) and isinstance(bundle.get("proofs"), list))
    ):
        report.problems.append("not an evidence bundle")
        return report
    try:
        return _verify(bundle, data, trusted_key, report)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        report.problems.append(f"malformed bundle: {type(error).__name__}: {error}")
        report.ok = False
        return report


def _verify(
    bundle: dict[str, Any], data: bytes, trusted_key: bytes | None, report: BundleReport
) -> BundleReport:
    problems = report.problems
    if bundle.get("format") != FORMAT:
        problems.append(f"unknown format {bundle.get('format')!r}")
        return report
    if canonical(bundle) != data:
        problems.append("the file is not in its canonical form: it was edited")
    public = strict_hex(bundle["public_key"], 32)
    if trusted_key is not None and public != trusted_key:
        problems.append("the bundle is signed by another key than the trusted one")
    unsigned = {k: v for k, v in bundle.items() if k != "bundle_signature"}
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(
            strict_hex(bundle["bundle_signature"], 64), BUNDLE_TAG + canonical(unsigned)
        )
    except InvalidSignature:
        problems.append("the bundle's own signature does not verify")
    aggregate = UUID(bundle["aggregate_id"])
    report.aggregate_id = str(aggregate)
    checkpoints = {int(k): Checkpoint.from_dict(v) for k, v in bundle["checkpoints"].items()}
    for checkpoint in checkpoints.values():
        if not checkpoint.signature_valid(trusted_key or public):
            problems.append(f"checkpoint {checkpoint.position} is not validly signed")
    proofs = {int(p["position"]): p for p in bundle["proofs"]}
    versions = []
    for event in bundle["events"]:
        position, version = int(event["position"]), int(event["version"])
        versions.append(version)
        proof = proofs.get(position)
        if proof is None:
            problems.append(f"no proof for position {position}")
            continue
        cited = checkpoints.get(int(proof["checkpoint"]))
        if cited is None:
            problems.append(f"position {position} cites a checkpoint the bundle lacks")
            continue
        if not cited.range_start <= position <= cited.position:
            problems.append(f"position {position} lies outside checkpoint {cited.position}'s range")
        data = event_bytes(
            position,
            aggregate,
            version,
            dt.datetime.fromisoformat(event["recorded_at"]),
            event["topic"],
            _strict_base64(event["state"]),
        )
        if cited.chained:  # signed over links: the event's, from the link before it
            data = hashlib.sha256(strict_hex(event["previous_link"], 32) + data).digest()
        leaf = merkle.leaf_hash(data)
        path = [strict_hex(h, 32) for h in proof["path"]]
        try:
            root = merkle.root_from_proof(leaf, int(proof["index"]), int(proof["size"]), path)
        except ValueError as error:
            problems.append(f"position {position}: {error}")
            continue
        if root != cited.merkle_root:
            problems.append(
                f"position {position} (version {version}) is not the event "
                f"checkpoint {cited.position} signed"
            )
    if any(not c.chained for c in checkpoints.values()):
        report.notes.append(
            "some checkpoints predate place binding: they vouch for the bytes, not that the "
            "ledger wrote each event at its place"
        )
    if versions != list(range(1, len(versions) + 1)):
        problems.append(f"versions are not 1..{len(versions)} without a gap: {versions}")
    report.versions = len(versions)
    report.through_position = max(checkpoints) if checkpoints else None
    report.ok = not problems
    return report
