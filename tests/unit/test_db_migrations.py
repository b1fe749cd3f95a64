"""The migration plan as pure data: numbering, planning, target parsing."""

from __future__ import annotations

import pytest

from etl.core.errors import ConfigError, SchemaConflict
from etl.core.migrations import LATEST, MIGRATIONS, next_step, parse_target, plan


def test_versions_are_contiguous_from_zero_and_continue_the_reference() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(LATEST + 1))
    assert LATEST == 13


def test_every_step_has_an_up_and_a_down() -> None:
    assert all(m.up and m.down for m in MIGRATIONS)


def test_an_empty_database_is_planned_through_every_step() -> None:
    steps = plan(None, LATEST)
    assert [(s.direction, s.to_version) for s in steps] == [("up", v) for v in range(LATEST + 1)]


def test_a_downgrade_runs_the_down_steps_newest_first() -> None:
    steps = plan(9, 6)
    assert [(s.direction, s.migration.version, s.to_version) for s in steps] == [
        ("down", 9, 8),
        ("down", 8, 7),
        ("down", 7, 6),
    ]
    assert steps[0].statements == MIGRATIONS[9].down


def test_nothing_to_do_at_the_target() -> None:
    assert next_step(LATEST, LATEST) is None


def test_a_version_newer_than_etl_knows_is_a_conflict() -> None:
    with pytest.raises(SchemaConflict, match="newer than this etl knows"):
        next_step(LATEST + 1, LATEST)


@pytest.mark.parametrize(("text", "version"), [("latest", LATEST), ("0", 0), (" 7 ", 7)])
def test_valid_targets(text: str, version: int) -> None:
    assert parse_target(text) == version


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "expected a version number 0..13 or 'latest', got 'abc'"),
        ("", "expected a version number"),
        ("1.5", "expected a version number"),
        ("-1", "version -1 is out of range 0..13"),
        ("14", "version 14 is out of range 0..13"),
    ],
)
def test_invalid_targets_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_target(text)
    assert info.value.exit_code == 2


def test_every_step_description_fits_a_100_column_line_as_etl_db_migrate_prints_it() -> None:
    for m in MIGRATIONS:
        line = f"up to {m.version}: {m.description}"
        assert len(line) <= 100, line
