"""Evidence bundles: a case's history proven offline; any changed byte is rejected."""

from __future__ import annotations

import json
import random

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.case import ReliefCase
from domain.commands.cases import CloseCase
from infra.checkpoints import raw_public_key, sign_checkpoint
from infra.evidence import build_bundle, verify_bundle
from infra.runtime import Runtime
from infra.sealing import seal_of
from tests.factories import approver
from tests.scenario import application, approve, write_history

pytestmark = pytest.mark.integration


@pytest.fixture()
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def a_case_across_checkpoints(runtime: Runtime, key: Ed25519PrivateKey):  # type: ignore[no-untyped-def]
    case = application(runtime)
    write_history(runtime, 6)  # other events between this case's events
    sign_checkpoint(runtime.pool, key, seal_of(runtime.ledger))
    approve(runtime, case)
    write_history(runtime, 4, seed=2)
    sign_checkpoint(runtime.pool, key, seal_of(runtime.ledger))
    runtime.services.cases.close_case(
        CloseCase(case_id=case.id, reason_code="voluntary", provenance=approver())
    )
    return case  # its last event is after the last checkpoint: export signs one


def test_a_bundle_proves_a_case_history_offline(runtime: Runtime, key: Ed25519PrivateKey) -> None:
    case = a_case_across_checkpoints(runtime, key)
    data = build_bundle(runtime.pool, case.id, key, seal_of(runtime.ledger))
    bundle = json.loads(data)
    assert len(bundle["checkpoints"]) == 3  # three ranges hold the case's events
    report = verify_bundle(data, raw_public_key(key.public_key()))
    assert report.ok, report.problems
    assert report.versions == runtime.ledger.get(ReliefCase, case.id).version
    assert verify_bundle(data).ok  # against the key in the bundle


def test_one_changed_byte_anywhere_is_rejected(runtime: Runtime, key: Ed25519PrivateKey) -> None:
    case = a_case_across_checkpoints(runtime, key)
    data = build_bundle(runtime.pool, case.id, key, seal_of(runtime.ledger))
    rng = random.Random(1)
    for offset in rng.sample(range(len(data)), 60):
        tampered = bytearray(data)
        tampered[offset] = (tampered[offset] + 1) % 256
        assert not verify_bundle(bytes(tampered)).ok, f"byte {offset} changed unnoticed"


def test_a_signature_spelled_in_upper_case_is_a_changed_byte(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    """The same signature bytes in other hex letters still change the file: rejected."""
    case = a_case_across_checkpoints(runtime, key)
    data = build_bundle(runtime.pool, case.id, key, seal_of(runtime.ledger))
    signature = json.loads(data)["bundle_signature"]
    assert signature != signature.upper()
    shouted = data.replace(signature.encode(), signature.upper().encode())
    report = verify_bundle(shouted, raw_public_key(key.public_key()))
    assert not report.ok
    assert any("lower case" in p for p in report.problems), report.problems


def test_a_bundle_of_chained_checkpoints_verifies_and_names_their_order(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    case = a_case_across_checkpoints(runtime, key)
    bundle = json.loads(build_bundle(runtime.pool, case.id, key, seal_of(runtime.ledger)))
    held = sorted(bundle["checkpoints"].values(), key=lambda c: c["sequence"])
    assert [c["sequence"] for c in held] == [1, 2, 3]
    assert all(c["previous"] and c["legacy_until"] == 0 for c in held)


def test_no_bundle_vouches_for_an_event_that_does_not_authenticate(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    from domain.errors import InvalidState

    case = a_case_across_checkpoints(runtime, key)
    last = runtime.ledger.get(ReliefCase, case.id)
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO relief_events (originator_id, originator_version, topic, state)"
            " SELECT originator_id, %s, topic, state FROM relief_events"
            " WHERE originator_id = %s AND originator_version = %s",
            (last.version + 1, case.id, last.version),
        )
    with pytest.raises(InvalidState, match="not under a signed checkpoint"):
        build_bundle(runtime.pool, case.id, key, seal_of(runtime.ledger))


def test_a_re_signed_bundle_with_a_changed_event_is_caught_by_the_proofs(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    """A forger with their own key re-signs the file: the checkpoints still give them away,
    and a trusted key refuses the substitute anyway."""
    case = a_case_across_checkpoints(runtime, key)
    bundle = json.loads(build_bundle(runtime.pool, case.id, key, seal_of(runtime.ledger)))
    forger = Ed25519PrivateKey.generate()
    event = bundle["events"][0]
    event["state"] = event["state"][:-4] + "AAAA"
    from infra.evidence import BUNDLE_TAG, canonical

    bundle["public_key"] = raw_public_key(forger.public_key()).hex()
    unsigned = {k: v for k, v in bundle.items() if k != "bundle_signature"}
    bundle["bundle_signature"] = forger.sign(BUNDLE_TAG + canonical(unsigned)).hex()
    report = verify_bundle(canonical(bundle))
    assert not report.ok
    assert any("not validly signed" in p or "is not the event" in p for p in report.problems)
    trusted = verify_bundle(canonical(bundle), raw_public_key(key.public_key()))
    assert any("another key" in p for p in trusted.problems)


def test_a_bundle_exported_from_a_tampered_store_does_not_verify(
    runtime: Runtime, key: Ed25519PrivateKey
) -> None:
    case = a_case_across_checkpoints(runtime, key)
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE relief_events SET state = state || '\\x20'::bytea"
            " WHERE originator_id = %s AND originator_version = 1",
            (case.id,),
        )
    report = verify_bundle(build_bundle(runtime.pool, case.id, key, seal_of(runtime.ledger)))
    assert not report.ok
    assert any("version 1" in p for p in report.problems)


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b'"x"',
        b"1",
        b"{}",
        b'{"format": "relief-ledger evidence bundle v1",'
        b' "checkpoints": [], "events": [], "proofs": []}',
        b"\xff",
    ],
)
def test_anything_that_is_not_a_bundle_is_rejected_not_a_crash(data: bytes) -> None:
    assert not verify_bundle(data).ok
