"""Helpers for integration tests: writing histories and reading read-model tables."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from infra.ledger import ReliefLedger
from infra.projection_processes import second_stage_runner
from infra.relay import KafkaRelay
from infra.runtime import REFERENCE_TOPICS, Runtime
from infra.settings import Settings
from projections.base import Projection
from tests.scenario import write_history  # noqa: F401  (re-exported for the tests)


def table_rows(database_url: str, schema: str, table: str, order_by: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            sql.SQL("SELECT * FROM {}.{} ORDER BY {}").format(
                sql.Identifier(schema), sql.Identifier(table), sql.SQL(order_by)
            )
        ).fetchall()


def caseload_rows(database_url: str, schema: str = "read_models") -> list[tuple[Any, ...]]:
    return table_rows(database_url, schema, "caseload", "village, programme, status")


def expected_caseload(
    ledger: ReliefLedger, case_ids: list[UUID]
) -> list[tuple[str, str, str, int, int]]:
    """Caseload rows computed from the aggregates themselves, independent of any projection:
    (village, programme, status, cases, households) for every status a case has ever been
    in."""
    cases: dict[tuple[str, str, str], int] = {}
    households: dict[tuple[str, str, str], set[UUID]] = {}
    for case_id in case_ids:
        case = ledger.get_case(case_id)
        village_, programme = case.registered_division.code, case.programme.value
        for status in ("received", case.status.value):
            cases.setdefault((village_, programme, status), 0)
            households.setdefault((village_, programme, status), set())
        group = (village_, programme, case.status.value)
        cases[group] += 1
        households[group].add(case.household_id)
    return sorted((v, p, s, n, len(households[(v, p, s)])) for (v, p, s), n in cases.items())


def relay_for(runtime: Runtime, bootstrap: str, *, check_interval_s: float = 0.2) -> KafkaRelay:
    """A relay of the test's runtime to its own topic, with small batches."""
    return KafkaRelay(
        runtime.pool,
        runtime.ledger.recorder,
        bootstrap=bootstrap,
        topic=runtime.settings.kafka_topic,
        partitions=3,
        source="urn:test",
        batch_size=40,
        check_interval_s=check_interval_s,
    )


def projection_tables(runtime: Runtime, schema: str) -> dict[str, list[tuple]]:
    """Every read-model table of a generation (not its tracking tables), row for row."""
    with runtime.pool.connection() as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s"
                " AND tablename NOT LIKE '\\_%%' ORDER BY tablename",
                (schema,),
            ).fetchall()
        ]

    def key(row: tuple[Any, ...]) -> tuple[tuple[bool, str], ...]:
        return tuple((value is None, str(value)) for value in row)

    return {
        name: sorted(table_rows(runtime.database_url, schema, name, "1"), key=key) for name in names
    }


def projection_conclusions(runtime: Runtime, schema: str) -> dict[str, list[tuple]]:
    """What a generation concludes, which must not depend on the path that built it (batch
    sizes, feed): every table row for row, except that of the alerts only the open ones count
    (with their review rows). An alert raised and cleared inside one batch is never written, so
    which alerts were once raised and later cleared depends on the batch boundaries."""
    tables = projection_tables(runtime, schema)
    if "alerts" in tables:
        tables["alerts"] = [row for row in tables["alerts"] if row[12] == "open"]
        open_ids = {row[0] for row in tables["alerts"]}
        tables["alert_reviews"] = [
            row for row in tables["alert_reviews"] if row[0] in open_ids or row[1] != "unreviewed"
        ]
    return tables


#: The division register's events (the template's, or a list imported by a test).
DIVISION_TOPICS = "domain.division:%"
#: The reference data a first start records: the register's events and the band tables'.
REFERENCE = list(REFERENCE_TOPICS)


def events_written(database_url: str) -> int:
    """How many events the test wrote: the log less the reference data's events."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM public.relief_events WHERE NOT topic LIKE ANY(%s)",
            (REFERENCE,),
        ).fetchone()
    return int(row[0]) if row else 0


def register_head(database_url: str) -> int:
    """The position of the reference data's last event (the register, the band tables): where
    a test's own events begin after."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT coalesce(max(notification_id), 0) FROM public.relief_events"
            " WHERE topic LIKE ANY(%s)",
            (REFERENCE,),
        ).fetchone()
    return int(row[0]) if row else 0


def scenario_runtime(
    database_url: str, settings: Settings, data_dir: Path, *, households: int, seed: int
) -> Runtime:
    """A runtime over a fresh database holding the generated scenario of ``seed``
    (tools/synthetic: the honest province and the injected misconduct in its simplest forms;
    the variants, scored by test_scenario.py, would multiply the replays' run time)."""
    from tools.synthetic.misconduct import build_scenario
    from tools.synthetic.province import SimulatedClock

    runtime = Runtime.open(settings.with_(database_url=database_url, data_dir=data_dir))
    clock = SimulatedClock(runtime.services.clock.today())
    bulk = runtime.bulk(clock)
    try:
        build_scenario(bulk, clock, households=households, seed=seed, variants=False)
    finally:
        bulk.close()
    return runtime


class StageInThread:
    """A rebuild's second stage (``projection.rebuild_stages()[1]``) following ``schema`` on a
    thread, in batches of ``batch_size`` (the command runs it in a process of its own)."""

    def __init__(
        self, runtime: Runtime, projection: type[Projection], schema: str, batch_size: int
    ) -> None:
        self.runner = second_stage_runner(runtime, projection, schema, batch_size)
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._follow)
        self.thread.start()

    def _follow(self) -> None:
        try:
            self.runner.follow(self.done.is_set, idle_s=0.01)
        except BaseException as error:  # re-raised by finish
            self.error = error

    def finish(self) -> None:
        self.done.set()
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        self.done.set()
        self.thread.join()
