"""The composition root: settings in; the store, pools, keys, services, runners and workers
out. Every process (API, relay, projection runners, CLI, seed and import, bench, tests) builds
what it needs here and nowhere else."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, StoredEvent
from eventsourcing.utils import Environment
from psycopg_pool import ConnectionPool

from domain.clock import Clock, SetClock
from domain.commands.policy import LoadStaffingPolicy
from domain.provenance import Actor, Provenance, Role
from infra.bulk import BulkLedger
from infra.checkpoints import Checkpointer, load_or_create_key
from infra.database import (
    FailFastApplicationRecorder,
    Sessions,
    discard_broken,
    open_pool,
    store_env,
)
from infra.divisions import RegisterIndex
from infra.divisions_file import DEFAULT_DIVISIONS_FILE, DivisionList, read_division_file
from infra.embedded_kafka import EmbeddedKafka
from infra.embedded_postgres import start_embedded_postgres
from infra.faults import supervise
from infra.kafka_feed import KafkaFeedRunner
from infra.ledger import ReliefLedger
from infra.policies import DEFAULT_POLICY_FILE, legacy_tables, read_policy_file
from infra.projection_runner import FeedMismatch, PostgresFeedRunner, ProjectionHalted
from infra.relay import KafkaRelay
from infra.schema import init_schema
from infra.sealing import read_boundary, seal_of
from infra.settings import Settings
from projections.base import Projection
from projections.divisions import DivisionsProjection
from projections.policies import PoliciesProjection
from projections.registry import ALL_PROJECTIONS
from services import Services
from services.divisions import LoadReport
from services.policy import BandTableLoad

#: Advisory lock key of the first start's register load ("divisn" in ASCII).
REGISTER_LOCK_KEY = 0x64697669736E
#: Advisory lock key of the first start's band-table load ("policy" in ASCII).
POLICY_LOCK_KEY = 0x706F6C696379

#: Topics of the reference data a first start records (the division register, the band
#: tables): a log holding only these is an empty ledger.
REFERENCE_TOPICS = ("domain.division:%", "domain.staffing:%")

log = logging.getLogger(__name__)


def resolve_database_url(settings: Settings) -> str:
    """The configured database, or the embedded one (started or joined)."""
    if settings.database_url:
        return settings.database_url
    return start_embedded_postgres(settings.data_dir)


def sessions_for(settings: Settings, role: str) -> Sessions:
    """The database sessions of one role; only the API's statements have a time limit (a
    worker's batch or a rebuild may take long and is retried, not abandoned)."""
    return Sessions(
        role,
        wait_s=settings.db_timeout,
        statement_timeout_s=settings.db_statement_timeout if role == "api" else 0,
    )


@dataclass
class Bulk:
    """The bulk path (infra/bulk.py): the application services over a store that writes
    large transactions. Close it when done; ``store.flush()`` writes what it still keeps."""

    store: BulkLedger
    services: Services
    clock: SetClock

    def close(self) -> None:
        self.store.close()


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    ledger: ReliefLedger
    pool: ConnectionPool
    services: Services
    register: RegisterIndex
    role: str = "api"
    #: Events up to this position may carry the seal of the version before place binding.
    legacy_seals_until: int = 0
    kafka_bootstrap: str | None = None
    embedded_kafka: EmbeddedKafka | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)
    #: The band tables' runner this process catches up after each load (one, with one pool,
    #: for the life of the process: a load over HTTP must not open a pool per request).
    _policies_runner: PostgresFeedRunner | None = None
    _policies_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        kafka: bool = False,
        init: bool = True,
        clock: Clock | None = None,
        role: str = "api",
    ) -> Runtime:
        """The store, services and a pool whose sessions are named ``relief-<role>``."""
        database_url = resolve_database_url(settings)
        if init:
            init_schema(database_url, ALL_PROJECTIONS)
        sessions = sessions_for(settings, role)
        with psycopg.connect(sessions.conninfo(database_url)) as conn:
            legacy_seals_until = read_boundary(conn)
        ledger = ReliefLedger(
            env=cls._store_env(settings, database_url, sessions, legacy_seals_until)
        )
        ledger.late_entry_days = settings.late_entry_days
        ledger.business_clock = clock or Clock()
        pool = open_pool(database_url, size=settings.db_pool_size, sessions=sessions)
        register = RegisterIndex(pool)
        runtime = cls(
            settings=settings,
            database_url=database_url,
            ledger=ledger,
            pool=pool,
            services=cls._services(settings, ledger, pool, ledger.business_clock, register),
            register=register,
            role=role,
            legacy_seals_until=legacy_seals_until,
        )
        if init:
            runtime.ensure_register()
            runtime.ensure_policies()
        if kafka:
            runtime.connect_kafka()
        return runtime

    @staticmethod
    def _store_env(
        settings: Settings, database_url: str, sessions: Sessions, legacy_seals_until: int
    ) -> dict[str, str]:
        return store_env(
            database_url,
            cipher_key=settings.cipher_key(),
            legacy_seals_until=legacy_seals_until,
            aggregate_cache=settings.aggregate_cache,
            snapshot_interval=settings.snapshot_interval,
            pool_size=settings.db_pool_size,
            sessions=sessions,
            group_commit=settings.group_commit,
        )

    @staticmethod
    def _services(
        settings: Settings,
        store: ReliefLedger,
        pool: ConnectionPool,
        clock: Clock,
        register: RegisterIndex,
    ) -> Services:
        return Services.over(
            store,
            clock=clock,
            identity_key=settings.identity_key(),
            register=register,
            late_entry_days=settings.late_entry_days,
        )

    # The division register -------------------------------------------------------------------

    def ensure_register(self) -> LoadReport | None:
        """On the first start of a log without divisions, load the division list
        (``RELIEF_DIVISIONS_FILE`` or the shipped Guangdong file), under an advisory lock so
        processes starting together load it once; None when the log has divisions already.

        A log this version begins (empty until now) records its legacy boundary as 0 before
        writing: the first start must not take these, our own place-bound events, for the
        head of a log written by the version before place binding (infra/sealing.py)."""
        sessions = sessions_for(self.settings, self.role)
        with psycopg.connect(sessions.conninfo(self.database_url), autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (REGISTER_LOCK_KEY,))
            try:
                if conn.execute(
                    "SELECT 1 FROM public.relief_events"
                    " WHERE topic LIKE 'domain.division:%%' LIMIT 1"
                ).fetchone():
                    return None
                conn.execute(
                    "INSERT INTO audit.seal_boundary (position) SELECT 0"
                    " WHERE NOT EXISTS (SELECT 1 FROM public.relief_events)"
                    " ON CONFLICT (only_row) DO NOTHING"
                )
                path = self.settings.divisions_file or DEFAULT_DIVISIONS_FILE
                log.info("loading the division register from %s (first start)", path)
                report = self.load_divisions(read_division_file(path), actor="relief-first-start")
                log.info("division register: %s divisions established", report.established)
                return report
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (REGISTER_LOCK_KEY,))

    def load_divisions(self, listed: DivisionList, *, actor: str) -> LoadReport:
        """Write what a division list changes in the register, then bring the register's read
        model up to it (so the next command sees it)."""
        self.catch_up_divisions()
        provenance = Provenance(
            Actor(actor, Role.SYSTEM, "44"), reason=f"division list: {listed.source}"[:2000]
        )
        report = self.services.divisions.load_division_list(
            listed.divisions, provenance, effective_from=listed.effective_from
        )
        self.catch_up_divisions()
        return report

    def events_beyond_register(self) -> bool:
        """Whether the log holds any event other than the reference data's (an empty ledger,
        for the scenario, is one that holds only its register and band tables)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM public.relief_events WHERE NOT topic LIKE ANY(%s))",
                (list(REFERENCE_TOPICS),),
            ).fetchone()
        return bool(row and row[0])

    def catch_up_divisions(self) -> int:
        """Apply the division events not yet in the register's read model, and read it again
        into this process's index."""
        covered = self.projection_runner(DivisionsProjection).catch_up()
        self.register.refresh()
        return covered

    # The band tables ---------------------------------------------------------------------------

    def ensure_policies(self) -> list[BandTableLoad]:
        """On the first start of a log without band tables, adopt the shipped Guangdong table,
        or the tables a database of the version before kept (infra/policies.py), as events by
        the ledger itself with their source stated, under an advisory lock so processes
        starting together adopt them once; nothing when the log has band tables already."""
        sessions = sessions_for(self.settings, self.role)
        with psycopg.connect(sessions.conninfo(self.database_url), autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (POLICY_LOCK_KEY,))
            try:
                if self.services.policy.band_tables() is not None:
                    return []
                documents = legacy_tables(conn)
                if not documents and DEFAULT_POLICY_FILE.exists():
                    documents = [read_policy_file(DEFAULT_POLICY_FILE)]
                provenance = Provenance(
                    Actor("relief-first-start", Role.SYSTEM, "44"),
                    reason="the band tables in force when the ledger began",
                )
                loads = [self.load_policy(document, provenance) for document in documents]
                log.info("band tables: %s adopted (first start)", len(loads))
                return loads
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (POLICY_LOCK_KEY,))

    def load_policy(self, document: dict[str, object], provenance: Provenance) -> BandTableLoad:
        """Adopt or correct a band table (or nothing, when it is that table already), then
        bring the tables' read model up to it, so the next answer uses it."""
        loaded = self.services.policy.load_staffing_policy(
            LoadStaffingPolicy(document=document, provenance=provenance)
        )
        self.catch_up_policies()
        return loaded

    def catch_up_policies(self) -> int:
        """Apply the band-table events not yet in their read model (a generation built from
        Kafka is left to its own runner)."""
        with self._policies_lock:
            if self._policies_runner is None:
                self._policies_runner = self.projection_runner(PoliciesProjection)
            try:
                return self._policies_runner.catch_up()
            except FeedMismatch:
                return 0

    def bulk(self, clock: SetClock, *, flush_events: int = 500) -> Bulk:
        """The application services over a bulk store of this database, on ``clock`` (the
        simulated or imported history's own)."""
        store = BulkLedger(
            env=self._store_env(
                self.settings,
                self.database_url,
                sessions_for(self.settings, self.role),
                self.legacy_seals_until,
            ),
            flush_events=flush_events,
        )
        return Bulk(
            store,
            self._services(self.settings, store, self.pool, clock, self.register),
            clock,
        )

    def worker_pool(self, role: str) -> ConnectionPool:
        """A small pool of a worker's own, its sessions named after the worker."""
        if role == self.role:
            return self.pool
        pool = open_pool(self.database_url, size=2, sessions=sessions_for(self.settings, role))
        self._closers.append(pool.close)
        return pool

    def worker_recorder(self, role: str) -> ApplicationRecorder:
        """A reader of the log on sessions of the worker's own (the mapper stays shared)."""
        if role == self.role:
            return self.ledger.recorder
        env = store_env(self.database_url, pool_size=1, sessions=sessions_for(self.settings, role))
        factory = InfrastructureFactory.construct(Environment(ReliefLedger.name, env))
        self._closers.append(factory.close)
        return factory.application_recorder()

    def discard_broken_connections(self) -> None:
        """After a connection error: drop the dead idle connections of this process's pools."""
        datastore = getattr(self.ledger.recorder, "datastore", None)
        discard_broken([self.pool, *([datastore.pool] if datastore is not None else [])])

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
            self.worker_pool("relay"),
            self.worker_recorder("relay"),
            bootstrap=self.connect_kafka(),
            topic=self.settings.kafka_topic,
            partitions=self.settings.kafka_partitions,
            source=self.settings.source,
        )

    def kafka_projection_runner(self, projection: type[Projection]) -> KafkaFeedRunner:
        """A runner keeping ``projection`` up to date from the Kafka topic."""
        return KafkaFeedRunner(
            self.worker_pool(projection.name),
            self.ledger.mapper,
            projection,
            bootstrap=self.connect_kafka(),
            topic=self.settings.kafka_topic,
            batch_size=self.settings.projection_batch,
            catch_up_batch=self.settings.projection_catch_up_batch,
        )

    def projection_runner(self, projection: type[Projection]) -> PostgresFeedRunner:
        """A runner keeping ``projection`` up to date from the PostgreSQL log."""
        return PostgresFeedRunner(
            self.worker_pool(projection.name),
            self.worker_recorder(projection.name),
            self.ledger.mapper,
            projection,
            batch_size=self.settings.projection_batch,
            catch_up_batch=self.settings.projection_catch_up_batch,
            linger_s=self.settings.projection_linger_ms / 1000,
        )

    def audit_key(self) -> Ed25519PrivateKey:
        """The Ed25519 key signing checkpoints and bundles (made on first use)."""
        return load_or_create_key(self.settings.audit_key_file)

    def checkpointer(self) -> Checkpointer:
        """Signs checkpoints of the chain over events it authenticated (opened their seals);
        the relay publishes them to Kafka."""
        return Checkpointer(
            self.worker_pool("checkpointer"),
            self.audit_key(),
            seal_of(self.ledger),
            every_events=self.settings.checkpoint_events,
            every_seconds=self.settings.checkpoint_seconds,
            heartbeat_seconds=self.settings.checkpoint_heartbeat,
        )

    def were_recorded(self, stored_events: Sequence[StoredEvent]) -> bool:
        """Whether exactly these sealed events are in the log (a commit cut off settled)."""
        recorder = self.ledger.recorder
        assert isinstance(recorder, FailFastApplicationRecorder)
        return recorder.recorded_positions(stored_events) is not None

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
    """The relay, the checkpointer and the projection runners as threads of one process,
    stopped together; each has sessions of its own, named after it.

    A worker that fails for a passing reason (database restart, sessions ended, broker down)
    is restarted after a growing pause (``infra.faults.supervise``); a projection halted on a
    bad event stays stopped, visible at /projections.
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
        checkpointer = runtime.checkpointer()
        targets.append(("checkpointer", lambda: checkpointer.run_forever(self.stop_event)))
        for projection in ALL_PROJECTIONS:
            runner = runtime.projection_runner(projection)
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
        halted = supervise(name, target, self.stop_event, halts=(ProjectionHalted,))
        if isinstance(halted, ProjectionHalted):
            self.halted[halted.projection] = halted

    def start(self) -> Workers:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
