"""Stored events sealed to their place: AES-GCM whose associated data is (aggregate id, version,
topic).

The library's AES-GCM cipher seals an event's state, but alone it does not say *where* the
sealed bytes belong: copied under another version of the same case they would open just as
well. Here the associated data of every seal is the event's place, so sealed bytes open only
where the application wrote them; a row copied, moved or re-labelled by SQL fails to open.

Events sealed before this binding existed (no associated data) are accepted in that format only
at or below the *legacy boundary*: the head of the log at the first start of this version that
found events in it (recorded once in ``audit.seal_boundary``, then signed into every checkpoint).
Above it, only place-bound seals open. See README "Audit" for why that boundary is sound.

Wired through the library's own hooks: ``CIPHER_TOPIC`` (``PlaceBoundCipher``),
``MAPPER_TOPIC`` (``PlaceBoundMapper``) and ``APPLICATION_RECORDER_TOPIC``
(``PositionedRecorder``, so aggregate loads know each event's position), all set by
``infra.database.store_env``; saves, bulk writes, loads, projections and the Kafka feed all go
through the application's mapper.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.cryptography import AESCipher
from eventsourcing.domain import HasOriginatorIDVersion
from eventsourcing.persistence import (
    Compressor,
    Mapper,
    MapperDeserialisationError,
    Notification,
    StoredEvent,
    Transcoder,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import Environment, resolve_topic
from psycopg.sql import SQL, Identifier

#: Application env key: the highest position whose events may carry a pre-binding seal.
LEGACY_SEALS_UNTIL = "LEGACY_SEALS_UNTIL"

BOUNDARY_DDL = (
    """CREATE TABLE IF NOT EXISTS audit.seal_boundary (
        only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        position bigint NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
    )""",
    # Recorded once: the head of the log at the first start of this version that finds events
    # in it, unless a chained checkpoint has signed the boundary already (as 0: none recorded).
    # A log begun by this version may get a boundary above its first place-bound events:
    # harmless, those positions are taken, and a gap below the head is guarded by the chain.
    "INSERT INTO audit.seal_boundary (position)"
    " SELECT max(notification_id) FROM public.relief_events"
    " HAVING max(notification_id) IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM audit.checkpoints WHERE previous IS NOT NULL)"
    " ON CONFLICT (only_row) DO NOTHING",
)

Outcome = Literal["bound", "legacy", "forged", "unbound"]
#: Outcomes of an event that may be read: sealed at its place, or before binding (at or below
#: the boundary). "forged": opens nowhere we accept; "unbound": a pre-binding seal above the
#: boundary (a copied old event, or a writer of the old version still running).
ACCEPTED: frozenset[Outcome] = frozenset({"bound", "legacy"})


def place(originator_id: UUID | bytes, version: int, topic: str) -> bytes:
    """The associated data of a seal: aggregate id (16 bytes), version (8, big-endian), topic."""
    raw = originator_id if isinstance(originator_id, bytes) else originator_id.bytes
    return raw + version.to_bytes(8, "big", signed=True) + topic.encode("utf-8")


class SealRefused(ValueError):
    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


class Seal:
    """AES-GCM with the library's byte layout (nonce ‖ tag ‖ ciphertext) and the place bound in.

    Pure (no database, no library): the verifier's worker processes use it as it is.
    """

    def __init__(self, key: bytes, legacy_until: int = 0) -> None:
        self.key = key
        self.aead = AESGCM(key)
        self.legacy_until = legacy_until

    def with_boundary(self, legacy_until: int) -> Seal:
        """The same key with another legacy boundary (the one a checkpoint signed)."""
        return self if legacy_until == self.legacy_until else Seal(self.key, legacy_until)

    def seal(self, plaintext: bytes, at: bytes | None) -> bytes:
        nonce = os.urandom(12)
        sealed = self.aead.encrypt(nonce, plaintext, at)
        return nonce + sealed[-16:] + sealed[:-16]

    def _open(self, sealed: bytes, at: bytes | None) -> bytes:
        if len(sealed) < 28:
            raise InvalidTag
        return self.aead.decrypt(sealed[:12], sealed[28:] + sealed[12:28], at)

    def open_bound(self, sealed: bytes, at: bytes) -> bytes:
        """Bytes sealed with ``seal(plaintext, at)``, opened at ``at`` only (InvalidTag else):
        for sealed things that are not events (kept idempotent answers)."""
        return self._open(sealed, at)

    def open(self, sealed: bytes, at: bytes, position: int | None) -> tuple[Outcome, bytes]:
        """How the sealed bytes of the event at ``position`` (None: unknown) open at ``at``,
        and the plaintext when they do."""
        legacy_allowed = position is not None and position <= self.legacy_until
        if legacy_allowed:  # below the boundary, pre-binding seals are what to expect: try first
            try:
                return "legacy", self._open(sealed, None)
            except InvalidTag:
                pass
        try:
            return "bound", self._open(sealed, at)
        except InvalidTag:
            pass
        if not legacy_allowed:
            try:
                self._open(sealed, None)
                return "unbound", b""
            except InvalidTag:
                pass
        return "forged", b""

    def plaintext(self, sealed: bytes, at: bytes, position: int | None) -> bytes:
        outcome, opened = self.open(sealed, at, position)
        if outcome not in ACCEPTED:
            raise SealRefused(outcome, describe(outcome, position))
        return opened


def describe(outcome: Outcome, position: int | None) -> str:
    where = f"position {position}" if position is not None else "this event"
    if outcome == "unbound":
        return (
            f"{where} is sealed without its place although it lies after the legacy boundary: "
            "a copy of an event written before place binding, or a writer of an older version"
        )
    return (
        f"the sealed state at {where} does not open at its place: not written there by the ledger"
    )


class PlaceBoundCipher(AESCipher):
    """The library's AES-GCM cipher (key from ``CIPHER_KEY``) that can also seal to a place.

    ``encrypt``/``decrypt`` stay the library's (used for things that are not events, e.g. kept
    idempotent answers); events go through ``seal``, with the place, via ``PlaceBoundMapper``.
    """

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.seal = Seal(self.key, int(environment.get(LEGACY_SEALS_UNTIL) or 0))


class PlaceBoundMapper(Mapper[UUID]):
    """The library's mapper with the seal bound to (aggregate id, version, topic).

    Transcoding, compression and upcasting stay the library's (an inner mapper without cipher);
    only sealing and opening change. Opening needs the event's position for pre-binding seals:
    notifications carry it, and ``PositionedRecorder`` gives it to aggregate loads.
    """

    def __init__(
        self,
        transcoder: Transcoder,
        compressor: Compressor | None = None,
        cipher: Any = None,
    ) -> None:
        if cipher is not None and not isinstance(cipher, PlaceBoundCipher):
            raise TypeError(f"{type(cipher).__name__} cannot seal to a place; use PlaceBoundCipher")
        super().__init__(transcoder, compressor, cipher)
        self.inner: Mapper[UUID] = Mapper(transcoder, compressor)
        self.seal: Seal | None = cipher.seal if cipher is not None else None

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        stored = self.inner.to_stored_event(domain_event)
        if self.seal is None:
            return stored
        oid, version, topic = stored.originator_id, stored.originator_version, stored.topic
        assert isinstance(oid, UUID)
        return StoredEvent(
            oid, version, topic, self.seal.seal(stored.state, place(oid, version, topic))
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        if self.seal is not None:
            oid, version, topic = (
                stored_event.originator_id,
                stored_event.originator_version,
                stored_event.topic,
            )
            assert isinstance(oid, UUID)
            position = stored_event.id if isinstance(stored_event, Notification) else None
            try:
                opened = self.seal.plaintext(
                    stored_event.state, place(oid, version, topic), position
                )
            except SealRefused as refused:
                raise MapperDeserialisationError(
                    f"{oid} v{version} ({topic}): {refused}"
                ) from refused
            stored_event = StoredEvent(oid, version, topic, opened)
        return self.inner.to_domain_event(stored_event)

    def event_at(
        self,
        position: int,
        originator_id: UUID,
        version: int,
        topic: str,
        state: bytes,
        fields: frozenset[str] | None = None,
    ) -> Any:
        """``to_domain_event`` of the event at ``position`` in the log, without the
        notification and stored events made on the way (a projection decodes every event of
        its topics: they were a tenth of decoding one). ``fields``: only these fields of the
        event are read (``FastJSONTranscoder.decode_fields``), the others left undecoded;
        None: all. Whatever this path does not read as the library would (an error, an
        upcast, another transcoder) is read the library's way, which gives its answer or its
        error."""
        try:
            cls, id_type, class_version = _event_class(topic)
            plain = state
            if self.seal is not None:
                plain = self.seal.plaintext(plain, place(originator_id, version, topic), position)
            if self.compressor is not None:
                plain = self.compressor.decompress(plain)
            if fields is None:
                event_state = self.transcoder.decode(plain)
            else:
                event_state = self.transcoder.decode_fields(plain, fields)  # type: ignore[attr-defined]
            if type(originator_id) is not id_type:
                raise _ReadAsLibrary  # an id to convert: the library's way
            from_version = event_state.pop("class_version", 1)
            if from_version < class_version:
                if fields is not None:
                    raise _ReadAsLibrary  # an upcaster reads the whole state: read it whole
                while from_version < class_version:  # as the library upcasts
                    getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
                    from_version += 1
        except Exception:
            return self.to_domain_event(
                Notification(
                    id=position,
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    state=state,
                )
            )
        event_state["originator_id"] = originator_id
        event_state["originator_version"] = version
        event: Any = object.__new__(cls)
        object.__setattr__(event, "__dict__", event_state)
        return event


class _ReadAsLibrary(Exception):
    """An event ``PlaceBoundMapper.event_at`` leaves to the library's way of reading."""


@functools.cache
def _event_class(topic: str) -> tuple[type, type, int]:
    """The class of a topic's events, the type of their originator ids and the class's
    version, for ``PlaceBoundMapper.event_at``: classes whose id type is not declared on the
    class are read the library's way (``_ReadAsLibrary``)."""
    cls = resolve_topic(topic)
    if not issubclass(cls, HasOriginatorIDVersion):
        raise _ReadAsLibrary
    return cls, cls.originator_id_type, getattr(cls, "class_version", 1)


class PositionedRecorder(PostgresApplicationRecorder):
    """The library's recorder whose aggregate reads keep each event's position (the library
    selects it and drops it), so the mapper can tell where a pre-binding seal is allowed; and
    whose inserts pass the stored events as four binary arrays, where the library passes one
    array of a composite type that psycopg can only write as text (each sealed state escaped
    to hex, then quoted twice, in Python: an eighth of a command's CPU)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Composed once, as the library composes its own statements (not on every command).
        self.insert_arrays_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        self._lock_table(curs)  # what the library's application recorder does first
        self._notify_channel(curs)
        curs.execute(self.insert_arrays_statement, insert_arrays(stored_events))

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        statement = self.select_events_statement
        params: list[Any] = [originator_id]
        if gt is not None:
            params.append(gt)
            statement += SQL(" AND originator_version > %s")
        if lte is not None:
            params.append(lte)
            statement += SQL(" AND originator_version <= %s")
        statement += SQL(
            " ORDER BY originator_version DESC" if desc else " ORDER BY originator_version ASC"
        )
        if limit is not None:
            params.append(limit)
            statement += SQL(" LIMIT %s")
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params, prepare=True)
            return [
                Notification(
                    id=row["notification_id"],
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]


def insert_arrays(stored_events: Sequence[StoredEvent]) -> tuple[list[Any], ...]:
    """The parameters of ``insert_arrays_statement`` for these stored events."""
    return (
        [_uuid(e.originator_id) for e in stored_events],
        [e.originator_version for e in stored_events],
        [e.topic for e in stored_events],
        [bytes(e.state) for e in stored_events],
    )


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def seal_of(application: Any) -> Seal:
    """The seal of an application built by ``store_env`` with a cipher key."""
    cipher = getattr(application.mapper, "cipher", None)
    if not isinstance(cipher, PlaceBoundCipher):
        raise RuntimeError("this application does not seal its events to their place")
    return cipher.seal


def read_boundary(conn: psycopg.Connection[Any]) -> int:
    """The legacy boundary recorded in the database (0 when none: nothing pre-binding)."""
    row = conn.execute("SELECT position FROM audit.seal_boundary").fetchone()
    return int(row[0]) if row else 0
