"""etl config show (TOML, secrets masked), the TOML emitter, and every command's --help."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from etl.cli.app import app
from etl.cli.render import table_lines, to_toml
from etl.core.config_sources import load_config
from etl.kafka.offsets import CLIENT_DEFAULTS

NO_ETL_ENV = {k: None for k in os.environ if k.startswith("ETL_")}


def show(*args: str, **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["config", "show", *args], env={**NO_ETL_ENV, **env})
    return result.exit_code, result.stdout, result.stderr


def shown(masked: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What config show prints for ``masked``: [kafka.client] over etl's defaults."""
    kafka = {**masked["kafka"], "client": {**CLIENT_DEFAULTS, **masked["kafka"]["client"]}}
    return {**masked, "kafka": kafka}


def test_config_show_prints_the_effective_configuration_as_toml(tmp_path: Path) -> None:
    path = tmp_path / "etl.toml"
    path.write_text('[kafka]\ntopic = "from-file"\n[batch]\nmax_messages = 50\n')
    code, out, _ = show("--config", str(path), ETL_BATCH__MAX_MESSAGES="70")
    assert code == 0
    data = tomllib.loads(out)
    assert data["kafka"]["topic"] == "from-file"
    assert data["batch"]["max_messages"] == 70  # environment wins over the file
    assert data == shown(load_config(path, {"ETL_BATCH__MAX_MESSAGES": "70"}).masked())


def test_config_show_masks_secrets() -> None:
    code, out, _ = show(
        ETL_POSTGRES__DSN="postgresql://etl:hunter2@db.example:5432/notifications",
        ETL_KAFKA__CLIENT__SASL_PASSWORD="kafka-secret",
        ETL_KAFKA__CLIENT__SECURITY_PROTOCOL="SASL_SSL",
    )
    assert code == 0
    assert "hunter2" not in out
    assert "kafka-secret" not in out
    data = tomllib.loads(out)
    assert "password=***" in data["postgres"]["dsn"]
    assert data["kafka"]["client"] == {
        **CLIENT_DEFAULTS,
        "sasl.password": "***",
        "security.protocol": "SASL_SSL",
    }


def test_config_show_output_loads_back_as_a_config_file(tmp_path: Path) -> None:
    code, out, _ = show(ETL_PUSHGATEWAY__GROUPING_KEY__WORKER="3", ETL_LOG__LEVEL="DEBUG")
    assert code == 0
    path = tmp_path / "shown.toml"
    path.write_text(out)
    expected = load_config(
        None, {"ETL_PUSHGATEWAY__GROUPING_KEY__WORKER": "3", "ETL_LOG__LEVEL": "DEBUG"}
    )
    # The DSN is shown in libpq key=value form (password masked): same settings.
    # etl's [kafka.client] defaults are shown, so the file sets them: same settings.
    assert load_config(path, {}).masked() == shown(expected.masked())


def test_config_show_with_a_bad_key_exits_2() -> None:
    code, _, err = show(ETL_BATCH__MAX_MESSAGES="lots", ETL_LOG__FORMAT="text")
    assert code == 2
    assert (
        err
        == "etl: error: batch.max_messages: expected an integer, got a string of 4 character(s)\n"
    )


def test_toml_keys_and_strings_round_trip_through_tomllib() -> None:
    doc = {
        "s": {
            "k": 'a "quoted" \\ back\nslash\t\x01',
            "new\nline key": "v",
            "dotted.key": {"x.y": True, "tab\tkey": 1},
        }
    }
    assert tomllib.loads(to_toml(doc)) == doc


def test_table_columns_are_as_wide_as_their_widest_cell_and_numbers_align_right() -> None:
    rows: list[dict[str, Any]] = [{"org_id": 1, "name": "a"}, {"org_id": 12345678, "name": None}]
    lines = list(table_lines(["org_id", "name", "note"], rows))
    assert lines == ["  org_id  name  note", "       1  a     -", "12345678  -     -"]


def test_table_rows_after_the_measured_ones_are_streamed() -> None:
    rows = [{"k": "ab"}, {"k": "abcdef"}]
    assert list(table_lines(["k"], rows, sample=1)) == ["k", "ab", "abcdef"]


@pytest.mark.parametrize(
    ("command", "codes"),
    [
        (["db", "init"], ["0:", "2:", "4:", "5:"]),
        (["db", "migrate"], ["0:", "2:", "4:", "5:"]),
        (["db", "version"], ["0:", "2:", "4:", "5:"]),
        (["db", "drop"], ["0:", "2:", "4:", "5:"]),
        (["cleanup", "new-reports"], ["0:", "2:", "4:", "5:"]),
        (["cleanup", "reported"], ["0:", "2:", "4:", "5:"]),
        (["cleanup", "read-errors"], ["0:", "2:", "4:", "5:"]),
        (["cleanup", "rejections"], ["0:", "2:", "4:", "5:"]),
        (["check"], ["0:", "2:", "3:", "4:", "5:", "7:"]),
        (["config", "show"], ["0:", "2:"]),
    ],
)
def test_every_command_documents_its_exit_codes(command: list[str], codes: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Exit codes:" in result.stdout
    for code in codes:
        assert f" {code} " in result.stdout, (code, result.stdout)


def test_an_unknown_option_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["cleanup", "new-reports", "--max-agee", "1 day"])
    assert result.exit_code == 2
