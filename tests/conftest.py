"""Shared fixtures: the real services, a fresh database per test, fresh topics and groups.

Endpoints come from the environment (``dev/services.sh start`` prints them):
ETL_KAFKA__BOOTSTRAP_SERVERS, ETL_POSTGRES__DSN, ETL_PUSHGATEWAY__URL. When they are absent and a
Docker engine answers, testcontainers start the services instead. When neither is possible an
integration test fails (never skips) with a message saying how to start them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.helpers.private_services import PrivateKafka, private_kafka
from tests.helpers.services import HOW_TO_START, SCHEMA, Services, docker_available, from_env


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the real services is an integration test: marked so, whatever its file,
    so ``pytest -m "not integration"`` is the fast offline loop."""
    for item in items:
        if "services" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    found = from_env()
    if found is not None:
        yield found
        return
    if not docker_available():
        pytest.fail(HOW_TO_START, pytrace=False)
    from testcontainers.core.container import DockerContainer
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with (
        KafkaContainer().with_kraft() as kafka,
        PostgresContainer("postgres:15", driver=None) as pg,
        DockerContainer("prom/pushgateway").with_exposed_ports(9091) as pgw,
    ):
        url = f"http://{pgw.get_container_host_ip()}:{pgw.get_exposed_port(9091)}"
        yield Services(kafka.get_bootstrap_server(), pg.get_connection_url(), url)


@pytest.fixture
def make_database(services: Services) -> Iterator[Callable[[], str]]:
    """Create new empty databases; their DSNs. Dropped after the test."""
    names: list[str] = []

    def create() -> str:
        name = f"etl_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(services.postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        names.append(name)
        params = conninfo_to_dict(services.postgres_dsn)
        params["dbname"] = name
        return make_conninfo(**{k: str(v) for k, v in params.items()})

    yield create
    with psycopg.connect(services.postgres_dsn, autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def database(make_database: Callable[[], str]) -> str:
    """A new empty database for this test; its DSN. Dropped afterwards."""
    return make_database()


@pytest.fixture
def schema_db(database: str) -> str:
    """A fresh database with schema.sql applied."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
    return database


@pytest.fixture
def make_topic(services: Services) -> Iterator[Callable[[int], str]]:
    """Create uniquely named topics with N partitions; deleted at the end of the test.

    Time-based retention is off on them: several tests stamp messages months in the past, and the
    broker's retention check (every 5 minutes) would otherwise delete them mid-test, at random.
    Tests of retention delete records explicitly."""
    admin = AdminClient({"bootstrap.servers": services.kafka})
    created: list[str] = []

    def create(partitions: int) -> str:
        name = f"etl-test-{uuid.uuid4().hex[:10]}"
        topic = NewTopic(name, partitions, 1, config={"retention.ms": "-1"})
        futures = admin.create_topics([topic])
        for fut in futures.values():
            fut.result(timeout=30)
        created.append(name)
        return name

    yield create
    if created:
        for fut in admin.delete_topics(created).values():
            with contextlib.suppress(Exception):
                fut.result(timeout=30)


@pytest.fixture
def produce(services: Services) -> Callable[..., None]:
    """produce(topic, [(partition, value_bytes), ...], timestamp_ms=None)."""

    def send(
        topic: str, items: list[tuple[int, bytes | None]], timestamp_ms: int | None = None
    ) -> None:
        producer = Producer({"bootstrap.servers": services.kafka, "linger.ms": 5})
        for partition, value in items:
            if timestamp_ms is None:
                producer.produce(topic, value, partition=partition)
            else:
                producer.produce(topic, value, partition=partition, timestamp=timestamp_ms)
        assert producer.flush(30) == 0

    return send


@pytest.fixture
def group() -> str:
    return f"etl-test-group-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def etl_env(services: Services, schema_db: str, group: str) -> Callable[[str], dict[str, str]]:
    """Environment for running the ``etl`` command against one topic and the fresh database."""

    def env(topic: str, **extra: str) -> dict[str, str]:
        out = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
        out.update(
            {
                "ETL_KAFKA__BOOTSTRAP_SERVERS": services.kafka,
                "ETL_KAFKA__TOPIC": topic,
                "ETL_KAFKA__GROUP_ID": group,
                "ETL_POSTGRES__DSN": schema_db,
                "ETL_PUSHGATEWAY__URL": services.pushgateway,
                "ETL_PUSHGATEWAY__JOB": f"etl-test-{group}",
                "ETL_LOG__FORMAT": "json",
                "ETL_KAFKA__TIMEOUT_SECONDS": "30",
                "ETL_POSTGRES__RETRY_ATTEMPTS": "2",
                "ETL_POSTGRES__RETRY_MAX_SECONDS": "3",
            }
        )
        out.update(extra)
        return out

    return env


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateKafka]:
    """A private KRaft broker that the test may kill; never the shared one."""
    with private_kafka(tmp_path / "kafka") as broker:
        yield broker
