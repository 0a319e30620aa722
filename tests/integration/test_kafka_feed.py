"""Projections fed from Kafka: equal to the PostgreSQL feed, exactly-once over duplicates."""

from __future__ import annotations

import time

import pytest

from domain.commands.cases import CloseCase
from infra.embedded_kafka import EmbeddedKafka
from infra.kafka_feed import KafkaFeedRunner
from infra.projection_runner import PostgresFeedRunner
from infra.runtime import Runtime
from infra.schema import create_generation
from projections.base import Projection
from projections.caseload import CaseloadProjection
from projections.registry import ALL_PROJECTIONS
from tests.factories import approver
from tests.integration.helpers import (
    caseload_rows,
    expected_caseload,
    projection_tables,
    relay_for,
    write_history,
)
from tests.integration.kafka_tools import topic_partitions
from tests.scenario import application, write_rich_history

pytestmark = pytest.mark.integration


def new_schema(
    runtime: Runtime, schema: str, projection: type[Projection] = CaseloadProjection
) -> str:
    with runtime.pool.connection() as conn, conn.transaction():
        create_generation(conn, projection, schema, replace=True)
    return schema


def kafka_runner(
    runtime: Runtime,
    bootstrap: str,
    schema: str,  # type: ignore[no-untyped-def]
    projection: type[Projection] = CaseloadProjection,
    **kwargs,
) -> KafkaFeedRunner:
    return KafkaFeedRunner(
        runtime.pool,
        runtime.ledger.mapper,
        projection,
        bootstrap=bootstrap,
        topic=runtime.settings.kafka_topic,
        schema=schema,
        batch_size=30,
        **kwargs,
    )


def consume_until(
    runner: KafkaFeedRunner, runtime: Runtime, schema: str, timeout: float = 60
) -> None:
    """Poll until every aggregate's latest version has been applied.

    The Kafka feed's tracked position is the highest position seen, which partitions read in
    parallel can reach before every lower one is applied; completeness is per aggregate.
    """
    with runtime.pool.connection() as conn:
        expected = dict(
            conn.execute(
                "SELECT originator_id, max(originator_version) FROM relief_events GROUP BY 1"
            ).fetchall()
        )
    deadline = time.monotonic() + timeout
    while True:
        runner.run_once(timeout_ms=200)
        with runtime.pool.connection() as conn:
            applied = dict(
                conn.execute(
                    f"SELECT originator_id, version FROM {schema}._applied_versions"
                ).fetchall()
            )
        if applied == expected:
            return
        missing = sum(1 for k, v in expected.items() if applied.get(k) != v)
        assert time.monotonic() < deadline, f"kafka feed misses {missing} aggregates"


def test_both_feeds_build_the_same_tables_row_for_row(
    runtime: Runtime, kafka_broker: EmbeddedKafka
) -> None:
    write_rich_history(runtime)
    relay = relay_for(runtime, kafka_broker.bootstrap)
    while relay.run_once():
        pass
    for projection in ALL_PROJECTIONS:
        from_pg = new_schema(runtime, f"rm_{projection.name}_pgfeed", projection)
        from_kafka = new_schema(runtime, f"rm_{projection.name}_kfeed", projection)
        PostgresFeedRunner(
            runtime.pool,
            runtime.ledger.recorder,
            runtime.ledger.mapper,
            projection,
            schema=from_pg,
            batch_size=40,
        ).catch_up()
        runner = kafka_runner(runtime, kafka_broker.bootstrap, from_kafka, projection)
        try:
            consume_until(runner, runtime, from_kafka)
        finally:
            runner.close()
        pg_tables = projection_tables(runtime, from_pg)
        assert pg_tables and all(pg_tables.values()), f"{projection.name} built nothing"
        assert projection_tables(runtime, from_kafka) == pg_tables, projection.name


def test_caseload_from_either_feed_matches_the_aggregates(
    runtime: Runtime, kafka_broker: EmbeddedKafka
) -> None:
    cases = write_history(runtime, 60)
    relay = relay_for(runtime, kafka_broker.bootstrap)
    while relay.run_once():
        pass
    schema = new_schema(runtime, "rm_caseload_kfeed")
    runner = kafka_runner(runtime, kafka_broker.bootstrap, schema)
    try:
        consume_until(runner, runtime, schema)
    finally:
        runner.close()
    assert caseload_rows(runtime.database_url, schema) == expected_caseload(runtime.ledger, cases)


def test_duplicates_and_a_crash_before_commit_are_applied_once(
    runtime: Runtime, kafka_broker: EmbeddedKafka
) -> None:
    cases = write_history(runtime, 60)
    relay = relay_for(runtime, kafka_broker.bootstrap)
    while relay.run_once():
        pass
    # A relay that crashed after publishing but before storing its position publishes again.
    with runtime.pool.connection() as conn:
        conn.execute("UPDATE relief.relay_state SET position = 0, partition_offsets = '{}'")
    while relay.run_once():
        pass
    schema = new_schema(runtime, "rm_caseload_dupes")

    class Crash(Exception):
        pass

    def crash(_position: int) -> None:
        raise Crash

    crashing = kafka_runner(
        runtime, kafka_broker.bootstrap, schema, before_commit=crash, group_id="crashing"
    )
    try:
        with pytest.raises(Crash):
            for _ in range(50):
                crashing.run_once(timeout_ms=500)
    finally:
        crashing.close()
    assert caseload_rows(runtime.database_url, schema) == []

    runner = kafka_runner(runtime, kafka_broker.bootstrap, schema, group_id="crashing")
    try:
        consume_until(runner, runtime, schema)
        for _ in range(5):  # the duplicated second copy is read too, and changes nothing
            runner.run_once(timeout_ms=200)
    finally:
        runner.close()
    assert caseload_rows(runtime.database_url, schema) == expected_caseload(runtime.ledger, cases)


def test_a_broker_that_lost_everything_is_followed_through_the_republish(
    runtime: Runtime, own_broker: EmbeddedKafka
) -> None:
    write_history(runtime, 40)
    relay = relay_for(runtime, own_broker.bootstrap)
    while relay.run_once():
        pass
    schema = new_schema(runtime, "rm_caseload_lost")
    runner = kafka_runner(runtime, own_broker.bootstrap, schema, group_id="lost")
    try:
        consume_until(runner, runtime, schema)
        own_broker.restart()
        # The feed's consumer goes on polling a broker that lost the topic, long enough to
        # rejoin its group there (Tansu answers a JoinGroup after ~3 s). It must not have the
        # broker create the topic (Tansu would, with 4 partitions). And the member that joined
        # while the topic was missing is answered, at its later rejoins, with the empty
        # assignment Tansu stored then: only a new member gets the relay's partitions again.
        rejoin_until = time.monotonic() + 8
        while time.monotonic() < rejoin_until:
            runner.run_once(timeout_ms=500)
        assert topic_partitions(own_broker.bootstrap, runtime.settings.kafka_topic) is None
        for _ in range(15):
            case = application(runtime, programme="tekun")
            runtime.services.cases.close_case(
                CloseCase(case_id=case.id, reason_code="death", provenance=approver())
            )
        # The relay republishes while the feed goes on polling, as they run in service: the
        # member stays in its group (it is not dropped for a poll interval gone by).
        deadline = time.monotonic() + 150
        while relay.load_state().position < runtime.head_position():
            try:
                relay.run_once()
            except Exception:
                relay._drop_producer()
                time.sleep(0.2)
            runner.run_once(timeout_ms=100)
            assert time.monotonic() < deadline
        assert relay.load_state().epoch == 2
        assert topic_partitions(own_broker.bootstrap, runtime.settings.kafka_topic) == 3
        # the republish carries the division register's events too (the whole log from 0)
        consume_until(runner, runtime, schema, timeout=180)
    finally:
        runner.close()
    pg = new_schema(runtime, "rm_caseload_lost_pg")
    PostgresFeedRunner(
        runtime.pool,
        runtime.ledger.recorder,
        runtime.ledger.mapper,
        CaseloadProjection,
        schema=pg,
    ).catch_up()
    assert caseload_rows(runtime.database_url, schema) == caseload_rows(runtime.database_url, pg)


def test_a_feed_that_joined_before_the_relay_first_published_reads_everything(
    runtime: Runtime, own_broker: EmbeddedKafka
) -> None:
    """Its member joined its group while the topic did not exist (assigned nothing); the
    embedded broker answers that member's later rejoins with that empty assignment, so the
    runner rejoins as a new member once the relay has started."""
    write_history(runtime, 10)
    schema = new_schema(runtime, "rm_caseload_early")
    runner = kafka_runner(runtime, own_broker.bootstrap, schema, group_id="early")
    try:
        joined_until = time.monotonic() + 8
        while time.monotonic() < joined_until:
            runner.run_once(timeout_ms=500)
        relay = relay_for(runtime, own_broker.bootstrap)
        while relay.run_once():
            runner.run_once(timeout_ms=100)  # polling on: the member keeps its place
        consume_until(runner, runtime, schema, timeout=90)
    finally:
        runner.close()
