"""Feeds a projection from the Kafka topic the relay writes (consumer group).

Exactly-once effect over an at-least-once topic:
- the partition offsets are stored in the read model's own schema, in the same transaction as
  the rows; on (re)assignment the consumer seeks to them, not to the group's Kafka offsets;
- each aggregate's last applied version is stored too, so a duplicate (relay retry) or a
  republished copy (broker that lost its data) is applied once, and a gap in an aggregate's
  versions is caught rather than applied out of order;
- the consumer re-reads the last record it applied on assignment and rewinds the partition to
  its start when that record is no longer there or has changed; and before every poll it
  compares the relay's epoch (in PostgreSQL, the source of truth) with the epoch it last read:
  a newer one means the relay recreated the topic and republished the log, so every partition
  is read again from its start, by a consumer that rejoins its group as a new member (the
  embedded broker answers a member that rejoined across the loss with a stale assignment).
  Deduplication makes re-reading safe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import Mapper
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from psycopg import sql
from psycopg_pool import ConnectionPool

from infra import cloudevents, kafka_io
from infra.faults import is_transient
from infra.projection_runner import (
    BatchApplier,
    ProjectionHalted,
    Target,
    advance_tracking,
    claim_tracking,
    collector_paused,
    decode_event,
    fields_by_topic,
    record_error,
)
from infra.schema import CONTROL_SCHEMA
from projections.base import Projection, RecordedEvent
from projections.sets import upsert

log = logging.getLogger(__name__)

OFFSET_COLUMNS = (
    ("topic", "text"),
    ("partition", "integer"),
    ("next_offset", "bigint"),
    ("epoch", "integer"),
    ("last_id", "text"),
)


class _Rewind(Exception):
    def __init__(self, partition: int, why: str) -> None:
        super().__init__(why)
        self.partition = partition


class KafkaFeedRunner:
    feed = "kafka"

    def __init__(
        self,
        pool: ConnectionPool,
        mapper: Mapper[Any],
        projection: type[Projection],
        *,
        bootstrap: str,
        topic: str,
        group_id: str | None = None,
        batch_size: int = 1000,
        catch_up_batch: int | None = None,
        schema: str | None = None,
        before_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.pool = pool
        self.mapper = mapper
        self.projection_class = projection
        self.applier = BatchApplier(projection())
        self.topics = frozenset(projection.topics())
        self._fields = fields_by_topic(projection)  # as the PostgreSQL feed
        self.target = Target(projection, schema)
        self.topic = topic
        self.batch_size = batch_size
        # As the PostgreSQL feed's runner: up to ``catch_up_batch`` records a poll while
        # behind (the last poll brought ``batch_size`` or more), ``batch_size`` once not.
        self.catch_up_batch = max(batch_size, catch_up_batch or batch_size)
        self._next_batch = batch_size
        self.before_commit = before_commit
        self.bootstrap = bootstrap
        self.group_id = group_id or f"relief-projection-{projection.name}-{schema or 'active'}"
        self._verify: dict[int, tuple[int, str]] = {}  # partition -> (offset, cloudevent id)
        self._relay_epoch: int | None = None  # the relay's epoch (0: none yet) at the last poll
        self.consumer: KafkaConsumer = self._new_consumer()

    def _new_consumer(self) -> KafkaConsumer:
        consumer = kafka_io.consumer(
            self.bootstrap, group_id=self.group_id, max_poll_records=self.catch_up_batch
        )
        runner = self

        class _OnAssign(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                pass

            def on_partitions_assigned(self, assigned: Any) -> None:
                runner._seek_to_stored(assigned)

        consumer.subscribe([self.topic], listener=_OnAssign())
        return consumer

    def _renew_consumer(self, why: str) -> None:
        """Leave the group and join it again as a new member.

        After the broker lost the topic, the group's members rejoin while the topic is missing
        or recreated; the embedded broker (Tansu) then answers a later SyncGroup of the same
        member with the assignment it stored for an earlier one (none, or partitions of a topic
        that no longer exists) instead of the leader's new one, and kafka-python, trusting it,
        never fetches again. A new member, joining once the relay has recreated the topic, gets
        the leader's assignment; its listener seeks to the stored offsets as at any join.
        """
        log.warning("kafka feed %s: rejoining its group as a new member: %s", self.name, why)
        self._verify.clear()
        self.consumer.close()
        self.consumer = self._new_consumer()

    @property
    def name(self) -> str:
        return self.projection_class.name

    def close(self) -> None:
        self.consumer.close()

    # Positions ------------------------------------------------------------------------------

    def _stored_offsets(self) -> dict[int, tuple[int, int, str | None]]:
        with self.pool.connection() as conn, conn.transaction():
            schema = self.target.schema(conn)
            rows = conn.execute(
                sql.SQL(
                    "SELECT partition, next_offset, epoch, last_id FROM {}._kafka_offsets"
                    " WHERE topic = %s"
                ).format(sql.Identifier(schema)),
                (self.topic,),
            ).fetchall()
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    def _seek_to_stored(self, assigned: Any) -> None:
        stored = self._stored_offsets()
        self._verify.clear()
        for tp in assigned:
            if tp.partition in stored and stored[tp.partition][0] > 0:
                next_offset, _epoch, last_id = stored[tp.partition]
                # Re-read the last applied record to prove the broker still holds our log.
                self.consumer.seek(tp, next_offset - 1)
                self._verify[tp.partition] = (next_offset - 1, last_id or "")
            else:
                self.consumer.seek_to_beginning(tp)

    def _rewind(self, partition: int, why: str) -> None:
        log.warning("kafka feed %s: partition %d rewound to start: %s", self.name, partition, why)
        self._verify.pop(partition, None)
        self.consumer.seek_to_beginning(TopicPartition(self.topic, partition))

    # The batch ------------------------------------------------------------------------------

    def _follow_relay_epoch(self) -> None:
        """Rewind partitions last read in an older relay epoch: the topic was rebuilt; and
        rejoin the group as a new member when the relay's epoch moved on since the last poll."""
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(f"SELECT max(epoch) FROM {CONTROL_SCHEMA}.relay_state").fetchone()
            relay_epoch = int(row[0]) if row and row[0] is not None else 0  # 0: no relay yet
            renew = self._relay_epoch is not None and relay_epoch > self._relay_epoch
            self._relay_epoch = relay_epoch
            if relay_epoch == 0:
                return
            # Only this consumer's partitions: another member of the group follows its own.
            assigned = [tp.partition for tp in self.consumer.assignment()]
            stale: list[int] = []
            if assigned:
                schema = self.target.schema(conn)
                stale = [
                    r[0]
                    for r in conn.execute(
                        sql.SQL(
                            "DELETE FROM {}._kafka_offsets WHERE topic = %s AND epoch < %s"
                            " AND partition = ANY(%s) RETURNING partition"
                        ).format(sql.Identifier(schema)),
                        (self.topic, relay_epoch, assigned),
                    ).fetchall()
                ]
        if renew:  # the new member seeks from the stored offsets, these ones deleted
            self._renew_consumer(f"the relay republished the log in epoch {relay_epoch}")
            return
        for partition in stale:
            self._rewind(partition, f"relay republished the log in epoch {relay_epoch}")

    def run_once(self, timeout_ms: int = 500) -> int:
        """Poll one batch and apply it in one transaction; return records consumed."""
        with collector_paused():  # as the PostgreSQL feed's batches (reading records included)
            return self._run_once(timeout_ms)

    def _run_once(self, timeout_ms: int) -> int:
        self._follow_relay_epoch()
        limit = self._next_batch
        polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=limit)
        records = [record for batch in polled.values() for record in batch]
        # Behind while a poll brings a live batch's worth or more: a poll returns what the
        # fetches have buffered, often less than asked for even far behind the head.
        behind = len(records) >= self.batch_size
        self._next_batch = self.catch_up_batch if behind else self.batch_size
        if not records:
            return 0
        rewound: set[int] = set()
        with self.pool.connection() as conn, conn.transaction():
            # As the PostgreSQL feed's batch: the preamble sent in one pipeline, and the commit
            # not waiting for its WAL flush (a server crash losing it loses the offsets and
            # the tracking with the rows, so the records are read and applied again).
            with conn.pipeline():
                schema = self.target.schema(conn)
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
                conn.execute("SET LOCAL synchronous_commit = off")
                position = claim_tracking(conn, self.feed)
                offsets = {
                    row[0]: (row[1], row[2])
                    for row in conn.execute(
                        "SELECT partition, next_offset, epoch FROM _kafka_offsets"
                        " WHERE topic = %s FOR UPDATE",
                        (self.topic,),
                    ).fetchall()
                }
            relayed = []
            for record in records:
                if record.partition in rewound:
                    continue
                event = cloudevents.decode(record.value, topics=self.topics)
                try:
                    self._check_continuity(record, event, offsets)
                except _Rewind as rewind:
                    rewound.add(rewind.partition)
                    self._rewind(rewind.partition, str(rewind))
                    continue
                relayed.append((record, event))
                offsets[record.partition] = (record.offset + 1, event.epoch)
                position = max(position, event.position)
            applied = self._apply(conn, relayed)
            last_of: dict[int, cloudevents.RelayedEvent] = {}
            for record, event in relayed:
                last_of[record.partition] = event
            with conn.cursor() as cursor:
                upsert(
                    cursor,
                    "_kafka_offsets",
                    OFFSET_COLUMNS,
                    [
                        (self.topic, partition, offsets[partition][0], offsets[partition][1], e.id)
                        for partition, e in sorted(last_of.items())
                    ],
                    key=("topic", "partition"),
                )
            if rewound:
                conn.execute(
                    "DELETE FROM _kafka_offsets WHERE topic = %s AND partition = ANY(%s)",
                    (self.topic, sorted(rewound)),
                )
            advance_tracking(conn, position, applied)
            if self.before_commit is not None:
                self.before_commit(position)
        log.debug("kafka feed %s: %d records, %d applied", self.name, len(records), len(applied))
        return len(records)

    def _check_continuity(
        self, record: Any, event: cloudevents.RelayedEvent, offsets: dict[int, tuple[int, int]]
    ) -> None:
        """Raise _Rewind when this record does not continue the log this generation tracked."""
        verify = self._verify.pop(record.partition, None)
        if verify is not None:
            expected_offset, expected_id = verify
            if record.offset != expected_offset or event.id != expected_id:
                raise _Rewind(record.partition, "the record last applied is gone or changed")
            return  # that record was applied already; deduplication skips it
        stored = offsets.get(record.partition)
        if stored is None or record.offset == 0:
            return  # first read of the partition, or the topic starts over
        next_offset, epoch = stored
        if record.offset != next_offset:
            raise _Rewind(record.partition, f"read offset {record.offset}, expected {next_offset}")
        if event.epoch != epoch:
            # The relay recreates the topic for a new epoch, so a new epoch begins at offset 0;
            # meeting one mid-partition means the read position jumped into another log.
            raise _Rewind(record.partition, f"relay epoch {event.epoch} after {epoch}")

    def _apply(
        self, conn: psycopg.Connection, relayed: list[tuple[Any, cloudevents.RelayedEvent]]
    ) -> list[RecordedEvent]:
        ids = list({event.originator_id for _, event in relayed})
        versions: dict[UUID, int] = dict(
            conn.execute(
                "SELECT originator_id, version FROM _applied_versions"
                " WHERE originator_id = ANY(%b::uuid[])",
                (ids,),
            ).fetchall()
        )
        fresh: list[RecordedEvent] = []
        changed: dict[UUID, int] = {}
        for _record, event in relayed:
            last = versions.get(event.originator_id, 0)
            if event.originator_version <= last:
                continue  # duplicate or republished copy
            if event.originator_version != last + 1:
                # Only a broker that lost data can cause this; the relay then republishes the
                # whole log in order, so the missing versions and this one will come again.
                log.warning(
                    "kafka feed %s: %s jumps from version %d to %d; skipped until republished",
                    self.name,
                    event.originator_id,
                    last,
                    event.originator_version,
                )
                continue
            versions[event.originator_id] = event.originator_version
            changed[event.originator_id] = event.originator_version
            if event.topic in self.topics:
                fresh.append(  # with its position: where its seal may be pre-binding
                    decode_event(
                        self.mapper,
                        self.name,
                        event.position,
                        event.originator_id,
                        event.originator_version,
                        event.topic,
                        event.state,
                        self._fields.get(event.topic),
                    )
                )
        self.applier.apply(conn, fresh)
        with conn.cursor() as cursor:
            upsert(
                cursor,
                "_applied_versions",
                (("originator_id", "uuid"), ("version", "bigint")),
                sorted(changed.items()),
                key=("originator_id",),
            )
        return fresh

    def run_forever(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self.run_once()
                except ProjectionHalted as halted:
                    if not is_transient(halted):  # it would recur on this event: halt here
                        log.error("%s", halted)
                        record_error(self.pool, halted, self.name)
                    raise  # transient: the supervisor runs the same batch again after a pause
        finally:
            self.close()
