"""etl configured by Clowder's cdappconfig.json alone, against the real services: the run reads
the topic, writes the database and pushes to the Pushgateway the file names, over SASL when the
file says so, and no password it holds is ever printed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Producer
from psycopg.conninfo import conninfo_to_dict

from tests.helpers.cdappconfig import broker, clowder_env, database_of, document, write
from tests.helpers.http_peers import private_pushgateway
from tests.helpers.private_services import SASL_PASSWORD, SASL_USER, private_kafka
from tests.helpers.runs import etl_command, good, pushed, rejections, rows, run_etl, summary
from tests.helpers.services import Services

DB_PASSWORD = "PLANTED-clowder-db-pw-5d1e"
WRONG_SASL_PASSWORD = "PLANTED-clowder-kafka-pw-90ab"


def test_a_run_configured_by_clowder_alone_loads_every_message_and_pushes(
    services: Services,
    schema_db: str,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
    group: str,
    tmp_path: Path,
) -> None:
    topic = make_topic(2)
    produce(topic, [(0, good(1)), (1, good(2)), (0, good(3)), (1, b"not json")])
    with private_pushgateway() as gateway:
        doc = document(
            brokers=[broker(services.kafka)],
            # The default kafka.topic is the requested name; Clowder names the real topic.
            topics={"ccx.ocp.results": topic, "platform.payload-status": "unused"},
            database=database_of(schema_db, password=DB_PASSWORD),
            pushgateway=gateway,
        )
        acg = write(tmp_path / "cdappconfig.json", doc)
        env = clowder_env(acg, ETL_LOG__FORMAT="json")
        run = run_etl(env, "--group", group)
        shown = etl_command(env, "config", "show")
        check = etl_command(env, "check")
        metrics = pushed(dataclasses.replace(services, pushgateway=gateway), "etl")
    outputs = [run.stdout, run.stderr, shown.stdout, shown.stderr, check.stdout, check.stderr]
    assert run.returncode == 0, run.stderr[-3000:]
    assert summary(run)["metrics_pushed"] is True
    assert len(rows(schema_db)) == 3
    assert [r[2] for r in rejections(schema_db)] == ["invalid_json"]
    assert metrics["etl_rows_inserted"] == 3
    assert shown.returncode == 0, shown.stderr
    assert f'bootstrap_servers = "{services.kafka}"  # clowder' in shown.stdout
    assert f'topic = "{topic}"  # clowder, requested as ccx.ocp.results (default)' in shown.stdout
    assert f'url = "{gateway}"  # clowder' in shown.stdout
    dbname = conninfo_to_dict(schema_db)["dbname"]
    assert f"password=*** dbname={dbname}" in shown.stdout
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines()[0] == f"config: clowder {acg} (ACG_CONFIG)"
    assert [line.split(":")[0] for line in check.stdout.splitlines()[1:]] == [
        "kafka",
        "postgres",
        "pushgateway",
    ]
    assert not [text for text in outputs if DB_PASSWORD in text]


def test_sasl_credentials_from_clowder_reach_a_broker_that_demands_them(
    schema_db: str, group: str, tmp_path: Path
) -> None:
    with private_kafka(tmp_path / "kafka", sasl=True) as kafka:
        topic = kafka.create_topic(1, "clowder-sasl-results")
        producer = Producer(kafka.client_config())
        for i in range(4):
            producer.produce(topic, good(i), partition=0)
        assert producer.flush(30) == 0

        def env_with(password: str, name: str) -> dict[str, str]:
            sasl = {"saslMechanism": "PLAIN", "username": SASL_USER, "password": password}
            entry = broker(
                kafka.bootstrap, authtype="sasl", securityProtocol="SASL_PLAINTEXT", sasl=sasl
            )
            doc = document(
                brokers=[entry],
                topics={"ccx.ocp.results": topic},
                database=database_of(schema_db, password=DB_PASSWORD),
            )
            return clowder_env(write(tmp_path / name, doc), ETL_LOG__FORMAT="json")

        right = run_etl(env_with(SASL_PASSWORD, "right.json"), "--group", group)
        wrong = run_etl(env_with(WRONG_SASL_PASSWORD, "wrong.json"), "--group", group)
    assert right.returncode == 0, right.stderr[-3000:]
    assert len(rows(schema_db)) == 4
    assert wrong.returncode == 9, wrong.stderr[-3000:]
    assert "Kafka authentication failed" in wrong.stderr
    printed = right.stdout + right.stderr + wrong.stdout + wrong.stderr
    assert SASL_PASSWORD not in printed
    assert WRONG_SASL_PASSWORD not in printed
    assert DB_PASSWORD not in printed
