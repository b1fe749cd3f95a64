"""The reference service's schema history, versions 0..8, as data: each step with an up and a down.

Versions continue the numbering of the Go service etl replaces, so a database it created at
any of its versions 0..8 (recorded in ``migration_info``) is adopted as is:

    0  base tables notification_types, states (both seeded), reported, new_reports, their indexes
    1  create event_targets
    2  reported.event_type_id with its foreign key to event_targets
    3  seed event_targets
    4  event_type_id := 1 where null, then not null
    5  create read_errors
    6  read_errors' foreign key to new_reports becomes ON DELETE CASCADE
    7  a comment on every table
    8  indexes idx_reported_event_state_org_cluster and idx_reported_updated_at

etl's own steps, from 9 on, are in `etl.core.migrations`.

Version 0 is reached from an empty database ("no version": ``migration_info`` absent). Its
statements use ``IF NOT EXISTS`` so a database holding only the tables of an older
``schema.sql`` is adopted too. The reference created its indexes ``CONCURRENTLY``, which cannot
run inside a transaction; here every step is plain DDL so it runs in ONE transaction.

These steps are history: they never change. Pure data, no I/O; `etl.core.migrations` plans the
steps and `etl.pg.admin` executes them and records the version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, LiteralString


@dataclass(frozen=True)
class Migration:
    """Step ``version``: ``up`` goes from ``version - 1`` to it, ``down`` goes back."""

    version: int
    description: str
    up: tuple[LiteralString, ...]
    down: tuple[LiteralString, ...]


REFERENCE_MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        0,
        "base tables of the notification database",
        up=(
            "CREATE TABLE IF NOT EXISTS migration_info (version integer NOT NULL)",
            """CREATE TABLE IF NOT EXISTS notification_types (
                id integer NOT NULL, value varchar NOT NULL, frequency varchar NOT NULL,
                comment varchar, PRIMARY KEY (id))""",
            """CREATE TABLE IF NOT EXISTS states (
                id integer NOT NULL, value varchar NOT NULL, comment varchar, PRIMARY KEY (id))""",
            """CREATE TABLE IF NOT EXISTS reported (
                org_id integer NOT NULL, account_number integer NOT NULL,
                cluster character(36) NOT NULL, notification_type integer NOT NULL,
                state integer NOT NULL, report varchar NOT NULL, updated_at timestamp NOT NULL,
                notified_at timestamp NOT NULL, error_log varchar,
                PRIMARY KEY (org_id, cluster, notified_at),
                CONSTRAINT fk_notification_type FOREIGN KEY (notification_type)
                    REFERENCES notification_types (id),
                CONSTRAINT fk_state FOREIGN KEY (state) REFERENCES states (id))""",
            """CREATE TABLE IF NOT EXISTS new_reports (
                org_id integer NOT NULL, account_number integer NOT NULL,
                cluster character(36) NOT NULL, report varchar NOT NULL,
                updated_at timestamp NOT NULL, kafka_offset bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (org_id, cluster, updated_at))""",
            "CREATE INDEX IF NOT EXISTS report_kafka_offset_btree_idx"
            " ON new_reports (kafka_offset)",
            "CREATE INDEX IF NOT EXISTS new_reports_org_id_idx ON new_reports (org_id)",
            "CREATE INDEX IF NOT EXISTS new_reports_cluster_idx ON new_reports (cluster)",
            "CREATE INDEX IF NOT EXISTS new_reports_updated_at_asc_idx"
            " ON new_reports (updated_at ASC)",
            "CREATE INDEX IF NOT EXISTS new_reports_updated_at_desc_idx"
            " ON new_reports (updated_at DESC)",
            "CREATE INDEX IF NOT EXISTS notified_at_desc_idx ON reported (notified_at DESC)",
            "CREATE INDEX IF NOT EXISTS updated_at_desc_idx ON reported (updated_at ASC)",
            "CREATE INDEX IF NOT EXISTS notification_types_id_idx ON notification_types (id ASC)",
            """INSERT INTO notification_types (id, value, frequency, comment) VALUES
                (1, 'instant', '* * * * * *', 'instant notifications performed ASAP'),
                (2, 'weekly', '@weekly', 'weekly summary')
                ON CONFLICT DO NOTHING""",
            """INSERT INTO states (id, value, comment) VALUES
                (1, 'sent', 'notification has been sent to user'),
                (2, 'same', 'skipped, report is the same as previous one'),
                (3, 'lower', 'skipped, all issues has low priority'),
                (4, 'error', 'notification delivery error')
                ON CONFLICT DO NOTHING""",
        ),
        down=(
            "DROP TABLE reported",
            "DROP TABLE states",
            "DROP TABLE notification_types",
            "DROP TABLE new_reports",
            "DROP TABLE migration_info",
        ),
    ),
    Migration(
        1,
        "create event_targets",
        up=(
            """CREATE TABLE event_targets (
                id integer NOT NULL, name varchar NOT NULL UNIQUE,
                metainfo varchar NOT NULL UNIQUE, PRIMARY KEY (id))""",
        ),
        down=("DROP TABLE event_targets",),
    ),
    Migration(
        2,
        "add reported.event_type_id referencing event_targets",
        up=(
            "ALTER TABLE reported ADD COLUMN event_type_id integer,"
            " ADD FOREIGN KEY (event_type_id) REFERENCES event_targets (id)",
        ),
        down=("ALTER TABLE reported DROP COLUMN event_type_id",),
    ),
    Migration(
        3,
        "seed event_targets",
        up=(
            """INSERT INTO event_targets (id, name, metainfo) VALUES
                (1, 'notifications backend',
                 'the target of the report is the ccx notification service back end'),
                (2, 'service log', 'the target of the report is the ServiceLog')""",
        ),
        # Fails (and changes nothing) while reported rows still point at a target.
        down=("DELETE FROM event_targets WHERE id IN (1, 2)",),
    ),
    Migration(
        4,
        "reported.event_type_id defaults to 1 and becomes not null",
        up=(
            "UPDATE reported SET event_type_id = 1 WHERE event_type_id IS NULL",
            "ALTER TABLE reported ALTER COLUMN event_type_id SET NOT NULL",
        ),
        down=(
            "ALTER TABLE reported ALTER COLUMN event_type_id DROP NOT NULL",
            "UPDATE reported SET event_type_id = NULL WHERE event_type_id = 1",
        ),
    ),
    Migration(
        5,
        "create read_errors",
        up=(
            """CREATE TABLE read_errors (
                error_id serial PRIMARY KEY, org_id integer NOT NULL,
                cluster character(36) NOT NULL, updated_at timestamp NOT NULL,
                error_text varchar(1000) NOT NULL, created_at timestamp NOT NULL,
                FOREIGN KEY (org_id, cluster, updated_at)
                    REFERENCES new_reports (org_id, cluster, updated_at),
                UNIQUE (error_id, org_id, cluster, updated_at))""",
        ),
        down=("DROP TABLE read_errors",),
    ),
    Migration(
        6,
        "read_errors rows go with their new_reports row (ON DELETE CASCADE)",
        up=(
            """ALTER TABLE read_errors
                DROP CONSTRAINT IF EXISTS read_errors_org_id_fkey,
                DROP CONSTRAINT IF EXISTS read_errors_org_id_cluster_updated_at_fkey,
                ADD CONSTRAINT read_errors_org_id_cluster_updated_at_fkey
                    FOREIGN KEY (org_id, cluster, updated_at)
                    REFERENCES new_reports (org_id, cluster, updated_at) ON DELETE CASCADE""",
        ),
        down=(
            """ALTER TABLE read_errors
                DROP CONSTRAINT read_errors_org_id_cluster_updated_at_fkey,
                ADD CONSTRAINT read_errors_org_id_cluster_updated_at_fkey
                    FOREIGN KEY (org_id, cluster, updated_at)
                    REFERENCES new_reports (org_id, cluster, updated_at)""",
        ),
    ),
    Migration(
        7,
        "a comment on every table",
        up=(
            "COMMENT ON TABLE event_targets IS"
            " 'specification of all event targets currently supported'",
            "COMMENT ON TABLE migration_info IS"
            " 'information about the latest DB schema and migration status'",
            "COMMENT ON TABLE new_reports IS"
            " 'new reports consumed from Kafka topic and stored to database in shrunk format'",
            "COMMENT ON TABLE notification_types IS"
            " 'list of all notification types used by Notification service'",
            "COMMENT ON TABLE read_errors IS"
            " 'errors that are detected during new reports collection'",
            "COMMENT ON TABLE reported IS"
            " 'notifications reported to user or skipped due to some conditions'",
            "COMMENT ON TABLE states IS 'states for each row stored in reported table'",
        ),
        down=(
            "COMMENT ON TABLE event_targets IS NULL",
            "COMMENT ON TABLE migration_info IS NULL",
            "COMMENT ON TABLE new_reports IS NULL",
            "COMMENT ON TABLE notification_types IS NULL",
            "COMMENT ON TABLE read_errors IS NULL",
            "COMMENT ON TABLE reported IS NULL",
            "COMMENT ON TABLE states IS NULL",
        ),
    ),
    Migration(
        8,
        "indexes for the notification service's queries and cleanup",
        up=(
            "CREATE INDEX IF NOT EXISTS idx_reported_event_state_org_cluster"
            " ON reported (event_type_id, state, org_id, cluster)",
            "CREATE INDEX IF NOT EXISTS idx_reported_updated_at ON reported (updated_at)",
        ),
        down=(
            "DROP INDEX IF EXISTS idx_reported_updated_at",
            "DROP INDEX IF EXISTS idx_reported_event_state_org_cluster",
        ),
    ),
)
