"""What the command line refuses ends in one ``etl: error:`` line and exit 2; help shows flags."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from etl.cli.app import app

CLOSED_DSN = "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2"


def invoke(*args: str, fmt: str = "text", **env: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env={"ETL_LOG__FORMAT": fmt, **env})


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["run", "--dry-run", "true"],
            "etl: error: run: --dry-run is a flag and takes no value: give --dry-run alone or "
            "leave it out",
        ),
        (
            ["check", "--timeout", "0"],
            "etl: error: check: Invalid value for '--timeout'",
        ),
        (
            ["cleanup", "new-reports", "--max-agee", "1 day"],
            "etl: error: cleanup new-reports: No such option: --max-agee",
        ),
        (["runs", "--limit", "x"], "etl: error: runs: Invalid value for '--limit'"),
        (["plan", "--output", "xml"], "etl: error: plan: Invalid value for '--output'"),
        (
            ["cleanup", "reported", "--output", "yaml"],
            "etl: error: cleanup reported: Invalid value for '--output'",
        ),
        (["nope"], "etl: error: No such command 'nope'."),
    ],
)
def test_what_the_parser_refuses_is_one_line_and_exit_2(args: list[str], line: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(line), result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["cleanup", "--dry-run"],
            "etl: error: cleanup: missing subcommand before --dry-run; one of: new-reports, "
            "read-errors, rejections, reported",
        ),
        (
            ["cleanup"],
            "etl: error: cleanup: missing subcommand; one of: new-reports, read-errors, "
            "rejections, reported",
        ),
        (
            ["db", "--dsn", "postgresql://x"],
            "etl: error: db: missing subcommand before --dsn; one of: drop, init, migrate, version",
        ),
        (
            ["--dry-run"],
            "etl: error: missing command before --dry-run; one of: check, cleanup, config, db, "
            "plan, run, runs, verify",
        ),
        # An option no subcommand has is no sign of a missing subcommand.
        (["cleanup", "--bogus"], "etl: error: cleanup: No such option: --bogus"),
    ],
)
def test_a_group_given_no_subcommand_says_so_and_lists_them(args: list[str], line: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr == line + "\n"
    assert result.stdout == ""


def test_with_json_logs_the_last_line_is_the_failure_as_a_json_event() -> None:
    result = invoke("run", "--bogus", fmt="json")
    assert result.exit_code == 2
    first, last = result.stderr.splitlines()
    assert first == "etl: error: run: No such option: --bogus"
    event = orjson.loads(last)
    assert (event["level"], event["event"], event["exit_code"]) == ("error", "command_failed", 2)
    assert event["error"] == "run: No such option: --bogus"


def test_a_configuration_error_with_json_logs_ends_in_a_json_event_too() -> None:
    result = invoke("config", "show", fmt="json", ETL_BATCH__MAX_MESSAGES="0")
    assert result.exit_code == 2
    assert orjson.loads(result.stderr.splitlines()[-1])["error"] == (
        "batch.max_messages: must be >= 1"
    )


@pytest.mark.parametrize(
    "command", [["run"], ["plan"], ["runs"], ["cleanup", "reported"], ["db", "migrate"], []]
)
def test_help_shows_flags_without_a_value(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout
    assert "--help " in result.stdout


def test_no_arguments_prints_the_help() -> None:
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 0
    assert "Commands" in result.stdout
