"""Shared fixtures: a real PostgreSQL (embedded pgserver) and a real Kafka broker (Tansu).

Set RELIEF_TEST_DATABASE_URL to run the database tests against another PostgreSQL instead;
each test gets a fresh database created on that server.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra.embedded_kafka import EmbeddedKafka
from infra.settings import Settings


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    external = os.environ.get("RELIEF_TEST_DATABASE_URL")
    if external:
        return external
    from infra.embedded_postgres import start_embedded_postgres

    return start_embedded_postgres(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")


def fresh_database(server_url: str) -> str:
    """A new, empty database on the server of ``server_url`` (dropped with the test server)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(server_url, dbname=name)


@pytest.fixture()
def database_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    url = fresh_database(pg_server_url)
    name = conninfo_to_dict(url)["dbname"]
    yield url
    with (
        psycopg.connect(pg_server_url, autocommit=True) as conn,
        contextlib.suppress(psycopg.Error),
    ):
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedKafka]:
    broker = EmbeddedKafka(tmp_path_factory.mktemp("kafka")).start()
    yield broker
    broker.stop()


@pytest.fixture()
def own_broker(tmp_path: Path) -> Iterator[EmbeddedKafka]:
    """A broker this test may stop and restart."""
    broker = EmbeddedKafka(tmp_path / "kafka").start()
    yield broker
    broker.stop()


@pytest.fixture()
def settings(database_url: str, tmp_path: Path) -> Settings:
    from tests.factories import TOKEN_PUBLIC_PEM

    trusted = tmp_path / "idp-public.pem"
    trusted.write_bytes(TOKEN_PUBLIC_PEM)
    return Settings(
        jwt_public_key_path=trusted,
        database_url=database_url,
        data_dir=tmp_path / "data",
        kafka_topic=f"relief.events.{uuid.uuid4().hex[:8]}",
        kafka_partitions=3,
        db_pool_size=4,
        projection_batch=50,
    )


@pytest.fixture()
def runtime(settings: Settings) -> Iterator[Runtime]:  # noqa: F821
    from infra.runtime import Runtime

    rt = Runtime.open(settings)
    yield rt
    rt.close()
