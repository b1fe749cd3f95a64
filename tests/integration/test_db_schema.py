"""etl db init/migrate/version/drop and schema.sql against a real PostgreSQL, one DB per test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from etl.core.migrations import DROP_ORDER, LATEST
from tests.helpers.db import (
    CLUSTER_A,
    CLUSTER_B,
    build_reference,
    catalog,
    etl,
    execute,
    extra_database,
    insert_sample_rows,
    query,
)
from tests.helpers.services import ROOT, SCHEMA, Services

CLOSED_DSN = "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2"


@pytest.fixture(scope="module")
def latest_catalog(services: Services) -> Iterator[dict[str, Any]]:
    """The catalog `etl db init` builds on an empty database."""
    with extra_database(services.postgres_dsn) as dsn:
        assert etl(dsn, "db", "init").exit_code == 0
        yield catalog(dsn)


def version(dsn: str) -> int | None:
    if not query(dsn, "SELECT to_regclass('migration_info')")[0][0]:
        return None
    return int(query(dsn, "SELECT version FROM migration_info")[0][0])


def test_init_on_an_empty_database_creates_the_latest_schema(database: str) -> None:
    result = etl(database, "db", "init")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"created schema version {LATEST} ({LATEST + 1} migration steps)\n"
    assert version(database) == LATEST
    tables = {
        r[0]
        for r in query(
            database, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
    }
    assert tables == set(DROP_ORDER)
    comments = query(
        database,
        "SELECT relname, obj_description(oid, 'pg_class') FROM pg_class WHERE relname = ANY(%s)",
        (list(DROP_ORDER),),
    )
    assert all(comment for _, comment in comments), comments


def test_init_twice_is_a_no_op(database: str) -> None:
    etl(database, "db", "init")
    before = catalog(database)
    result = etl(database, "db", "init")
    assert result.exit_code == 0
    assert result.stdout == f"schema already at version {LATEST}; nothing to do\n"
    assert catalog(database) == before


def test_init_on_an_older_version_asks_for_migrate_and_changes_nothing(database: str) -> None:
    build_reference(database, 4)
    before = catalog(database)
    result = etl(database, "db", "init")
    assert result.exit_code == 5
    assert "database schema is at version 4, latest is 13: run 'etl db migrate'" in result.stderr
    assert catalog(database) == before


def test_schema_sql_builds_exactly_what_init_builds(
    database: str, latest_catalog: dict[str, Any]
) -> None:
    execute(database, SCHEMA.read_text())
    execute(database, SCHEMA.read_text())  # idempotent
    assert catalog(database) == latest_catalog


def test_psql_f_schema_sql_records_the_latest_version(database: str) -> None:
    for _ in range(2):
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(SCHEMA), database],
            check=True,
            capture_output=True,
        )
    result = etl(database, "db", "version")
    assert result.stdout == f"current: {LATEST}\nlatest: {LATEST}\n"
    assert etl(database, "db", "init").stdout.startswith("schema already at version")


def test_schema_sql_refuses_a_database_at_another_version(database: str) -> None:
    build_reference(database, 6)
    before = catalog(database)
    run = subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "-f",
            str(SCHEMA),
            database,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert "run etl db migrate instead" in run.stderr
    assert catalog(database) == before


@pytest.mark.parametrize("reference_version", range(9))
def test_a_reference_built_database_is_adopted_without_data_loss(
    database: str, latest_catalog: dict[str, Any], reference_version: int
) -> None:
    build_reference(database, reference_version)
    insert_sample_rows(database, reference_version)
    result = etl(database, "db", "migrate")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(f"schema at version {LATEST}\n")
    assert catalog(database) == latest_catalog
    assert query(
        database,
        "SELECT org_id, account_number, cluster, report, kafka_offset, "
        "kafka_partition FROM new_reports ORDER BY org_id",
    ) == [
        (1, 10, CLUSTER_A, '{"reports":[]}', 5, 0),
        (2, 20, CLUSTER_B, '{"reports":[1]}', 6, 0),
    ]
    # event_type_id: null before version 4 became 1; an explicit 2 (set at 3+) is kept.
    expected_b = 2 if reference_version >= 3 else 1
    assert query(
        database, "SELECT org_id, state, error_log, event_type_id FROM reported ORDER BY org_id"
    ) == [(1, 1, None, 1), (2, 4, "boom", expected_b)]
    errors = query(database, "SELECT org_id, error_text FROM read_errors")
    assert errors == ([(1, "bad")] if reference_version >= 5 else [])


def test_migrate_down_through_every_version_matches_the_reference_and_back(
    database: str, services: Services, latest_catalog: dict[str, Any]
) -> None:
    etl(database, "db", "init")
    insert_sample_rows(database, LATEST)
    execute(database, "UPDATE reported SET event_type_id = 1")  # else step 3 down is refused
    with extra_database(services.postgres_dsn) as reference:
        build_reference(reference, 0)
        expected = {0: catalog(reference)}
        for v in range(1, 9):
            build_reference(reference, v, start=v)
            expected[v] = catalog(reference)
    for target in range(LATEST - 1, -1, -1):
        result = etl(database, "db", "migrate", "--to", str(target), "--yes")
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[0].startswith(f"down to {target}:")
        if target in expected:  # the reference's versions; etl's own are checked by schema.sql
            assert catalog(database) == expected[target], f"version {target}"
        assert len(query(database, "SELECT * FROM new_reports")) == 2
        assert len(query(database, "SELECT * FROM reported")) == 2
    result = etl(database, "db", "migrate", "--to", "latest")
    assert result.exit_code == 0, result.output
    assert catalog(database) == latest_catalog
    assert query(database, "SELECT org_id, event_type_id FROM reported ORDER BY 1") == [
        (1, 1),
        (2, 1),
    ]


def test_a_refused_down_step_rolls_back_and_keeps_the_steps_before(database: str) -> None:
    etl(database, "db", "init")
    insert_sample_rows(database, LATEST)  # a reported row points at event target 2
    result = etl(database, "db", "migrate", "--to", "2", "--yes")
    assert result.exit_code == 5
    assert "migration step down to version 2 failed and was rolled back" in result.stderr
    assert "foreign key" in result.stderr
    assert version(database) == 3
    assert query(database, "SELECT count(*) FROM event_targets") == [(2,)]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("text", "--to: expected a version number 0..13 or 'latest', got 'text'"),
        ("-1", "--to: version -1 is out of range 0..13"),
        ("14", "--to: version 14 is out of range 0..13"),
    ],
)
def test_an_invalid_target_is_a_usage_error_that_changes_nothing(
    database: str, target: str, message: str
) -> None:
    build_reference(database, 5)
    before = catalog(database)
    result = etl(database, "db", "migrate", "--to", target)
    assert result.exit_code == 2
    assert result.stderr == f"etl: error: {message}\n"
    assert catalog(database) == before


def test_an_invalid_target_fails_before_connecting() -> None:
    result = etl(CLOSED_DSN, "db", "migrate", "--to", "abc")
    assert result.exit_code == 2


def test_migrating_down_needs_yes(database: str) -> None:
    etl(database, "db", "init")
    result = etl(database, "db", "migrate", "--to", "3")
    assert result.exit_code == 2
    assert result.stderr == "etl: error: migrating down from 13 to 3 drops data; add --yes\n"
    assert version(database) == LATEST


def test_a_newer_schema_version_is_refused(database: str) -> None:
    etl(database, "db", "init")
    execute(database, "UPDATE migration_info SET version = 42")
    for args in (("db", "migrate"), ("db", "init")):
        result = etl(database, *args)
        assert result.exit_code == 5
        assert "version 42 is newer than this etl knows (latest 13)" in result.stderr


def test_version_reports_current_and_latest(database: str) -> None:
    assert etl(database, "db", "version").stdout == f"current: none\nlatest: {LATEST}\n"
    build_reference(database, 8)
    assert etl(database, "db", "version").stdout == f"current: 8\nlatest: {LATEST}\n"
    execute(database, "INSERT INTO migration_info VALUES (3)")
    result = etl(database, "db", "version")
    assert result.exit_code == 5
    assert "migration_info holds 2 rows, expected exactly one" in result.stderr


@pytest.mark.parametrize("start", [None, 0, 5, 8, LATEST])
def test_drop_removes_every_table_at_any_version(database: str, start: int | None) -> None:
    if start == LATEST:
        etl(database, "db", "init")
        insert_sample_rows(database, LATEST)
    elif start is not None:
        build_reference(database, start)
        insert_sample_rows(database, start)
    result = etl(database, "db", "drop", "--yes")
    assert result.exit_code == 0, result.output
    assert query(
        database, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
    ) == [(0,)]
    assert etl(database, "db", "init").exit_code == 0


def test_drop_needs_yes(database: str) -> None:
    etl(database, "db", "init")
    result = etl(database, "db", "drop")
    assert result.exit_code == 2
    assert result.stderr == "etl: error: drop deletes every table and its data; add --yes\n"
    assert version(database) == LATEST


@pytest.mark.parametrize(
    "args", [("db", "init"), ("db", "version"), ("db", "migrate"), ("db", "drop", "--yes")]
)
def test_postgresql_unavailable_exits_4(args: tuple[str, ...]) -> None:
    result = etl(CLOSED_DSN, *args)
    assert result.exit_code == 4
    assert result.stderr.startswith("etl: error: PostgreSQL unavailable at ")


def test_the_etl_command_itself_runs_migrations(database: str) -> None:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    run = subprocess.run(
        [sys.executable, "-m", "etl", "db", "init"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**clean_env, "ETL_POSTGRES__DSN": database},
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert version(database) == LATEST


def test_reports_are_lz4_compressed_by_init_and_by_schema_sql(
    database: str, make_database: Callable[[], str]
) -> None:
    etl(database, "db", "init")
    other = make_database()
    execute(other, SCHEMA.read_text())
    for dsn in (database, other):
        assert query(
            dsn,
            "SELECT attcompression FROM pg_attribute"
            " WHERE attrelid = 'new_reports'::regclass AND attname = 'report'",
        ) == [("l",)]


def test_read_errors_are_found_by_report_key_and_age_through_indexes(database: str) -> None:
    etl(database, "db", "init")
    ours = ("read_errors_org_id_cluster_updated_at_idx", "read_errors_updated_at_idx")
    for where in (
        "org_id = 1 AND cluster = 'x' AND updated_at = now()",  # the cascade's lookup
        "updated_at < now()",  # cleanup read-errors
    ):
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("SET enable_seqscan = off")
            plan = " ".join(
                line for (line,) in conn.execute("EXPLAIN SELECT 1 FROM read_errors WHERE " + where)
            )
        # without them the only index is the unique one led by error_id: a full index scan
        assert any(index in plan for index in ours), plan
