"""The Kafka relay: follows the global log in PostgreSQL and publishes every committed event.

PostgreSQL is the source of truth; Kafka is a copy for consumers and scale-out.

- At-least-once: a batch is published and acknowledged (acks=all) before its position is stored.
- Order: events are read in global-position order. The store inserts under a table lock, so
  positions commit in order and the relay never passes over a position committed later.
- Broker down: commands are unaffected (they only touch PostgreSQL); the relay retries with
  back-off and resumes from its stored position. Database down or its session ended: the loop
  stops and its supervisor (``infra.faults.supervise``) starts it again after a pause.
- Broker lost its data (the embedded broker keeps memory only, or a topic was recreated): the
  relay remembers the next offset of every partition it wrote. A broker whose end offsets are
  below those, a missing topic, a topic with other partitions than the relay's (another client
  had the broker create it after the loss), or an acknowledgement with a lower offset than one
  already seen means the copy is gone, so the relay starts a new epoch and republishes from
  position 0, into a topic it recreated with its partitions.
- One active relay: an advisory lock elects it; others wait.
- Checkpoints: each signed checkpoint is copied to ``<topic>.checkpoints`` once the events it
  covers are published, and again, from the first, in every new epoch (a broker that lost the
  events lost the checkpoints too).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from eventsourcing.persistence import ApplicationRecorder
from kafka import KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from psycopg_pool import ConnectionPool

from infra import checkpoints, cloudevents, kafka_io
from infra.schema import CONTROL_SCHEMA

log = logging.getLogger(__name__)

RELAY_LOCK_KEY = 0x72656C6179  # "relay"


@dataclass
class RelayState:
    position: int = 0
    epoch: int = 1
    partition_offsets: dict[int, int] = field(default_factory=dict)
    checkpoint_sequence: int = 0  # the last checkpoint published
    checkpoint_offset: int = 0  # the next offset of the checkpoints topic (0: none written)


class BrokerLostData(Exception):
    pass


class KafkaRelay:
    def __init__(
        self,
        pool: ConnectionPool,
        recorder: ApplicationRecorder,
        *,
        bootstrap: str,
        topic: str,
        partitions: int,
        source: str,
        batch_size: int = 500,
        name: str = "kafka",
        check_interval_s: float = 1.0,
    ) -> None:
        self.pool = pool
        self.recorder = recorder
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.source = source
        self.batch_size = batch_size
        self.name = name
        self.check_interval_s = check_interval_s
        self._producer: KafkaProducer | None = None
        self._probe: Any = None  # a group-less consumer for metadata and offsets
        self._last_check = 0.0
        self.published = 0  # events published by this process (including republished ones)
        self.published_checkpoints = 0

    # State in PostgreSQL --------------------------------------------------------------------

    def load_state(self) -> RelayState:
        with self.pool.connection() as conn:
            conn.execute(
                f"INSERT INTO {CONTROL_SCHEMA}.relay_state (name) VALUES (%s)"
                " ON CONFLICT (name) DO NOTHING",
                (self.name,),
            )
            row = conn.execute(
                f"SELECT position, epoch, partition_offsets, checkpoint_sequence,"
                f" checkpoint_offset FROM {CONTROL_SCHEMA}.relay_state WHERE name = %s",
                (self.name,),
            ).fetchone()
        assert row is not None
        offsets = {int(k): int(v) for k, v in (row[2] or {}).items()}
        return RelayState(row[0], row[1], offsets, row[3], row[4])

    def _save_state(self, state: RelayState) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                f"UPDATE {CONTROL_SCHEMA}.relay_state SET position = %s, epoch = %s,"
                " partition_offsets = %s, checkpoint_sequence = %s, checkpoint_offset = %s,"
                " updated_at = now() WHERE name = %s",
                (
                    state.position,
                    state.epoch,
                    json.dumps(state.partition_offsets),
                    state.checkpoint_sequence,
                    state.checkpoint_offset,
                    self.name,
                ),
            )

    # Kafka ----------------------------------------------------------------------------------

    @property
    def checkpoint_topic(self) -> str:
        return f"{self.topic}.checkpoints"

    def _producer_or_connect(self) -> KafkaProducer:
        if self._producer is None:
            kafka_io.ensure_topic(self.bootstrap, self.topic, self.partitions)
            kafka_io.ensure_topic(self.bootstrap, self.checkpoint_topic, 1)
            self._producer = kafka_io.producer(self.bootstrap)
            self._probe = kafka_io.consumer(self.bootstrap, group_id=None)
            self._last_check = 0.0
        return self._producer

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        probe, self._probe = self._probe, None
        for close in (
            (lambda: producer.close(timeout=1)) if producer is not None else None,
            probe.close if probe is not None else None,
        ):
            if close is None:
                continue
            try:
                close()
            except Exception:  # closing a client of a dead broker may fail; it is gone anyway
                log.debug("error closing kafka client", exc_info=True)

    def _check_broker_kept_data(self, state: RelayState) -> None:
        """Raise BrokerLostData when the topic or a partition we wrote to is gone or empty.

        Only signs that are sound on both Kafka and Tansu are used: Tansu reports a partition's
        end offset as the last batch's base offset + 1, so "end below what we wrote" would
        misfire there; "empty although we wrote to it" does not.
        """
        self._last_check = time.monotonic()
        if not state.partition_offsets:
            return
        assert self._probe is not None
        topics = self._probe.topics()
        if self.topic not in topics:
            raise BrokerLostData("the topic is gone")
        partitions = self._probe.partitions_for_topic(self.topic) or set()
        if len(partitions) != self.partitions:
            # Not the topic the relay created: another client's metadata request had the
            # broker create it (with the broker's default partitions) after it lost ours.
            raise BrokerLostData(
                f"the topic has {len(partitions)} partitions, not {self.partitions}"
            )
        ends = self._probe.end_offsets([TopicPartition(self.topic, p) for p in partitions])
        for partition, next_offset in state.partition_offsets.items():
            end = ends.get(TopicPartition(self.topic, partition))
            if next_offset > 0 and not end:
                raise BrokerLostData(f"partition {partition} is empty, relay wrote {next_offset}")
        if state.checkpoint_offset > 0:
            checkpoints = TopicPartition(self.checkpoint_topic, 0)
            if self.checkpoint_topic not in topics or not self._probe.end_offsets(
                [checkpoints]
            ).get(checkpoints):
                raise BrokerLostData("the checkpoints topic is gone or empty")

    def _start_new_epoch(self, state: RelayState, why: str) -> RelayState:
        """Purge what the broker holds of the topic and republish the whole log."""
        log.warning("broker lost relayed events (%s); republishing from position 0", why)
        self._drop_producer()
        kafka_io.recreate_topic(self.bootstrap, self.topic, self.partitions)
        kafka_io.recreate_topic(self.bootstrap, self.checkpoint_topic, 1)
        new_state = RelayState(position=0, epoch=state.epoch + 1, partition_offsets={})
        self._save_state(new_state)
        return new_state

    # The loop -------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Publish one batch; return how many events were published (0 when caught up)."""
        state = self.load_state()
        producer = self._producer_or_connect()
        if time.monotonic() - self._last_check >= self.check_interval_s:
            try:
                self._check_broker_kept_data(state)
            except BrokerLostData as lost:
                state = self._start_new_epoch(state, str(lost))
                producer = self._producer_or_connect()
        notifications = self.recorder.select_notifications(
            start=state.position, limit=self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            self._publish_checkpoints(producer, state)
            return 0
        futures = []
        for notification in notifications:
            relayed = cloudevents.RelayedEvent(
                position=notification.id,
                originator_id=notification.originator_id,  # type: ignore[arg-type]
                originator_version=notification.originator_version,
                topic=notification.topic,
                state=notification.state,
                epoch=state.epoch,
            )
            futures.append(
                producer.send(
                    self.topic,
                    key=str(notification.originator_id).encode(),
                    value=cloudevents.encode(relayed, source=self.source),
                    headers=[("content-type", cloudevents.CONTENT_TYPE.encode())],
                )
            )
        producer.flush(timeout=10)
        offsets = dict(state.partition_offsets)
        for future in futures:
            metadata = future.get(timeout=10)
            if metadata.offset < offsets.get(metadata.partition, 0):
                # The broker handed out an offset we already saw acknowledged: it restarted empty.
                self._start_new_epoch(
                    state, f"partition {metadata.partition} restarted at offset {metadata.offset}"
                )
                return 0
            offsets[metadata.partition] = max(
                offsets.get(metadata.partition, 0), metadata.offset + 1
            )
        state.position = notifications[-1].id
        state.partition_offsets = offsets
        self._save_state(state)
        self.published += len(notifications)
        self._publish_checkpoints(producer, state)
        return len(notifications)

    def _publish_checkpoints(self, producer: KafkaProducer, state: RelayState) -> None:
        """Copy the checkpoints whose events are published, in order, then note how far."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {checkpoints.COLUMNS} FROM audit.checkpoints"
                " WHERE sequence > %s AND position <= %s ORDER BY sequence LIMIT %s",
                (state.checkpoint_sequence, state.position, self.batch_size),
            ).fetchall()
        if not rows:
            return
        signed = [checkpoints.Checkpoint.from_row(row) for row in rows]
        futures = [
            producer.send(
                self.checkpoint_topic,
                key=b"checkpoint",
                value=checkpoints.to_cloudevent(checkpoint),
                headers=[("content-type", cloudevents.CONTENT_TYPE.encode())],
            )
            for checkpoint in signed
        ]
        producer.flush(timeout=10)
        for future in futures:
            metadata = future.get(timeout=10)
            if metadata.offset < state.checkpoint_offset:
                self._start_new_epoch(
                    state, f"the checkpoints topic restarted at {metadata.offset}"
                )
                return
            state.checkpoint_offset = metadata.offset + 1
        state.checkpoint_sequence = signed[-1].sequence
        self.published_checkpoints += len(signed)
        self._save_state(state)

    def run_forever(self, stop: threading.Event, *, idle_wait_s: float = 0.2) -> None:
        """Run as the single active relay until ``stop`` is set.

        The advisory lock lives on a dedicated autocommit session (never idle in a
        transaction, so no timeout ends it quietly); the loop checks that session before every
        batch, and stops if it is gone, since the lock went with it.
        """
        from infra.pg_listen import LogListener

        with psycopg.connect(str(self.pool.conninfo), autocommit=True) as lock_conn:
            while not stop.is_set():
                row = lock_conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK_KEY,)
                ).fetchone()
                if row and row[0]:
                    break
                stop.wait(1.0)
            else:
                return
            try:
                listener = LogListener(str(self.pool.conninfo), self._channel())
                self._loop(stop, listener, idle_wait_s, lock_conn)
            finally:
                # A lost session took the lock with it; a failed unlock must not hide why.
                with contextlib.suppress(psycopg.Error):
                    lock_conn.execute("SELECT pg_advisory_unlock(%s)", (RELAY_LOCK_KEY,))
                self._drop_producer()

    def _channel(self) -> str:
        return str(getattr(self.recorder, "channel_name", ""))

    def _loop(
        self,
        stop: threading.Event,
        listener: Any,
        idle_wait_s: float,
        lock_conn: psycopg.Connection[Any],
    ) -> None:
        backoff = 0.2
        with listener:
            while not stop.is_set():
                lock_conn.execute("SELECT 1")  # raises if the session holding the lock is gone
                try:
                    published = self.run_once()
                    backoff = 0.2
                except (KafkaError, OSError) as error:
                    log.warning("relay: broker unavailable (%s); retrying in %.1fs", error, backoff)
                    self._drop_producer()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if published == 0:
                    listener.wait(idle_wait_s)
