"""etl config show prints [kafka.client] as the consumers get it: etl's librdkafka defaults,
each marked ``# default``, under the properties that were set (marked with their source)."""

from __future__ import annotations

import os
import tomllib

from typer.testing import CliRunner

from etl.cli.app import app
from etl.kafka.offsets import CLIENT_DEFAULTS

NO_ETL_ENV = {k: None for k in os.environ if k.startswith("ETL_")}


def client_lines(**env: str) -> tuple[list[str], dict[str, str]]:
    result = CliRunner().invoke(app, ["config", "show"], env={**NO_ETL_ENV, **env})
    assert result.exit_code == 0, result.output
    section = result.stdout.split("[kafka.client]\n", 1)[1].split("\n\n", 1)[0]
    return section.splitlines(), tomllib.loads(result.stdout)["kafka"]["client"]


def test_with_nothing_set_every_default_is_shown_and_marked() -> None:
    lines, client = client_lines()
    assert client == CLIENT_DEFAULTS
    assert lines == [f'"{key}" = "{value}"  # default' for key, value in CLIENT_DEFAULTS.items()]


def test_a_property_set_replaces_its_default_unmarked_and_a_new_one_follows() -> None:
    lines, client = client_lines(
        ETL_KAFKA__CLIENT__SESSION_TIMEOUT_MS="30000", ETL_KAFKA__CLIENT__SASL_PASSWORD="s3cret"
    )
    assert client == {**CLIENT_DEFAULTS, "session.timeout.ms": "30000", "sasl.password": "***"}
    assert '"session.timeout.ms" = "30000"  # environment' in lines
    assert lines[-1] == '"sasl.password" = "***"  # environment'
    assert '"heartbeat.interval.ms" = "1000"  # default' in lines
