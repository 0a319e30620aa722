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

from infra.embedded_kafka import EmbeddedKafka
from infra.kafka_feed import KafkaFeedRunner
from infra.projection_runner import PostgresFeedRunner
from infra.runtime import Runtime
from infra.schema import create_generation
from infra.settings import Settings
from projections.base import Projection
from projections.caseload import CaseloadProjection
from projections.staffing import StaffingProjection
from tests.conftest import fresh_database
from tests.integration.helpers import projection_conclusions, relay_for, scenario_runtime
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
