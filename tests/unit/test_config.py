"""Configuration: file and environment sources, validation naming the key, secrets masked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl.cli.app import app
from etl.core.config_sources import NOT_CONFIG_VARS, load_config
from etl.core.errors import ConfigError
from etl.core.suggest import closest


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "etl.toml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_environment() -> None:
    cfg = load_config(None, {})
    assert cfg.batch.max_messages == 10_000
    assert cfg.batch.max_bytes == 64 * 1024 * 1024
    assert cfg.kafka.auto_offset_reset == "earliest"
    assert cfg.pushgateway.url == ""


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[kafka]\ntopic = "from-file"\ngroup_id = "g"\n[batch]\nmax_messages = 50\n'
    )
    cfg = load_config(path, {"ETL_KAFKA__TOPIC": "from-env", "ETL_BATCH__MAX_BYTES": "4096"})
    assert cfg.kafka.topic == "from-env"
    assert cfg.kafka.group_id == "g"
    assert cfg.batch.max_messages == 50
    assert cfg.batch.max_bytes == 4096


def test_the_exact_environment_names_of_the_contract() -> None:
    cfg = load_config(
        None,
        {
            "ETL_KAFKA__BOOTSTRAP_SERVERS": "k:1",
            "ETL_KAFKA__TOPIC": "t",
            "ETL_KAFKA__GROUP_ID": "g",
            "ETL_POSTGRES__DSN": "host=db dbname=x",
            "ETL_PUSHGATEWAY__URL": "http://p:9091",
            "ETL_BATCH__MAX_MESSAGES": "7",
            "ETL_BATCH__MAX_BYTES": "2048",
        },
    )
    assert (cfg.kafka.bootstrap_servers, cfg.kafka.topic, cfg.kafka.group_id) == ("k:1", "t", "g")
    assert cfg.postgres.dsn == "host=db dbname=x"
    assert cfg.pushgateway.url == "http://p:9091"
    assert (cfg.batch.max_messages, cfg.batch.max_bytes) == (7, 2048)


def test_config_file_from_etl_config_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka]\ntopic = "t2"\n')
    assert load_config(None, {"ETL_CONFIG": str(path)}).kafka.topic == "t2"


def test_librdkafka_properties_pass_through_file_and_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka.client]\n"security.protocol" = "SASL_SSL"\n')
    cfg = load_config(path, {"ETL_KAFKA__CLIENT__SASL_PASSWORD": "hunter2"})
    assert cfg.kafka.client == {"security.protocol": "SASL_SSL", "sasl.password": "hunter2"}


def test_secrets_are_masked_in_repr_and_masked_view() -> None:
    cfg = load_config(
        None,
        {
            "ETL_POSTGRES__DSN": "postgresql://etl:s3cret@db:5432/reports",
            "ETL_KAFKA__CLIENT__SASL_PASSWORD": "hunter2",
        },
    )
    shown = repr(cfg) + str(cfg.masked())
    assert "s3cret" not in shown
    assert "hunter2" not in shown
    assert "***" in cfg.masked()["postgres"]["dsn"]
    assert cfg.masked()["kafka"]["client"]["sasl.password"] == "***"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ETL_BATCH__MAX_MESSAGES": "ten"}, "batch.max_messages: expected an integer"),
        ({"ETL_BATCH__MAX_MESSAGES": "0"}, "batch.max_messages: must be >= 1"),
        ({"ETL_BATCH__MAX_SIZE": "1"}, "ETL_BATCH__MAX_SIZE: unknown configuration key"),
        ({"ETL_NOPE__X": "1"}, "ETL_NOPE__X: unknown configuration section"),
        ({"ETL_KAFKA__AUTO_OFFSET_RESET": "smallest"}, "kafka.auto_offset_reset: must be"),
        ({"ETL_PUSHGATEWAY__URL": "pgw:9091"}, "pushgateway.url: must start with http"),
        ({"ETL_POSTGRES__DSN": "host=db port"}, "postgres.dsn: not a valid libpq"),
        ({"ETL_KAFKA__TOPIC": ""}, "kafka.topic: must not be empty"),
        (
            {"ETL_KAFKA__CLIENT__PARTITION_ASSIGNMENT_STRATEGY": "cooperative-sticky"},
            "cooperative strategies are not supported",
        ),
        ({"ETL_KAFKA__CLIENT__GROUP_PROTOCOL": "consumer"}, "only the classic group protocol"),
    ],
)
def test_invalid_values_name_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, env)
    assert message in str(err.value)


def test_a_malformed_dsn_never_repeats_its_password() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, {"ETL_POSTGRES__DSN": "postgresql://u:s3%zzcret@h/db"})
    assert "zzcret" not in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_toml_and_unknown_sections_in_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[kafka\n"), {})
    with pytest.raises(ConfigError, match="nope: unknown configuration section"):
        load_config(write(tmp_path, "[nope]\nx = 1\n"), {})
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "missing.toml", {})


def test_cli_run_with_invalid_config_exits_2_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_BATCH__MAX_BYTES", "lots")
    monkeypatch.setenv("ETL_LOG__FORMAT", "text")
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "etl: error: batch.max_bytes: expected an integer, got a string of 4 character(s)"
    )


def test_cli_run_help_documents_the_exit_codes() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for code in (
        "0:",
        "2:",
        "3: Kafka unavailable",
        "4: PostgreSQL unavailable",
        "5: database schema missing",
        "6: interrupted",
    ):
        assert code in result.output


def test_cli_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("etl ")


def test_every_bad_key_is_reported_at_once_with_the_closest_name(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka]\ntopik = "t"\n[batch]\nmax_messages = "ten"\n[valdation]\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, {"ETL_POSTGRES__DNS": "x", "ETL_BATCH__MAX_BYTES": "1"})
    text = str(err.value)
    assert text.startswith("5 configuration problems: ")
    for part in (
        "kafka.topik: unknown configuration key (did you mean kafka.topic?)",
        "valdation: unknown configuration section (did you mean validation?)",
        "ETL_POSTGRES__DNS: unknown configuration key (did you mean ETL_POSTGRES__DSN?)",
        "batch.max_messages: expected an integer",
        "batch.max_bytes: must be >= 1024",
    ):
        assert part in text, part
    assert "\n" not in text


@pytest.mark.parametrize(
    ("var", "hint"),
    [
        (
            "ETL_KAFKA_TOPIC",
            "ETL_KAFKA_TOPIC: names no configuration key (did you mean ETL_KAFKA__TOPIC?)",
        ),
        ("ETL_KAFKA__CLIENT_SASL_PASSWORD", "(did you mean ETL_KAFKA__CLIENT__SASL_PASSWORD?)"),
        ("ETL_KAFKA__TOPIC__X", "ETL_KAFKA__TOPIC__X: expected ETL_<SECTION>__<KEY>"),
    ],
)
def test_an_etl_variable_that_names_no_key_is_reported(var: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, {var: "never-shown-value"})
    assert hint in str(err.value)
    assert "never-shown-value" not in str(err.value)


def test_the_dev_scripts_variables_are_not_configuration() -> None:
    cfg = load_config(None, {"ETL_SERVICES_DIR": "/tmp/x", "ETL_KAFKA_PORT": "1", "ETL_CONFIG": ""})
    assert cfg.kafka.topic == "ccx.ocp.results"


def test_closest_name_ignores_case_and_underscore_runs_and_gives_up_when_far() -> None:
    assert closest("ETL_KAFKA_TOPIC", ["ETL_KAFKA__TOPIC", "ETL_KAFKA__GROUP_ID"]) == (
        "ETL_KAFKA__TOPIC"
    )
    assert closest("topik", ["topic", "group_id"]) == "topic"
    assert closest("dns", ["dsn", "connect_timeout_seconds"]) == "dsn"
    assert closest("color", ["topic", "group_id"]) is None


def test_every_variable_of_the_dev_scripts_is_known_not_to_be_a_configuration_key() -> None:
    root = Path(__file__).resolve().parents[2]
    scripts = [*root.glob("dev/*.sh"), root / ".ci" / "run"]
    names = {
        name
        for script in scripts
        for name in re.findall(r"\bETL_[A-Z_]+\b", script.read_text())
        if "__" not in name and name != "ETL_CONFIG"
    }
    assert names <= NOT_CONFIG_VARS, names - NOT_CONFIG_VARS
