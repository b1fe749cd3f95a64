"""Clowder's cdappconfig.json as a configuration source: what is taken from it, the precedence
defaults < file < Clowder < environment, the topic translation, secrets, and bad files."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict
from typer.testing import CliRunner

from etl.cli.app import app
from etl.core.config_sources import load_sources
from etl.core.errors import ConfigError
from etl.core.private_files import PrivateFiles
from tests.helpers.cdappconfig import EXAMPLE, broker, document, schema_errors, write

SECRETS = ("FIXTURE-kafka-password", "FIXTURE-db-password", "FIXTURE-db-admin-password")
NO_ETL_ENV = {k: None for k in os.environ if k.startswith("ETL_")}


def example() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return doc


def acg(tmp_path: Path, doc: dict[str, Any]) -> dict[str, str]:
    return {"ACG_CONFIG": str(write(tmp_path / "cdappconfig.json", doc))}


def test_the_fixtures_are_valid_per_clowders_schema_and_the_check_can_fail() -> None:
    assert schema_errors(example()) == []
    assert schema_errors(document(brokers=[broker("k:1")], topics={"a": "b"})) == []
    broken = example()
    broken["kafka"]["brokers"][0]["port"] = "9096"
    del broken["database"]["sslMode"]
    assert len(schema_errors(broken)) == 2


def test_everything_etl_uses_is_taken_from_the_example(tmp_path: Path) -> None:
    files = PrivateFiles()
    loaded = load_sources(None, {"ACG_CONFIG": str(EXAMPLE)}, files)
    cfg = loaded.config
    assert cfg.kafka.bootstrap_servers == "broker-0.kafka.example:9096,broker-1.kafka.example"
    assert cfg.kafka.topic == "env-example-ccx.ocp.results"
    client = dict(cfg.kafka.client)
    ca = Path(client.pop("ssl.ca.location"))
    assert client == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "ccx-etl",
        "sasl.password": "FIXTURE-kafka-password",
    }
    assert ca.read_text() == example()["kafka"]["brokers"][0]["cacert"]  # one copy of the two
    dsn = conninfo_to_dict(cfg.postgres.dsn)
    root = Path(str(dsn.pop("sslrootcert")))
    assert dsn == {
        "host": "ccx-notification-db.example.svc",
        "port": "5432",
        "dbname": "ccx-notification-db",
        "user": "etl-user",
        "password": "FIXTURE-db-password",
        "sslmode": "verify-full",
    }
    assert root.read_text() == example()["database"]["rdsCa"]
    assert cfg.pushgateway.url == "http://prometheus-pushgateway.example.svc:9091"
    assert ca.parent == root.parent == files.directory
    assert stat.S_IMODE(ca.parent.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in (ca, root)} == {0o600}
    assert loaded.clowder == EXAMPLE
    assert loaded.notices == ()
    shown = repr(cfg) + str(cfg.masked()) + repr(loaded)
    assert not [s for s in SECRETS if s in shown]


@pytest.mark.parametrize(
    ("fields", "client"),
    [
        ({"authtype": "sasl"}, {"security.protocol": "SASL_SSL"}),
        (
            {"authtype": "sasl", "securityProtocol": "SASL_PLAINTEXT"},
            {"security.protocol": "SASL_PLAINTEXT"},
        ),
        (
            {"authtype": "sasl", "sasl": {"securityProtocol": "SASL_PLAINTEXT"}},
            {"security.protocol": "SASL_PLAINTEXT"},
        ),
        ({"cacert": "PEM"}, {"security.protocol": "SSL", "ssl.ca.location": "<file>"}),
        ({}, {}),
    ],
)
def test_the_security_protocol_is_given_or_derived(
    tmp_path: Path, fields: dict[str, Any], client: dict[str, str]
) -> None:
    env = acg(tmp_path, document(brokers=[broker("k:1", **fields)], topics={}))
    got = dict(load_sources(None, env).config.kafka.client)
    if "ssl.ca.location" in got:
        assert Path(got["ssl.ca.location"]).read_text() == "PEM\n"
        got["ssl.ca.location"] = "<file>"
    assert got == client


def test_brokers_asking_for_different_credentials_are_refused(tmp_path: Path) -> None:
    sasl = {"authtype": "sasl", "sasl": {"username": "a", "password": "FIXTURE-kafka-password"}}
    other = {"authtype": "sasl", "sasl": {"username": "b", "password": "FIXTURE-kafka-password"}}
    env = acg(tmp_path, document(brokers=[broker("k:1", **sasl), broker("k:2", **other)]))
    with pytest.raises(ConfigError, match=r"kafka.brokers\[1\]: security settings differ"):
        load_sources(None, env)


def test_precedence_is_default_then_file_then_clowder_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "etl.toml"
    path.write_text(
        '[kafka]\nbootstrap_servers = "file:1"\ngroup_id = "from-file"\n'
        '[kafka.client]\n"sasl.username" = "file-user"\n"fetch.wait.max.ms" = "50"\n'
        '[postgres]\ndsn = "host=file-db"\n[pushgateway]\nurl = "http://file:9091"\n'
    )
    doc = document(
        brokers=[broker("clowder:1", authtype="sasl", sasl={"username": "clowder-user"})],
        topics={},
        database={**example()["database"], "rdsCa": ""},
        pushgateway="http://clowder-gw:9091",
    )
    env = {**acg(tmp_path, doc), "ETL_PUSHGATEWAY__URL": "http://env:9091"}
    loaded = load_sources(path, env)
    cfg = loaded.config
    assert cfg.kafka.bootstrap_servers == "clowder:1"  # Clowder over the file
    assert cfg.kafka.group_id == "from-file"  # Clowder has none: the file's stays
    assert cfg.kafka.client["sasl.username"] == "clowder-user"
    assert cfg.kafka.client["fetch.wait.max.ms"] == "50"  # tables merge key by key
    assert "host=ccx-notification-db.example.svc" in cfg.postgres.masked_dsn
    assert cfg.pushgateway.url == "http://env:9091"  # the environment over Clowder
    assert cfg.batch.max_messages == 10_000
    origins = {
        key: loaded.origin(key)
        for key in (
            "kafka.bootstrap_servers",
            "kafka.group_id",
            "kafka.client.sasl.username",
            "kafka.client.fetch.wait.max.ms",
            "postgres.dsn",
            "pushgateway.url",
            "batch.max_messages",
        )
    }
    assert origins == {
        "kafka.bootstrap_servers": "clowder",
        "kafka.group_id": "file",
        "kafka.client.sasl.username": "clowder",
        "kafka.client.fetch.wait.max.ms": "file",
        "postgres.dsn": "clowder",
        "pushgateway.url": "environment",
        "batch.max_messages": "default",
    }
    over = load_sources(path, {**env, "ETL_KAFKA__BOOTSTRAP_SERVERS": "env:1"})
    assert over.config.kafka.bootstrap_servers == "env:1"
    assert over.origin("kafka.bootstrap_servers") == "environment"


def test_requested_topic_names_are_translated_whatever_their_source(tmp_path: Path) -> None:
    topics = {"ccx.ocp.results": "real-results", "platform.payload-status": "real-tracker"}
    env = acg(tmp_path, document(brokers=[broker("k:1")], topics=topics))
    default = load_sources(None, env)
    assert default.config.kafka.topic == "real-results"
    assert default.origin("kafka.topic") == "clowder, requested as ccx.ocp.results (default)"
    assert default.config.tracker.topic == ""  # no tracker asked for: none
    tracked = load_sources(None, {**env, "ETL_TRACKER__TOPIC": "platform.payload-status"})
    assert tracked.config.tracker.topic == "real-tracker"
    assert tracked.origin("tracker.topic") == (
        "clowder, requested as platform.payload-status (environment)"
    )


def test_a_topic_clowder_does_not_list_is_kept_with_a_warning(tmp_path: Path) -> None:
    env = acg(tmp_path, document(brokers=[broker("k:1")], topics={"other": "real-other"}))
    backfill = load_sources(None, {**env, "ETL_KAFKA__TOPIC": "ccx.ocp.results.backfill"})
    assert backfill.config.kafka.topic == "ccx.ocp.results.backfill"
    assert backfill.origin("kafka.topic") == "environment"
    assert backfill.notices == (
        (
            "clowder_topic_not_mapped",
            {"key": "kafka.topic", "topic": "ccx.ocp.results.backfill", "file": env["ACG_CONFIG"]},
        ),
    )
    without_kafka = acg(tmp_path, document(database=example()["database"]))
    assert load_sources(None, without_kafka).notices == ()  # nothing to translate with


def test_the_cli_logs_the_warning_for_an_unmapped_topic(tmp_path: Path) -> None:
    env = acg(tmp_path, document(brokers=[broker("k:1")], topics={}))
    result = CliRunner().invoke(
        app, ["config", "show"], env={**NO_ETL_ENV, **env, "ETL_LOG__FORMAT": "json"}
    )
    assert result.exit_code == 0, result.output
    event = json.loads(result.stderr.strip())
    assert (event["level"], event["event"], event["topic"]) == (
        "warning",
        "clowder_topic_not_mapped",
        "ccx.ocp.results",
    )


def test_config_show_names_each_source_and_masks_every_secret(tmp_path: Path) -> None:
    path = tmp_path / "etl.toml"
    path.write_text("[batch]\nmax_messages = 50\n")
    env = {
        **NO_ETL_ENV,
        "ACG_CONFIG": str(EXAMPLE),
        "ETL_LOG__LEVEL": "DEBUG",
        "ETL_LOG__FORMAT": "text",
    }
    result = CliRunner().invoke(app, ["config", "show", "--config", str(path)], env=env)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert not [s for s in SECRETS if s in result.output]
    lines = out.splitlines()
    assert lines[:2] == [
        "# sources, later wins: default < file < clowder < environment",
        f"# file {path}; clowder {EXAMPLE} (ACG_CONFIG)",
    ]
    assert "max_messages = 50  # file" in lines
    assert 'level = "DEBUG"  # environment' in lines
    assert 'group_id = "etl"  # default' in lines
    assert '"sasl.password" = "***"  # clowder' in lines
    assert (
        'topic = "env-example-ccx.ocp.results"  # clowder, requested as ccx.ocp.results (default)'
        in lines
    )
    shown = tomllib.loads(out)  # comments only: still a configuration file
    assert "password=***" in shown["postgres"]["dsn"]
    assert shown["pushgateway"]["url"] == "http://prometheus-pushgateway.example.svc:9091"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "No such file or directory"),
        ('{"kafka": [', "invalid JSON: Expecting value at line 1 column 12"),
        ("[]", "the document: expected an object, got an array"),
        ('{"kafka": {"brokers": {}}}', "kafka.brokers: expected an array, got an object"),
        (
            '{"database": {"hostname": "h", "port": "FIXTURE-db-password"}}',
            "database.port: expected a port number, got a string",
        ),
        (
            '{"kafka": {"brokers": [{"hostname": "h", "sasl": {"password": 7}}], "topics": []}}',
            "kafka.brokers[0].sasl.password: expected a non-empty string, got a number",
        ),
        ('{"prometheusGateway": {"hostname": "h"}}', "prometheusGateway.port: expected a port"),
    ],
)
@pytest.mark.parametrize("command", [["run"], ["config", "show"], ["check"]])
def test_a_missing_or_malformed_file_is_exit_2_with_one_line_naming_it(
    tmp_path: Path, content: str | None, problem: str, command: list[str]
) -> None:
    path = tmp_path / "cdappconfig.json"
    if content is not None:
        path.write_text(content)
    env = {**NO_ETL_ENV, "ACG_CONFIG": str(path), "ETL_LOG__FORMAT": "text"}
    result = CliRunner().invoke(app, command, env=env)
    assert result.exit_code == 2
    assert result.stdout == ""
    line = f"etl: error: ACG_CONFIG file {path}: {problem}"
    assert result.stderr.startswith(line), result.stderr
    assert result.stderr.count("\n") == 1
    assert "FIXTURE" not in result.stderr


def test_an_empty_acg_config_means_no_clowder() -> None:
    loaded = load_sources(None, {"ACG_CONFIG": ""})
    assert loaded.clowder is None
    assert loaded.config.kafka.bootstrap_servers == "127.0.0.1:9092"
