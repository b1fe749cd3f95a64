"""etl check against the running services and against closed ports (stopped services)."""

from __future__ import annotations

from collections.abc import Callable

from etl.core.migrations import LATEST
from tests.helpers.db import etl
from tests.helpers.services import Services

CLOSED_DSN = "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2"


def test_every_dependency_up_exits_0(
    services: Services, database: str, make_topic: Callable[[int], str]
) -> None:
    topic = make_topic(3)
    assert etl(database, "db", "init").exit_code == 0
    result = etl(
        database,
        "check",
        ETL_KAFKA__BOOTSTRAP_SERVERS=services.kafka,
        ETL_KAFKA__TOPIC=topic,
        ETL_PUSHGATEWAY__URL=services.pushgateway,
    )
    assert result.exit_code == 0, result.output
    kafka, postgres, pushgateway = result.stdout.splitlines()
    assert kafka == (f"kafka: ok {services.kafka} topic '{topic}' has 3 partition(s) [0, 1, 2]")
    assert postgres.startswith("postgres: ok ")
    assert postgres.endswith(f"schema version {LATEST} (latest)")
    assert pushgateway == f"pushgateway: ok {services.pushgateway} healthy"


def test_every_dependency_stopped_reports_all_three_and_exits_3() -> None:
    result = etl(
        CLOSED_DSN,
        "check",
        "--timeout",
        "2",
        ETL_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:1",
        ETL_PUSHGATEWAY__URL="http://127.0.0.1:1",
    )
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["kafka", "postgres", "pushgateway"]
    assert all(": FAILED " in line for line in lines), lines
    assert "PostgreSQL unavailable" in lines[1]


def test_a_missing_topic_fails_the_kafka_check_with_exit_9(
    services: Services, database: str
) -> None:
    etl(database, "db", "init")
    result = etl(
        database,
        "check",
        ETL_KAFKA__BOOTSTRAP_SERVERS=services.kafka,
        ETL_KAFKA__TOPIC="etl-test-no-such-topic",
        ETL_PUSHGATEWAY__URL=services.pushgateway,
    )
    assert result.exit_code == 9
    assert "kafka: FAILED topic 'etl-test-no-such-topic': does not exist" in result.stdout


def test_postgresql_stopped_exits_4(services: Services, make_topic: Callable[[int], str]) -> None:
    result = etl(
        CLOSED_DSN,
        "check",
        ETL_KAFKA__BOOTSTRAP_SERVERS=services.kafka,
        ETL_KAFKA__TOPIC=make_topic(1),
        ETL_PUSHGATEWAY__URL=services.pushgateway,
    )
    assert result.exit_code == 4
    assert "postgres: FAILED PostgreSQL unavailable" in result.stdout


def test_an_outdated_schema_exits_5(
    services: Services, database: str, make_topic: Callable[[int], str]
) -> None:
    etl(database, "db", "migrate", "--to", "8")  # the reference's last version
    result = etl(
        database,
        "check",
        ETL_KAFKA__BOOTSTRAP_SERVERS=services.kafka,
        ETL_KAFKA__TOPIC=make_topic(1),
        ETL_PUSHGATEWAY__URL=services.pushgateway,
    )
    assert result.exit_code == 5
    assert f"schema version 8, latest {LATEST}: run 'etl db migrate'" in result.stdout


def test_pushgateway_stopped_exits_7_and_an_empty_url_is_skipped(
    services: Services, database: str, make_topic: Callable[[int], str]
) -> None:
    etl(database, "db", "init")
    env = {"ETL_KAFKA__BOOTSTRAP_SERVERS": services.kafka, "ETL_KAFKA__TOPIC": make_topic(1)}
    down = etl(
        database, "check", "--timeout", "2", ETL_PUSHGATEWAY__URL="http://127.0.0.1:1", **env
    )
    assert down.exit_code == 7
    assert "pushgateway: FAILED http://127.0.0.1:1" in down.stdout
    skipped = etl(database, "check", ETL_PUSHGATEWAY__URL="", **env)
    assert skipped.exit_code == 0, skipped.output
    assert "pushgateway: ok skipped" in skipped.stdout


def test_a_password_never_appears_in_the_output() -> None:
    dsn = "postgresql://postgres:s3cret-pw@127.0.0.1:1/postgres?connect_timeout=2"
    result = etl(dsn, "check", "--timeout", "1", ETL_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert result.exit_code == 3
    assert "s3cret-pw" not in result.output
