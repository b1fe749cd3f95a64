"""etl cleanup: old (1990) rows go, new (2990) rows stay, in chunks; dry runs change nothing."""

from __future__ import annotations

import orjson
import pytest

from etl.core.errors import ConfigError
from etl.core.interval import parse_max_age
from tests.helpers.db import (
    CLUSTER_A,
    CLUSTER_B,
    build_reference,
    etl,
    execute,
    insert_sample_rows,
    query,
)

CLOSED_DSN = "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2"
OLD, NEW = "1990-01-01 00:00:00", "2990-01-01 00:00:00"
CLUSTER_C = "33333333-3333-3333-3333-333333333333"


@pytest.fixture
def filled(schema_db: str) -> str:
    """Latest schema with old and new rows in every table etl cleans."""
    execute(
        schema_db,
        f"""INSERT INTO new_reports (org_id, account_number, cluster, report, updated_at)
            VALUES (1, 10, '{CLUSTER_A}', '{{}}', '{OLD}'), (2, 20, '{CLUSTER_B}', '{{}}', '{OLD}'),
                   (3, 30, '{CLUSTER_C}', '{{}}', '{NEW}')""",
        f"""INSERT INTO read_errors (org_id, cluster, updated_at, error_text, created_at)
            VALUES (1, '{CLUSTER_A}', '{OLD}', 'e1', '{OLD}'),
                   (3, '{CLUSTER_C}', '{NEW}', 'e3', '{NEW}')""",
        f"""INSERT INTO reported (org_id, account_number, cluster, notification_type, state,
                report, updated_at, notified_at, event_type_id)
            VALUES (1, 10, '{CLUSTER_A}', 1, 1, 'r', '{OLD}', '{OLD}', 1),
                   (3, 30, '{CLUSTER_C}', 1, 1, 'r', '{NEW}', '{NEW}', 1)""",
        f"""INSERT INTO rejected_messages (topic, kafka_partition, kafka_offset, reason, detail,
                raw_size, rejected_at)
            VALUES ('t', 0, 1, 'invalid_json', 'd', 0, '{OLD}+00'),
                   ('t', 0, 2, 'invalid_json', 'd', 0, '{NEW}+00')""",
    )
    return schema_db


def keys(dsn: str, table: str, column: str = "org_id") -> list[object]:
    return [r[0] for r in query(dsn, f"SELECT {column} FROM {table} ORDER BY 1")]


def test_new_reports_cleanup_deletes_old_rows_in_chunks_and_cascades(filled: str) -> None:
    result = etl(filled, "cleanup", "new-reports", "--max-age", "30 days", "--chunk-size", "1")
    assert result.exit_code == 0, result.output
    assert "deleted 2 row(s) of new_reports older than 30 days" in result.stdout
    assert "in 3 chunk(s)" in result.stdout
    assert keys(filled, "new_reports") == [3]
    assert keys(filled, "read_errors") == [3]  # ON DELETE CASCADE
    assert keys(filled, "reported") == [1, 3]


def test_reported_cleanup_uses_the_default_max_age(filled: str) -> None:
    result = etl(filled, "cleanup", "reported")
    assert result.exit_code == 0, result.output
    assert "deleted 1 row(s) of reported older than 7 days" in result.stdout
    assert keys(filled, "reported") == [3]
    assert keys(filled, "new_reports") == [1, 2, 3]


def test_read_errors_cleanup(filled: str) -> None:
    result = etl(filled, "cleanup", "read-errors", "--max-age", "1 year")
    assert result.exit_code == 0, result.output
    assert keys(filled, "read_errors") == [3]
    assert keys(filled, "new_reports") == [1, 2, 3]


def test_rejections_cleanup_by_rejection_time(filled: str) -> None:
    result = etl(filled, "cleanup", "rejections", "--max-age", "2 weeks")
    assert result.exit_code == 0, result.output
    assert keys(filled, "rejected_messages", "kafka_offset") == [2]


def test_dry_run_lists_json_lines_and_changes_nothing(filled: str) -> None:
    result = etl(filled, "cleanup", "new-reports", "--dry-run")
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(r["org_id"], r["account_number"], r["cluster"], r["updated_at"]) for r in rows] == [
        (1, 10, CLUSTER_A, "1990-01-01T00:00:00"),
        (2, 20, CLUSTER_B, "1990-01-01T00:00:00"),
    ]
    assert all(r["age_days"] > 12000 for r in rows)
    assert result.stderr == (
        "dry run: 2 row(s) of new_reports older than 7 days would be deleted\n"
    )
    assert keys(filled, "new_reports") == [1, 2, 3]
    assert keys(filled, "read_errors") == [1, 3]


def test_dry_run_as_a_table(filled: str) -> None:
    result = etl(filled, "cleanup", "reported", "--dry-run", "--output", "table")
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["org_id", "account_number", "cluster", "updated_at", "age_days"]
    assert len(lines) == 1
    assert lines[0].split()[:3] == ["1", "10", CLUSTER_A]
    assert keys(filled, "reported") == [1, 3]


@pytest.mark.parametrize("name", ["read-errors", "rejections"])
def test_dry_run_of_the_other_tables_changes_nothing(filled: str, name: str) -> None:
    result = etl(filled, "cleanup", name, "--dry-run", "--output", "json")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1
    assert "dry run: 1 row(s)" in result.stderr
    assert len(query(filled, "SELECT * FROM read_errors")) == 2
    assert len(query(filled, "SELECT * FROM rejected_messages")) == 2


def test_truncate_empties_reported(filled: str) -> None:
    result = etl(filled, "cleanup", "reported", "--truncate", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout == "emptied reported (2 row(s))\n"
    assert keys(filled, "reported") == []
    assert keys(filled, "new_reports") == [1, 2, 3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--truncate",), "--truncate deletes every row of reported; add --yes"),
        (("--truncate", "--yes", "--dry-run"), "--truncate empties the table: no --max-age"),
        (("--truncate", "--yes", "--max-age", "1 day"), "--truncate empties the table"),
    ],
)
def test_truncate_usage_errors_change_nothing(
    filled: str, args: tuple[str, ...], message: str
) -> None:
    result = etl(filled, "cleanup", "reported", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert keys(filled, "reported") == [1, 3]


@pytest.mark.parametrize("name", ["new-reports", "reported", "read-errors", "rejections"])
@pytest.mark.parametrize(
    ("max_age", "message"),
    [
        ("seven days", "--max-age: 'seven days' is not an interval like '7 days'"),
        ("7 dayz", "--max-age: unknown unit 'dayz' in '7 dayz'"),
        ("0 days", "--max-age: must be greater than zero"),
        ("-1 day", "is not an interval"),
        ("7", "is not an interval"),
        ("1 day; DROP TABLE reported", "is not an interval"),
        ("5000 years", "--max-age: must be at most 1000 years"),
    ],
)
def test_a_malformed_interval_is_a_usage_error_before_any_sql(
    name: str, max_age: str, message: str
) -> None:
    result = etl(CLOSED_DSN, "cleanup", name, "--max-age", max_age)  # never connects
    assert result.exit_code == 2
    assert result.stderr.startswith("etl: error: --max-age: ")
    assert message in result.stderr


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("7 days", "7 days"),
        (" 1 DAY 12 hours ", "1 day 12 hours"),
        ("90min", "90 minutes"),
        ("2 weeks", "2 weeks"),
        ("1 mon", "1 month"),
        ("30s", "30 seconds"),
    ],
)
def test_max_age_is_canonicalised(text: str, canonical: str) -> None:
    assert parse_max_age(text) == canonical


def test_max_age_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        parse_max_age("")


def test_a_table_missing_at_this_version_exits_5(database: str) -> None:
    etl(database, "db", "migrate", "--to", "4")
    result = etl(database, "cleanup", "read-errors")
    assert result.exit_code == 5
    assert "read_errors" in result.stderr
    assert "run 'etl db migrate'" in result.stderr


def test_a_delete_refused_by_an_old_foreign_key_exits_5(database: str) -> None:
    build_reference(database, 5)  # read_errors' foreign key has no ON DELETE CASCADE yet
    insert_sample_rows(database, 5)
    result = etl(database, "cleanup", "new-reports", "--max-age", "1 day")
    assert result.exit_code == 5
    assert "new_reports: delete refused, chunk rolled back" in result.stderr
    assert len(query(database, "SELECT * FROM new_reports")) == 2


def test_postgresql_unavailable_exits_4() -> None:
    result = etl(CLOSED_DSN, "cleanup", "new-reports")
    assert result.exit_code == 4
    assert result.stderr.startswith("etl: error: PostgreSQL unavailable")


def test_dry_run_limit_lists_the_oldest_and_says_how_many_in_all(filled: str) -> None:
    result = etl(filled, "cleanup", "new-reports", "--dry-run", "--limit", "1", "--output", "json")
    assert result.exit_code == 0, result.output
    assert [orjson.loads(line)["org_id"] for line in result.stdout.splitlines()] == [1]
    assert result.stderr == (
        "dry run: 2 row(s) of new_reports older than 7 days would be deleted"
        " (listed the oldest 1; --limit 0 lists all)\n"
    )


def test_count_only_prints_one_line_and_deletes_nothing(filled: str) -> None:
    result = etl(filled, "cleanup", "new-reports", "--count", "--max-age", "1 day")
    assert result.exit_code == 0, result.output
    assert result.stdout == "2 row(s) of new_reports older than 1 day would be deleted\n"
    assert keys(filled, "new_reports") == [1, 2, 3]


def test_cleanup_takes_dsn_over_the_configured_database(filled: str) -> None:
    result = etl(CLOSED_DSN, "cleanup", "rejections", "--count", "--dsn", filled)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("1 row(s) of rejected_messages")
