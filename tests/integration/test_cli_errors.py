"""Command-line behaviour that needs a real database: ``--dsn`` over the configured one."""

from __future__ import annotations

from collections.abc import Callable

from etl.core.migrations import LATEST
from tests.unit.test_cli_errors import CLOSED_DSN, invoke


def test_db_commands_take_dsn_over_the_configured_database(
    make_database: Callable[[], str],
) -> None:
    target = make_database()
    env = {"ETL_POSTGRES__DSN": CLOSED_DSN}
    migrated = invoke("db", "migrate", "--dsn", target, **env)
    assert migrated.exit_code == 0, migrated.output
    version = invoke("db", "version", "--dsn", target, **env)
    assert version.stdout.splitlines()[0] == f"current: {LATEST}"
    assert invoke("db", "init", "--dsn", target, **env).exit_code == 0
    without = invoke("db", "version", **env)
    assert without.exit_code == 4
    assert without.stderr.startswith("etl: error: PostgreSQL unavailable")
