"""One answer whatever the path: every projection, built from the same log event by event, in
batches of 7 or of 1,000, in batches of 7 growing to 60 while behind, and from the Kafka topic
(polls of 7 growing to 1,000), concludes the same rows: the same open
alerts (ids, evidence, first and last seen), the same facts, caseload and staffing rows.

Property-style: each seed generates another history (a small synthetic province with every
kind of injected misconduct, so alerts are raised, refreshed and cleared), and every path must
agree on it. More seeds: RELIEF_PATH_SEEDS=20."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from eventsourcing.persistence import Notification

from infra.embedded_kafka import EmbeddedKafka
from infra.kafka_feed import KafkaFeedRunner
from infra.projection_runner import PostgresFeedRunner, rebuild
from infra.runtime import Runtime
from infra.schema import create_generation, generation_schema
from infra.settings import Settings
from projections.base import Projection
from projections.caseload import CaseloadProjection
from projections.staffing import StaffingProjection
from tests.conftest import fresh_database
from tests.integration.helpers import (
    StageInThread,
    projection_conclusions,
    relay_for,
    scenario_runtime,
)
from tests.integration.test_kafka_feed import consume_until
from tools.synthetic.misconduct import scenario_projection

pytestmark = pytest.mark.integration

SEEDS = range(int(os.environ.get("RELIEF_PATH_SEEDS", "2")))
BATCH_SIZES = (1, 7, 1000)
PROJECTIONS: tuple[type[Projection], ...] = (
    CaseloadProjection,
    StaffingProjection,
    scenario_projection(),
)


@pytest.fixture(params=SEEDS, ids=lambda seed: f"seed{seed}")
def history(
    request: pytest.FixtureRequest, pg_server_url: str, settings: Settings, tmp_path: Any
) -> Any:
    """A fresh database holding the generated history of one seed."""
    seed = request.param
    runtime = scenario_runtime(
        fresh_database(pg_server_url),
        settings,
        tmp_path / "d",
        households=12 + 4 * seed,
        seed=100 + seed,
    )
    yield runtime
    runtime.close()


def build(runtime: Runtime, projection: type[Projection], schema: str) -> str:
    with runtime.pool.connection() as conn, conn.transaction():
        create_generation(conn, projection, schema, replace=True)
    return schema


def test_every_path_concludes_the_same(history: Runtime, kafka_broker: EmbeddedKafka) -> None:
    runtime = history
    relay = relay_for(runtime, kafka_broker.bootstrap)
    while relay.run_once():
        pass
    concluded: dict[str, dict[str, dict[str, list[tuple[Any, ...]]]]] = {}
    for projection in PROJECTIONS:
        paths = concluded.setdefault(projection.name, {})
        for batch in BATCH_SIZES:
            schema = build(runtime, projection, f"rm_{projection.name}_b{batch}")
            PostgresFeedRunner(
                runtime.pool,
                runtime.ledger.recorder,
                runtime.ledger.mapper,
                projection,
                batch_size=batch,
                schema=schema,
            ).catch_up()
            paths[f"postgres, batches of {batch}"] = projection_conclusions(runtime, schema)
        # batches of 7, then of 60 while behind (as a live runner catching up)
        schema = build(runtime, projection, f"rm_{projection.name}_grow")
        PostgresFeedRunner(
            runtime.pool,
            runtime.ledger.recorder,
            runtime.ledger.mapper,
            projection,
            batch_size=7,
            catch_up_batch=60,
            schema=schema,
        ).catch_up()
        paths["postgres, batches of 7 then 60"] = projection_conclusions(runtime, schema)

    def from_kafka(projection: type[Projection]) -> None:
        schema = build(runtime, projection, f"rm_{projection.name}_kafka")
        runner = KafkaFeedRunner(
            runtime.pool,
            runtime.ledger.mapper,
            projection,
            bootstrap=kafka_broker.bootstrap,
            topic=runtime.settings.kafka_topic,
            schema=schema,
            batch_size=7,
            catch_up_batch=1000,
        )
        try:
            consume_until(runner, runtime, schema)
        finally:
            runner.close()
        concluded[projection.name]["kafka"] = projection_conclusions(runtime, schema)

    with ThreadPoolExecutor(len(PROJECTIONS)) as pool:  # the consumers join their groups at once
        list(pool.map(from_kafka, PROJECTIONS))
    for name, paths in concluded.items():
        first, *others = paths
        assert all(paths[first].values()), f"{name} built nothing"
        for other in others:
            assert paths[other] == paths[first], (name, other, first)
    assert concluded["red_flags"][first]["alerts"], "the history raised no alert"


def test_a_rebuild_in_two_stages_concludes_as_every_path(history: Runtime) -> None:
    """red_flags rebuilt in two stages (its rules stage reads only the fields its triggers
    name: Projection.event_fields) concludes what the log concludes in one pass."""
    runtime = history
    projection = scenario_projection()
    schema = build(runtime, projection, f"rm_{projection.name}_whole")
    PostgresFeedRunner(
        runtime.pool,
        runtime.ledger.recorder,
        runtime.ledger.mapper,
        projection,
        batch_size=1000,
        schema=schema,
    ).catch_up()
    stages: list[StageInThread] = []

    # Batches of 3 behind a first stage's of 7: the rules judge from facts of later events.
    def second_stage(generation_schema: str) -> StageInThread:
        stages.append(StageInThread(runtime, projection, generation_schema, 3))
        return stages[-1]

    generation = rebuild(
        runtime.pool,
        runtime.ledger.recorder,
        runtime.ledger.mapper,
        projection,
        batch_size=7,
        second_stage=second_stage,
    )
    assert len(stages) == 1 and stages[0].runner.position > 0
    whole = projection_conclusions(runtime, schema)
    assert whole["alerts"], "the history raised no alert"
    rebuilt = projection_conclusions(runtime, generation_schema(projection.name, generation))
    assert rebuilt == whole


def test_every_event_read_from_its_row_is_the_event_the_library_reads(history: Runtime) -> None:
    """PlaceBoundMapper.event_at (the runners' way, upcasts included) reads every event of a
    generated history as the library's mapper does, class for class and field for field."""
    mapper = history.ledger.mapper
    with history.pool.connection() as conn, conn.cursor(binary=True) as cursor:
        rows = cursor.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM public.relief_events ORDER BY notification_id"
        ).fetchall()
    versions = set()
    for position, originator_id, version, topic, state in rows:
        library = mapper.to_domain_event(
            Notification(
                id=position,
                originator_id=originator_id,
                originator_version=version,
                topic=topic,
                state=state,
            )
        )
        read = mapper.event_at(position, originator_id, version, topic, state)  # type: ignore[attr-defined]
        assert type(read) is type(library) and vars(read) == vars(library), (position, topic)
        versions.add(getattr(type(read), "class_version", 1))
    assert versions == {1, 2}  # upcast classes among them
