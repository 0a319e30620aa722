"""Seals bound to their place, and the upgrade of a log written before binding existed.

The legacy log is written the way the previous version did it: the library's stock AES-GCM
cipher, mapper and recorder (no associated data), unnumbered (v1) checkpoints, chain rows that
do not name their predecessor, no recorded boundary. Then the new version starts on it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import MapperDeserialisationError

from domain.case import ReliefCase
from domain.clock import Clock, SetClock
from domain.commands.cases import CloseCase
from domain.division import DivisionEntry, MappingRegister
from infra import merkle
from infra.audit_verify import verify_log
from infra.checkpoints import Checkpoint, all_checkpoints, raw_public_key, sign_checkpoint
from infra.divisions_file import read_division_file
from infra.evidence import build_bundle, range_leaves, verify_bundle
from infra.ledger import ReliefLedger
from infra.projection_runner import rebuild
from infra.runtime import Runtime
from infra.schema import init_schema
from infra.sealing import Seal, place, read_boundary, seal_of
from infra.settings import Settings
from projections.caseload import CaseloadProjection
from projections.registry import ALL_PROJECTIONS
from services import Services
from tests.conftest import TEST_DIVISIONS
from tests.factories import approver
from tests.integration.helpers import caseload_rows
from tests.scenario import application, paid_case, write_history

pytestmark = pytest.mark.integration

OLD_CHECKPOINTS_TABLE = """CREATE TABLE audit.checkpoints (
    position bigint PRIMARY KEY, range_start bigint NOT NULL, hash bytea NOT NULL,
    merkle_root bytea NOT NULL, signed_at timestamptz NOT NULL, public_key bytea NOT NULL,
    signature bytea NOT NULL, published_at timestamptz)"""


def sql(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


class OldVersion:
    """The application as the previous version built it (the library's own cipher, mapper and
    recorder), with today's services writing through it."""

    def __init__(self, runtime: Runtime) -> None:
        env = {
            k: v
            for k, v in runtime.ledger.env.items()
            if not k.endswith(("MAPPER_TOPIC", "RECORDER_TOPIC", "PERSISTENCE_MODULE"))
        }
        env["PERSISTENCE_MODULE"] = "eventsourcing.postgres"
        env["CIPHER_TOPIC"] = "eventsourcing.cryptography:AESCipher"
        self.ledger = ReliefLedger(env=env)
        listed = read_division_file(TEST_DIVISIONS)
        self.services = Services.over(
            self.ledger,
            clock=Clock(),
            identity_key=runtime.settings.identity_key(),
            # The old version kept no register: its commands name the test villages, and the
            # checks of today's services pass over them without a division event in the log.
            register=MappingRegister(
                DivisionEntry(d.code, d.name, d.level, d.parent, listed.effective_from)
                for d in listed.divisions
            ),
        )

    def close(self) -> None:
        self.ledger.close()


def old_version_ledger(runtime: Runtime) -> OldVersion:
    return OldVersion(runtime)


def sign_v1(url: str, key: Ed25519PrivateKey, pool: Any) -> None:
    """A checkpoint as the previous version signed it: head, link, range, Merkle root."""
    [(position, link)] = sql(
        url, "SELECT position, hash FROM audit.chain ORDER BY position DESC LIMIT 1"
    )
    unsigned = Checkpoint(
        0, position, 1, bytes(link), b"", _now(), raw_public_key(key.public_key()), b""
    )
    leaves = [leaf for _, leaf in range_leaves(pool, unsigned)]  # over the events' bytes
    unsigned = dataclasses.replace(unsigned, merkle_root=merkle.root(leaves))
    signed = dataclasses.replace(unsigned, signature=key.sign(unsigned.message()))
    sql(
        url,
        "INSERT INTO audit.checkpoints (position, range_start, hash, merkle_root, signed_at,"
        " public_key, signature) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            signed.position,
            1,
            signed.hash,
            signed.merkle_root,
            signed.signed_at,
            signed.public_key,
            signed.signature,
        ),
    )


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass
class Upgraded:
    runtime: Runtime  # the new version, started on the old log
    legacy_head: int
    legacy_case: Any
    key: Ed25519PrivateKey


def upgrade(runtime: Runtime, before_upgrade: Any = None) -> Iterator[Upgraded]:
    url = runtime.database_url
    sql(url, "DROP TABLE audit.seal_boundary")
    sql(url, "DROP TABLE audit.checkpoints")
    sql(url, OLD_CHECKPOINTS_TABLE)
    old = old_version_ledger(runtime)
    try:
        write_history(old, 5)
        case = paid_case(old)
        if before_upgrade is not None:
            before_upgrade(url, case.id)
    finally:
        old.close()
    sql(url, "UPDATE audit.chain SET previous_position = NULL")  # the old trigger's rows
    key = Ed25519PrivateKey.generate()
    sign_v1(url, key, runtime.pool)
    legacy_head = runtime.head_position()

    init_schema(url, ALL_PROJECTIONS)  # the first start of the new version
    upgraded = Runtime.open(runtime.settings)
    try:
        yield Upgraded(upgraded, legacy_head, case, key)
    finally:
        upgraded.close()


@pytest.fixture()
def bare_runtime(settings: Settings, empty_database_url: str) -> Iterator[Runtime]:
    """A runtime over a log nothing has been written to: the schema only (as ``relief db init``
    makes it), no division register; the log an old version wrote into."""
    settings = settings.with_(database_url=empty_database_url)
    init_schema(empty_database_url, ALL_PROJECTIONS)
    runtime = Runtime.open(settings, init=False)
    yield runtime
    runtime.close()


@pytest.fixture()
def upgraded(bare_runtime: Runtime) -> Iterator[Upgraded]:
    yield from upgrade(bare_runtime)


def cipher_key(runtime: Runtime) -> bytes:
    return base64.b64decode(runtime.settings.cipher_key())


def verify(runtime: Runtime, **options: Any) -> Any:
    return verify_log(runtime.database_url, cipher_key=cipher_key(runtime), **options)


def test_a_seal_opens_only_at_its_place() -> None:
    import uuid

    seal = Seal(bytes(32))
    here, elsewhere = uuid.uuid4(), uuid.uuid4()
    sealed = seal.seal(b"payment", place(here, 3, "t"))
    assert seal.open(sealed, place(here, 3, "t"), 100) == ("bound", b"payment")
    for other in (place(here, 4, "t"), place(elsewhere, 3, "t"), place(here, 3, "u")):
        assert seal.open(sealed, other, 100)[0] == "forged"
    unbound = seal.seal(b"payment", None)
    assert seal.open(unbound, place(here, 3, "t"), 100)[0] == "unbound"
    legacy = Seal(bytes(32), legacy_until=100)
    assert legacy.open(unbound, place(here, 3, "t"), 100) == ("legacy", b"payment")
    assert legacy.open(unbound, place(here, 3, "t"), 101)[0] == "unbound"
    assert legacy.open(unbound, place(here, 3, "t"), None)[0] == "unbound"


def test_sql_and_python_agree_on_the_event_bytes(runtime: Runtime) -> None:
    """The trigger (SQL), the verifier's walk (SQL head and tail, the recording time as a binary
    COPY sends it) and the offline bundle checker (Python) make the same bytes."""
    from infra.audit_chain import event_bytes, event_bytes_sql, unix_micros
    from infra.audit_walk import HEAD, TAIL

    write_history(runtime, 3)
    whole = event_bytes_sql(
        "e.notification_id",
        "e.originator_id",
        "e.originator_version",
        "c.recorded_at",
        "e.topic",
        "e.state",
    )
    rows = sql(
        runtime.database_url,
        "SELECT e.notification_id, e.originator_id, e.originator_version, c.recorded_at,"
        f" e.topic, e.state, {whole}, {HEAD}, timestamptz_send(c.recorded_at), {TAIL}, c.hash"
        " FROM relief_events e JOIN audit.chain c ON c.position = e.notification_id"
        " ORDER BY e.notification_id",
    )
    assert rows
    previous = bytes(32)
    for position, oid, version, at, topic, state, data, head, stamp, tail, chained in rows:
        assert event_bytes(position, oid, version, at, topic, bytes(state)) == bytes(data)
        assert bytes(head) + unix_micros(bytes(stamp)) + bytes(tail) == bytes(data)
        previous = hashlib.sha256(previous + bytes(data)).digest()
        assert previous == bytes(chained)  # the trigger's link


def test_saves_bulk_writes_loads_and_projections_all_seal_to_the_place(runtime: Runtime) -> None:
    case = application(runtime)
    bulk = runtime.bulk(SetClock(runtime.services.clock.now()))
    write_history(bulk, 4, seed=2)  # the services over the bulk store
    bulk.store.flush()
    bulk.close()
    seal = seal_of(runtime.ledger)
    for position, oid, version, topic, state in sql(
        runtime.database_url,
        "SELECT notification_id, originator_id, originator_version, topic, state"
        " FROM relief_events",
    ):
        assert seal.open(bytes(state), place(oid, version, topic), position)[0] == "bound"
        assert seal.open(bytes(state), place(oid, version + 1, topic), position)[0] == "forged"
    assert runtime.ledger.get(ReliefCase, case.id).id == case.id
    rebuild(runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, CaseloadProjection)
    assert caseload_rows(runtime.database_url)
    assert verify(runtime).intact


def test_a_log_written_before_binding_loads_and_verifies_after_the_upgrade(
    upgraded: Upgraded,
) -> None:
    runtime = upgraded.runtime
    with psycopg.connect(runtime.database_url) as conn:
        assert read_boundary(conn) == upgraded.legacy_head
    case = runtime.ledger.get(ReliefCase, upgraded.legacy_case.id)  # old events load
    assert case.summary() == upgraded.legacy_case.summary()
    runtime.services.cases.close_case(
        CloseCase(case_id=case.id, reason_code="voluntary", provenance=approver())
    )  # new one
    write_history(runtime, 3, seed=11)
    rebuild(runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, CaseloadProjection)
    assert caseload_rows(runtime.database_url)  # projections read both seals

    signing = sign_checkpoint(runtime.pool, upgraded.key, seal_of(runtime.ledger))
    assert signing.checkpoint is not None and signing.refused is None
    assert (
        signing.checkpoint.sequence == 2 and signing.checkpoint.legacy_until == upgraded.legacy_head
    )
    with psycopg.connect(runtime.database_url) as conn:
        v1, v2 = all_checkpoints(conn)
    assert not v1.chained and v2.previous == v1.digest()
    report = verify(runtime, trusted_key=raw_public_key(upgraded.key.public_key()))
    assert report.intact, report.first_break
    assert report.legacy_until == upgraded.legacy_head
    assert report.legacy_events == upgraded.legacy_head
    assert report.signed_up_to == runtime.head_position()
    # A bundle across both: old events under the old checkpoint, the closure under the new one.
    bundle = build_bundle(runtime.pool, case.id, upgraded.key, seal_of(runtime.ledger))
    checked = verify_bundle(bundle, raw_public_key(upgraded.key.public_key()))
    assert checked.ok, checked.problems
    assert checked.versions == case.version + 1 and checked.notes  # "predate place binding"


def test_an_old_event_copied_after_the_boundary_is_refused(upgraded: Upgraded) -> None:
    runtime = upgraded.runtime
    case = upgraded.legacy_case
    [(state, version)] = sql(
        runtime.database_url,
        "SELECT state, originator_version FROM relief_events WHERE originator_id = %s"
        " AND topic LIKE '%%PaymentRecorded'",
        (case.id,),
    )
    sql(
        runtime.database_url,
        "INSERT INTO relief_events (originator_id, originator_version, topic, state)"
        " VALUES (%s, %s, 'domain.case:ReliefCase.PaymentRecorded', %s)",
        (case.id, version + 1, state),
    )
    copied = runtime.head_position()
    report = verify(runtime)
    assert report.first_break is not None
    assert (report.first_break.kind, report.first_break.position) == ("unbound", copied)
    with pytest.raises(MapperDeserialisationError, match="without its place"):
        runtime.ledger.repository.get(case.id)
    signing = sign_checkpoint(runtime.pool, upgraded.key, seal_of(runtime.ledger))
    assert signing.refused is not None and signing.refused.kind == "unbound"


def test_moving_the_signed_boundary_is_caught(upgraded: Upgraded) -> None:
    runtime = upgraded.runtime
    write_history(runtime, 2, seed=3)
    assert sign_checkpoint(runtime.pool, upgraded.key, seal_of(runtime.ledger)).checkpoint
    sql(
        runtime.database_url,
        "UPDATE audit.seal_boundary SET position = %s",
        (runtime.head_position(),),
    )
    report = verify(runtime)
    assert report.first_break is not None
    assert report.first_break.kind == "boundary-moved"
    assert report.first_break.position == upgraded.legacy_head + 1
    refused = sign_checkpoint(runtime.pool, upgraded.key, seal_of(runtime.ledger)).refused
    assert refused is not None and refused.kind == "boundary-moved"


def test_an_old_event_copied_before_the_upgrade_is_found_twice(bare_runtime: Runtime) -> None:
    """The attack the old version could not see: its sealed bytes appear twice."""
    copied: dict[str, int] = {}

    def copy_payment(url: str, case_id: Any) -> None:
        [(state, version)] = sql(
            url,
            "SELECT state, originator_version FROM relief_events WHERE originator_id = %s"
            " AND topic LIKE '%%PaymentRecorded'",
            (case_id,),
        )
        [(position,)] = sql(
            url,
            "INSERT INTO relief_events (originator_id, originator_version, topic, state)"
            " VALUES (%s, %s, 'domain.case:ReliefCase.PaymentRecorded', %s)"
            " RETURNING notification_id",
            (case_id, version + 1, state),
        )
        copied["at"] = position

    for upgraded in upgrade(bare_runtime, copy_payment):
        report = verify(upgraded.runtime)
        assert report.first_break is not None
        assert (report.first_break.kind, report.first_break.position) == ("duplicate", copied["at"])


def test_a_log_restored_after_an_empty_start_is_adopted_at_the_next_start(
    bare_runtime: Runtime,
) -> None:
    runtime = bare_runtime
    url = runtime.database_url
    assert sql(url, "SELECT count(*) FROM audit.seal_boundary") == [(0,)]  # nothing to exempt
    old = old_version_ledger(runtime)  # the rows of a log written before binding, restored
    try:
        write_history(old, 3)
    finally:
        old.close()
    init_schema(url, ALL_PROJECTIONS)
    head = runtime.head_position()
    assert sql(url, "SELECT position FROM audit.seal_boundary") == [(head,)]
    adopted = Runtime.open(runtime.settings)
    try:
        report = verify(adopted)
        assert report.intact and report.legacy_events == head
        # its first start loaded the register above the boundary, place-bound
        assert adopted.head_position() > head
        [(case_id,)] = sql(
            url,
            "SELECT originator_id FROM relief_events WHERE topic LIKE"
            " '%%ApplicationReceived' LIMIT 1",
        )
        assert adopted.ledger.get(ReliefCase, case_id).id == case_id
    finally:
        adopted.close()


def test_a_log_begun_here_and_signed_keeps_no_boundary(runtime: Runtime) -> None:
    """The first chained checkpoint signs the boundary as it is (0: this version began the log
    with the division register, recording 0 before its first event): a later start must not
    record another, or every verify after it would say the boundary moved."""
    assert sql(runtime.database_url, "SELECT position FROM audit.seal_boundary") == [(0,)]
    write_history(runtime, 2)
    key = Ed25519PrivateKey.generate()
    signed = sign_checkpoint(runtime.pool, key, seal_of(runtime.ledger)).checkpoint
    assert signed is not None and signed.legacy_until == 0
    init_schema(runtime.database_url, ALL_PROJECTIONS)
    assert sql(runtime.database_url, "SELECT position FROM audit.seal_boundary") == [(0,)]
    assert verify(runtime).intact
