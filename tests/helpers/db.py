"""Helpers for the schema tests: extra databases, a catalog snapshot, reference-built databases,
and a backup taken and restored as an operator does (`backup`, `restore`).

`build_reference` recreates, independently of etl's migrations, the databases the replaced Go
service left behind at each of its schema versions 0..8, so adoption is tested against the
history as documented rather than against our own steps.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from typer.testing import CliRunner, Result

from etl.cli.app import app


@contextmanager
def extra_database(admin_dsn: str) -> Iterator[str]:
    """A new empty database (its DSN), dropped afterwards."""
    name = f"etl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    try:
        yield make_conninfo(**{k: str(v) for k, v in params.items()})
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def etl(dsn: str, *args: str, **env: str | None) -> Result:
    """Run ``etl ARGS`` in-process against ``dsn``, as a user would, with text logs."""
    env = {"ETL_POSTGRES__DSN": dsn, "ETL_LOG__FORMAT": "text", **env}
    return CliRunner().invoke(app, list(args), env=env)


def query(dsn: str, text: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(text, params)
        return cur.fetchall() if cur.description else []


def execute(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


_CATALOG = {
    "tables": """SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
        ORDER BY 1""",
    "columns": """SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
            a.attnotnull, pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum""",
    "indexes": """SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = current_schema() ORDER BY 1, 2""",
    "constraints": """SELECT conrelid::regclass::text, conname, contype,
            pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2""",
    "sequences": """SELECT sequencename, data_type::text, start_value, increment_by
        FROM pg_sequences WHERE schemaname = current_schema() ORDER BY 1""",
}
_SEEDED = ("notification_types", "states", "event_targets", "migration_info")


def catalog(dsn: str) -> dict[str, Any]:
    """Everything that makes up the schema, plus the seed rows and the recorded version."""
    snap: dict[str, Any] = {name: query(dsn, text) for name, text in _CATALOG.items()}
    present = {row[0] for row in snap["tables"]}
    for table in _SEEDED:
        if table in present:
            snap[f"rows:{table}"] = sorted(query(dsn, f"SELECT * FROM {table}"))
    return snap


REFERENCE: dict[int, tuple[str, ...]] = {
    0: (
        "CREATE TABLE migration_info (version integer not null)",
        "INSERT INTO migration_info (version) VALUES (0)",
        """CREATE TABLE notification_types (id integer not null, value varchar not null,
            frequency varchar not null, comment varchar, PRIMARY KEY (id))""",
        """CREATE TABLE states (id integer not null, value varchar not null, comment varchar,
            PRIMARY KEY (id))""",
        """CREATE TABLE reported (org_id integer not null, account_number integer not null,
            cluster character(36) not null, notification_type integer not null,
            state integer not null, report varchar not null, updated_at timestamp not null,
            notified_at timestamp not null, error_log varchar,
            PRIMARY KEY (org_id, cluster, notified_at),
            CONSTRAINT fk_notification_type foreign key(notification_type)
                references notification_types(id),
            CONSTRAINT fk_state foreign key (state) references states(id))""",
        """CREATE TABLE new_reports (org_id integer not null, account_number integer not null,
            cluster character(36) not null, report varchar not null,
            updated_at timestamp not null, kafka_offset bigint not null default 0,
            PRIMARY KEY (org_id, cluster, updated_at))""",
        "CREATE INDEX report_kafka_offset_btree_idx ON new_reports (kafka_offset)",
        "CREATE INDEX new_reports_org_id_idx ON new_reports USING btree (org_id)",
        "CREATE INDEX new_reports_cluster_idx ON new_reports USING btree (cluster)",
        "CREATE INDEX new_reports_updated_at_asc_idx ON new_reports USING btree (updated_at ASC)",
        "CREATE INDEX new_reports_updated_at_desc_idx ON new_reports USING btree (updated_at DESC)",
        "CREATE INDEX notified_at_desc_idx ON reported USING btree (notified_at DESC)",
        "CREATE INDEX updated_at_desc_idx ON reported USING btree (updated_at ASC)",
        "CREATE INDEX notification_types_id_idx ON notification_types USING btree (id ASC)",
        """INSERT INTO notification_types (id, value, frequency, comment) VALUES
            (1, 'instant', '* * * * * *', 'instant notifications performed ASAP'),
            (2, 'weekly', '@weekly', 'weekly summary')""",
        """INSERT INTO states (id, value, comment) VALUES
            (1, 'sent', 'notification has been sent to user'),
            (2, 'same', 'skipped, report is the same as previous one'),
            (3, 'lower', 'skipped, all issues has low priority'),
            (4, 'error', 'notification delivery error')""",
    ),
    1: (
        """CREATE TABLE IF NOT EXISTS event_targets (id INTEGER NOT NULL,
            name VARCHAR NOT NULL UNIQUE, metainfo VARCHAR NOT NULL UNIQUE, PRIMARY KEY(id))""",
    ),
    2: (
        """ALTER TABLE reported ADD COLUMN IF NOT EXISTS event_type_id INTEGER,
            ADD FOREIGN KEY (event_type_id) REFERENCES event_targets(id)""",
    ),
    3: (
        """INSERT INTO event_targets (id, name, metainfo) VALUES
            (1, 'notifications backend',
             'the target of the report is the ccx notification service back end'),
            (2, 'service log', 'the target of the report is the ServiceLog')""",
    ),
    4: (
        "UPDATE reported SET event_type_id = 1 WHERE event_type_id IS NULL",
        "ALTER TABLE reported ALTER COLUMN event_type_id SET NOT NULL",
    ),
    5: (
        """CREATE TABLE IF NOT EXISTS read_errors (error_id serial primary key,
            org_id integer not null, cluster character(36) not null,
            updated_at timestamp not null, error_text varchar(1000) not null,
            created_at timestamp not null,
            FOREIGN KEY(org_id, cluster, updated_at)
                REFERENCES new_reports(org_id, cluster, updated_at),
            UNIQUE(error_id, org_id, cluster, updated_at))""",
    ),
    6: (
        """ALTER TABLE read_errors DROP CONSTRAINT IF EXISTS read_errors_org_id_fkey,
            DROP CONSTRAINT IF EXISTS read_errors_org_id_cluster_updated_at_fkey,
            ADD CONSTRAINT read_errors_org_id_cluster_updated_at_fkey
                FOREIGN KEY (org_id, cluster, updated_at)
                REFERENCES new_reports(org_id, cluster, updated_at) ON DELETE CASCADE""",
    ),
    7: (
        "COMMENT ON TABLE event_targets IS"
        " 'specification of all event targets currently supported'",
        "COMMENT ON TABLE migration_info IS"
        " 'information about the latest DB schema and migration status'",
        "COMMENT ON TABLE new_reports IS"
        " 'new reports consumed from Kafka topic and stored to database in shrunk format'",
        "COMMENT ON TABLE notification_types IS"
        " 'list of all notification types used by Notification service'",
        "COMMENT ON TABLE read_errors IS 'errors that are detected during new reports collection'",
        "COMMENT ON TABLE reported IS"
        " 'notifications reported to user or skipped due to some conditions'",
        "COMMENT ON TABLE states IS 'states for each row stored in reported table'",
    ),
    8: (
        "CREATE INDEX IF NOT EXISTS idx_reported_event_state_org_cluster"
        " ON reported(event_type_id, state, org_id, cluster)",
        "CREATE INDEX IF NOT EXISTS idx_reported_updated_at ON reported(updated_at)",
    ),
}


def build_reference(dsn: str, upto: int, start: int = 0) -> None:
    """Apply the reference's history ``start..upto`` and record ``upto`` as it did."""
    for version in range(start, upto + 1):
        execute(dsn, *REFERENCE[version])
        execute(dsn, f"UPDATE migration_info SET version = {version}")


CLUSTER_A = "11111111-1111-1111-1111-111111111111"
CLUSTER_B = "22222222-2222-2222-2222-222222222222"


def insert_sample_rows(dsn: str, version: int) -> None:
    """Rows in every table that exists at ``version``, as the notification service writes them."""
    execute(
        dsn,
        f"""INSERT INTO new_reports (org_id, account_number, cluster, report, updated_at,
            kafka_offset) VALUES (1, 10, '{CLUSTER_A}', '{{"reports":[]}}',
            '2024-01-01 10:00:00', 5), (2, 20, '{CLUSTER_B}', '{{"reports":[1]}}',
            '2024-01-02 10:00:00', 6)""",
    )
    event = ", event_type_id" if version >= 2 else ""
    value_a = ", 1" if version >= 4 else (", NULL" if version >= 2 else "")
    value_b = ", 2" if version >= 3 else (", NULL" if version >= 2 else "")
    execute(
        dsn,
        f"""INSERT INTO reported (org_id, account_number, cluster, notification_type, state,
            report, updated_at, notified_at, error_log{event}) VALUES
            (1, 10, '{CLUSTER_A}', 1, 1, 'r1', '2024-01-01 10:00:00', '2024-01-01 11:00:00',
             NULL{value_a}),
            (2, 20, '{CLUSTER_B}', 2, 4, 'r2', '2024-01-02 10:00:00', '2024-01-02 11:00:00',
             'boom'{value_b})""",
    )
    if version >= 5:
        execute(
            dsn,
            f"""INSERT INTO read_errors (org_id, cluster, updated_at, error_text, created_at)
                VALUES (1, '{CLUSTER_A}', '2024-01-01 10:00:00', 'bad', '2024-01-03 00:00:00')""",
        )


def backup(dsn: str, path: Path) -> None:
    """``pg_dump -Fc`` of the database, as an operator backs it up."""
    subprocess.run(["pg_dump", "-Fc", "-f", str(path), dsn], check=True, timeout=120)


def restore(path: Path, dsn: str) -> None:
    """The backup restored over the database (``pg_restore --clean``), in one transaction."""
    argv = ["pg_restore", "--clean", "--if-exists", "--single-transaction", "-d", dsn, str(path)]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
