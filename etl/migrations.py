"""The schema's history as data: ordered steps, each with an up and a down, and the plan between.

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
    9  (etl) new_reports.kafka_partition and the rejected_messages table
    10 (etl) the runs tables etl_runs and etl_run_partitions
    11 (etl) lz4 TOAST compression for new_reports.report, where the server supports it
    12 (etl) read_errors indexes for the cascade from new_reports and for its own cleanup

Version 0 is reached from an empty database ("no version": ``migration_info`` absent). Its
statements use ``IF NOT EXISTS`` so a database holding only the tables of an older
``schema.sql`` is adopted too. The reference created its indexes ``CONCURRENTLY``, which cannot
run inside a transaction; here every step is plain DDL so it runs in ONE transaction.

Adding a migration is appending one `Migration` to `MIGRATIONS` (and its tables to `DROP_ORDER`,
and the same DDL to ``schema.sql``; a test compares the two catalogs). This module is pure: no
I/O; `etl.db` executes the steps and records the version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, LiteralString

from etl.errors import ConfigError, SchemaConflict


@dataclass(frozen=True)
class Migration:
    """Step ``version``: ``up`` goes from ``version - 1`` to it, ``down`` goes back."""

    version: int
    description: str
    up: tuple[LiteralString, ...]
    down: tuple[LiteralString, ...]


@dataclass(frozen=True)
class Step:
    """One step of a plan: run ``statements``, then record ``to_version`` (None: no version)."""

    migration: Migration
    direction: str  # "up" or "down"
    to_version: int | None

    @property
    def statements(self) -> tuple[LiteralString, ...]:
        return self.migration.up if self.direction == "up" else self.migration.down


# Readers never notice the TOAST compression method; it only applies to values written after
# it is set. Servers before 14, or built without lz4, keep the default (pglz): the dynamic
# statement turns the refusal into a notice instead of a failed migration.
_SET_REPORT_COMPRESSION: Final = """DO $$
BEGIN
    EXECUTE 'ALTER TABLE new_reports ALTER COLUMN report SET COMPRESSION METHOD';
EXCEPTION WHEN feature_not_supported OR syntax_error OR undefined_object THEN
    RAISE NOTICE 'new_reports.report keeps its compression: %', SQLERRM;
END $$"""

MIGRATIONS: Final[tuple[Migration, ...]] = (
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
    Migration(
        9,
        "etl: new_reports.kafka_partition and the rejected_messages table",
        up=(
            "ALTER TABLE new_reports"
            " ADD COLUMN IF NOT EXISTS kafka_partition integer NOT NULL DEFAULT 0",
            "COMMENT ON COLUMN new_reports.kafka_partition IS"
            " 'Kafka partition of the message the row came from (with kafka_offset)'",
            "COMMENT ON TABLE new_reports IS 'latest OCP cluster-analysis reports loaded"
            " from Kafka, read by the notification service'",
            """CREATE TABLE IF NOT EXISTS rejected_messages (
                topic text NOT NULL, kafka_partition integer NOT NULL,
                kafka_offset bigint NOT NULL, kafka_timestamp timestamp with time zone,
                reason text NOT NULL, detail text NOT NULL, raw_value bytea,
                raw_size integer NOT NULL,
                rejected_at timestamp with time zone NOT NULL DEFAULT now(),
                PRIMARY KEY (topic, kafka_partition, kafka_offset))""",
            "CREATE INDEX IF NOT EXISTS rejected_messages_rejected_at_idx"
            " ON rejected_messages (rejected_at)",
            "COMMENT ON TABLE rejected_messages IS"
            " 'Kafka messages etl rejected: reason, detail and the raw value (first 64 KiB)'",
        ),
        down=(
            "DROP TABLE rejected_messages",
            "ALTER TABLE new_reports DROP COLUMN kafka_partition",
            "COMMENT ON TABLE new_reports IS 'new reports consumed from Kafka topic and"
            " stored to database in shrunk format'",
        ),
    ),
    Migration(
        10,
        "etl: the record of every run, etl_runs and etl_run_partitions",
        up=(
            """CREATE TABLE IF NOT EXISTS etl_runs (
                id bigserial PRIMARY KEY,
                started_at timestamp with time zone NOT NULL,
                ended_at timestamp with time zone,
                status text NOT NULL, exit_code integer, error text,
                topic text NOT NULL, group_id text NOT NULL,
                options jsonb NOT NULL DEFAULT '{}',
                consumed bigint NOT NULL DEFAULT 0, inserted bigint NOT NULL DEFAULT 0,
                duplicates bigint NOT NULL DEFAULT 0, rejected bigint NOT NULL DEFAULT 0,
                bytes_consumed bigint NOT NULL DEFAULT 0)""",
            "CREATE INDEX IF NOT EXISTS etl_runs_started_at_idx ON etl_runs (started_at)",
            "COMMENT ON TABLE etl_runs IS"
            " 'one row per etl run (dry runs excepted): options, outcome and counts'",
            """CREATE TABLE IF NOT EXISTS etl_run_partitions (
                run_id bigint NOT NULL REFERENCES etl_runs (id) ON DELETE CASCADE,
                topic text NOT NULL, kafka_partition integer NOT NULL,
                start_offset bigint NOT NULL, stop_offset bigint NOT NULL,
                reached_offset bigint NOT NULL,
                PRIMARY KEY (run_id, kafka_partition))""",
            "CREATE INDEX IF NOT EXISTS etl_run_partitions_range_idx"
            " ON etl_run_partitions (topic, kafka_partition, start_offset)",
            "COMMENT ON TABLE etl_run_partitions IS"
            " 'per run and partition: the start, stop and reached Kafka offsets'",
        ),
        down=("DROP TABLE etl_run_partitions", "DROP TABLE etl_runs"),
    ),
    Migration(
        11,
        "etl: lz4 compression for new_reports.report (halves the server's CPU per report)",
        up=(_SET_REPORT_COMPRESSION.replace("METHOD", "lz4"),),
        down=(_SET_REPORT_COMPRESSION.replace("METHOD", "default"),),
    ),
    Migration(
        12,
        "etl: read_errors indexes, so deleting new_reports rows and old read_errors is not a"
        " table scan per row",
        up=(
            "CREATE INDEX IF NOT EXISTS read_errors_org_id_cluster_updated_at_idx"
            " ON read_errors (org_id, cluster, updated_at)",
            "CREATE INDEX IF NOT EXISTS read_errors_updated_at_idx ON read_errors (updated_at)",
        ),
        down=(
            "DROP INDEX IF EXISTS read_errors_updated_at_idx",
            "DROP INDEX IF EXISTS read_errors_org_id_cluster_updated_at_idx",
        ),
    ),
)

LATEST: Final = MIGRATIONS[-1].version

# Every table etl owns, dependents first: `etl db drop` drops them in this order.
DROP_ORDER: Final = (
    "etl_run_partitions",
    "etl_runs",
    "read_errors",
    "reported",
    "rejected_messages",
    "new_reports",
    "event_targets",
    "states",
    "notification_types",
    "migration_info",
)


def parse_target(text: str) -> int:
    """``latest`` or a version 0..LATEST; anything else is a `ConfigError` (a usage error)."""
    value = text.strip().lower()
    if value == "latest":
        return LATEST
    if not value.lstrip("-").isdigit():
        raise ConfigError(f"--to: expected a version number 0..{LATEST} or 'latest', got {text!r}")
    version = int(value)
    if not 0 <= version <= LATEST:
        raise ConfigError(f"--to: version {version} is out of range 0..{LATEST}")
    return version


def next_step(current: int | None, target: int) -> Step | None:
    """The one step that moves ``current`` toward ``target``; None when already there.

    ``current`` None means no schema version at all (empty database). A version newer than
    this etl knows cannot be planned from: its steps are unknown here.
    """
    if current is not None and current > LATEST:
        raise SchemaConflict(
            f"database schema version {current} is newer than this etl knows"
            f" (latest {LATEST}); use a newer etl"
        )
    if current == target:
        return None
    if current is None or current < target:
        to = 0 if current is None else current + 1
        return Step(MIGRATIONS[to], "up", to)
    return Step(MIGRATIONS[current], "down", current - 1)


def plan(current: int | None, target: int) -> list[Step]:
    """Every step from ``current`` to ``target``, in order (what `etl.db.migrate` will run)."""
    steps: list[Step] = []
    while (step := next_step(current, target)) is not None:
        steps.append(step)
        current = step.to_version
    return steps
