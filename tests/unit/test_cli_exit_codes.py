"""Each command's --help lists the exit codes it can return, worded from the one table in
etl.core.errors: a code only another command returns (7, the Pushgateway's) is not listed."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from etl.cli.app import app
from etl.core.errors import EXIT_CODES, PushgatewayUnavailable, exit_codes_help


def listed(command: list[str]) -> dict[int, str]:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    epilog = result.stdout.split("Exit codes:", 1)[1]
    return {
        int(m[1]): m[2].strip() for m in re.finditer(r"^\s*(\d+): (.*?)\s*$", epilog, re.MULTILINE)
    }


def test_run_does_not_list_the_pushgateway_code_and_check_does() -> None:
    assert 7 not in listed(["run"])
    assert listed(["check"])[7] == "Pushgateway unavailable"


@pytest.mark.parametrize(
    ("command", "codes"),
    [
        (["run"], [0, 1, 2, 3, 4, 5, 6, 8, 9]),
        (["check"], [0, 1, 2, 3, 4, 5, 7, 8, 9]),
        (["plan"], [0, 1, 2, 3, 9]),
        (["runs"], [0, 1, 2, 4, 5, 8]),
        (["db", "migrate"], [0, 1, 2, 4, 5, 8]),
        (["cleanup", "new-reports"], [0, 1, 2, 4, 5, 8]),
        (["config", "show"], [0, 1, 2]),
    ],
)
def test_help_lists_exactly_the_codes_the_command_can_return(
    command: list[str], codes: list[int]
) -> None:
    found = listed(command)
    assert list(found) == codes
    assert all(found[code] == EXIT_CODES[code] for code in codes if code != 0)


def test_the_help_text_of_a_code_comes_from_the_table_and_zero_can_be_reworded() -> None:
    assert exit_codes_help(PushgatewayUnavailable, PushgatewayUnavailable, ok="fine") == (
        f"0: fine\n1: {EXIT_CODES[1]}\n2: {EXIT_CODES[2]}\n7: {EXIT_CODES[7]}"
    )
