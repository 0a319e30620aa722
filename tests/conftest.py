"""Shared fixtures: a real PostgreSQL (embedded pgserver) and a real Kafka broker (Tansu).

Set RELIEF_TEST_DATABASE_URL to run the database tests against another PostgreSQL instead;
each test gets a fresh database created on that server.

Every deployment loads a division register on its first start, so a test's fresh database is
a copy (``CREATE DATABASE … TEMPLATE``) of one made once per session: the schema and the
fictional test register (``tests/fixtures/test-divisions.csv``), every projection past it. Its
division events come first in the log: tests counting events count those after them
(tests/integration/helpers.py ``events_written``). ``empty_database_url`` is a database with
nothing at all, for the tests of a log's very beginning.
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

TEST_DIVISIONS = Path(__file__).resolve().parent / "fixtures" / "test-divisions.csv"
#: One cipher key for every test database: the template's sealed division events must open.
TEST_CIPHER_KEY = "dGVzdC1jaXBoZXIta2V5LW9mLXRoZS10ZXN0LXN1aXQ="


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    external = os.environ.get("RELIEF_TEST_DATABASE_URL")
    if external:
        return external
    from infra.embedded_postgres import start_embedded_postgres

    return start_embedded_postgres(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")


def fresh_database(server_url: str, template: str | None = None) -> str:
    """A new database on the server of ``server_url`` (dropped with the test server): empty,
    or a copy of ``template``."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(statement)
    return make_conninfo(server_url, dbname=name)


@pytest.fixture(scope="session")
def template_database(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The schema and the test division register, once per session: the template of every
    test's database."""
    from infra.runtime import Runtime

    url = fresh_database(pg_server_url)
    runtime = Runtime.open(
        Settings(
            database_url=url,
            data_dir=tmp_path_factory.mktemp("template"),
            cipher_key_b64=TEST_CIPHER_KEY,
            divisions_file=TEST_DIVISIONS,
            db_pool_size=2,
        ),
        role="test-template",
    )
    try:
        # as a deployment's runners do after its first start: every projection past the register
        from projections.registry import ALL_PROJECTIONS

        for projection in ALL_PROJECTIONS:
            runtime.projection_runner(projection).catch_up()
    finally:
        runtime.close()
    return str(conninfo_to_dict(url)["dbname"])


def _dropped(server_url: str, url: str) -> None:
    name = conninfo_to_dict(url)["dbname"]
    with (
        psycopg.connect(server_url, autocommit=True) as conn,
        contextlib.suppress(psycopg.Error),
    ):
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture()
def empty_database_url(pg_server_url: str) -> Iterator[str]:
    """A database with nothing in it: no schema, no register."""
    url = fresh_database(pg_server_url)
    yield url
    _dropped(pg_server_url, url)


@pytest.fixture()
def database_url(pg_server_url: str, template_database: str) -> Iterator[str]:
    """A fresh database for one test: the schema and the test division register."""
    url = fresh_database(pg_server_url, template_database)
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
    # The template's cipher key, kept where the data directory keeps it, so a process started
    # by a test with RELIEF_DATA_DIR (the CLI, `relief run`) opens the register's events too.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "cipher.key").write_text(TEST_CIPHER_KEY)
    (data_dir / "cipher.key").chmod(0o600)
    return Settings(
        jwt_public_key_path=trusted,
        database_url=database_url,
        data_dir=data_dir,
        kafka_topic=f"relief.events.{uuid.uuid4().hex[:8]}",
        kafka_partitions=3,
        db_pool_size=4,
        projection_batch=50,
        divisions_file=TEST_DIVISIONS,
        # Tests read their own writes: every answer current when asked. Answers sent behind
        # while refreshed (the default) are tested on their own (tests/e2e/test_dashboards_api).
        answer_max_stale_ms=0,
    )


@pytest.fixture()
def runtime(settings: Settings) -> Iterator[Runtime]:  # noqa: F821
    from infra.runtime import Runtime

    rt = Runtime.open(settings)
    yield rt
    rt.close()
