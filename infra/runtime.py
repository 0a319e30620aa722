"""The composition root: settings in, a wired store, pool, broker and background workers out."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg_pool import ConnectionPool

from infra.database import open_pool, store_env
from infra.embedded_kafka import EmbeddedKafka
from infra.embedded_postgres import start_embedded_postgres
from infra.ledger import ReliefLedger
from infra.projection_runner import PostgresFeedRunner, ProjectionHalted
from infra.relay import KafkaRelay
from infra.schema import init_schema
from infra.sealing import read_boundary, seal_of
from infra.settings import Settings
from projections.registry import ALL_PROJECTIONS

log = logging.getLogger(__name__)


def resolve_database_url(settings: Settings) -> str:
    """The configured database, or the embedded one (started or joined)."""
    if settings.database_url:
        return settings.database_url
    return start_embedded_postgres(settings.data_dir)


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    ledger: ReliefLedger
    pool: ConnectionPool
    kafka_bootstrap: str | None = None
    embedded_kafka: EmbeddedKafka | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings, *, kafka: bool = False, init: bool = True) -> Runtime:
        database_url = resolve_database_url(settings)
        if init:
            init_schema(database_url, ALL_PROJECTIONS)
        with psycopg.connect(database_url) as conn:
            legacy_seals_until = read_boundary(conn)
        ledger = ReliefLedger(
            env=store_env(
                database_url,
                identity_key=settings.identity_key(),
                cipher_key=settings.cipher_key(),
                legacy_seals_until=legacy_seals_until,
                aggregate_cache=settings.aggregate_cache,
                pool_size=settings.db_pool_size,
            )
        )
        pool = open_pool(database_url, size=settings.db_pool_size)
        runtime = cls(settings=settings, database_url=database_url, ledger=ledger, pool=pool)
        if kafka:
            runtime.connect_kafka()
        return runtime

    def connect_kafka(self) -> str:
        if self.kafka_bootstrap is None:
            if self.settings.kafka_bootstrap:
                self.kafka_bootstrap = self.settings.kafka_bootstrap
            else:
                self.embedded_kafka = EmbeddedKafka(self.settings.data_dir / "run").start()
                self.kafka_bootstrap = self.embedded_kafka.bootstrap
        return self.kafka_bootstrap

    def relay(self) -> KafkaRelay:
        return KafkaRelay(
            self.pool,
            self.ledger.recorder,
            bootstrap=self.connect_kafka(),
            topic=self.settings.kafka_topic,
            partitions=self.settings.kafka_partitions,
            source=self.settings.source,
        )

    def head_position(self) -> int:
        return self.ledger.recorder.max_notification_id() or 0

    def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                closer()
        self.ledger.close()
        self.pool.close()
        if self.embedded_kafka is not None:
            self.embedded_kafka.stop()


class Workers:
    """The relay and the projection runners as threads of one process, stopped together.

    A worker that fails for a passing reason (database restart, broker down) is restarted
    after a pause; a projection halted on a bad event stays stopped, visible at /projections.
    """

    def __init__(self, runtime: Runtime, *, relay: bool = True) -> None:
        self.runtime = runtime
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.halted: dict[str, ProjectionHalted] = {}
        targets: list[tuple[str, Callable[[], None]]] = []
        if relay:
            relay_worker = runtime.relay()
            targets.append(("relay", lambda: relay_worker.run_forever(self.stop_event)))
        from infra.checkpoints import Checkpointer, load_or_create_key

        checkpointer = Checkpointer(
            runtime.pool,
            load_or_create_key(runtime.settings.audit_key_file),
            seal_of(runtime.ledger),
            every_events=runtime.settings.checkpoint_events,
            every_seconds=runtime.settings.checkpoint_seconds,
            heartbeat_seconds=runtime.settings.checkpoint_heartbeat,
        )
        targets.append(("checkpointer", lambda: checkpointer.run_forever(self.stop_event)))
        for projection in ALL_PROJECTIONS:
            runner = PostgresFeedRunner(
                runtime.pool,
                runtime.ledger.recorder,
                runtime.ledger.mapper,
                projection,
                batch_size=runtime.settings.projection_batch,
            )
            targets.append(
                (f"projection:{projection.name}", lambda r=runner: r.run_forever(self.stop_event))  # type: ignore[misc]
            )
        for name, target in targets:
            self.threads.append(
                threading.Thread(
                    target=self._supervise, args=(name, target), name=name, daemon=True
                )
            )

    def _supervise(self, name: str, target: Callable[[], None]) -> None:
        while not self.stop_event.is_set():
            try:
                target()
            except ProjectionHalted as halted:
                self.halted[halted.projection] = halted
                return
            except Exception:
                log.exception("worker %s failed; restarting in 2s", name)
                self.stop_event.wait(2.0)

    def start(self) -> Workers:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
