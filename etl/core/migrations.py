"""etl's own schema steps (9 onwards), after the reference's in `etl.core.schema_history`, and the
plan between any two versions.

    9  new_reports.kafka_partition and the rejected_messages table
    10 the runs tables etl_runs and etl_run_partitions
    11 lz4 TOAST compression for new_reports.report, where the server supports it
    12 read_errors indexes for the cascade from new_reports and for its own cleanup
    13 etl_progress (how far the database holds each partition), etl_cleanups (the cutoffs
       applied) and etl_run_partitions.rewound

Adding a migration is appending one `Migration` to `MIGRATIONS` (and its tables to `DROP_ORDER`,
and the same DDL to ``schema.sql``; a test compares the two catalogs). Pure: `etl.pg.admin` runs the
plan, each step in one transaction, and records the version after each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, LiteralString

from etl.core.errors import ConfigError, SchemaConflict
from etl.core.schema_history import REFERENCE_MIGRATIONS, Migration

__all__ = [
    "DROP_ORDER",
    "LATEST",
    "MIGRATIONS",
    "Migration",
    "Step",
    "next_step",
    "parse_target",
    "plan",
]


@dataclass(frozen=True)
class Step:
    """One step of a plan: run ``statements``, then record ``to_version``.

    A step always lands on a version: targets are 0..LATEST, so no step goes below version 0.
    """

    migration: Migration
    direction: str  # "up" or "down"
    to_version: int

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
    *REFERENCE_MIGRATIONS,
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
        "etl: read_errors indexes, so deletes of new_reports and read_errors scan no table",
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
    Migration(
        13,
        "etl: etl_progress (the database's own position), etl_cleanups, runs' re-read counts",
        up=(
            """CREATE TABLE IF NOT EXISTS etl_progress (
                topic text NOT NULL, group_id text NOT NULL, kafka_partition integer NOT NULL,
                start_offset bigint NOT NULL, stop_offset bigint NOT NULL,
                origin boolean NOT NULL DEFAULT false,
                stored_at timestamp with time zone NOT NULL DEFAULT now(),
                PRIMARY KEY (topic, group_id, kafka_partition, start_offset),
                CHECK (start_offset <= stop_offset))""",
            "COMMENT ON TABLE etl_progress IS 'offset ranges stored, each in the transaction"
            " of its rows: the contiguous chain from the origin is how far the database holds"
            " the topic'",
            """CREATE TABLE IF NOT EXISTS etl_cleanups (
                id bigserial PRIMARY KEY, table_name text NOT NULL,
                cutoff timestamp with time zone NOT NULL, deleted bigint NOT NULL,
                ran_at timestamp with time zone NOT NULL DEFAULT now())""",
            "CREATE INDEX IF NOT EXISTS etl_cleanups_table_name_idx"
            " ON etl_cleanups (table_name, cutoff)",
            "COMMENT ON TABLE etl_cleanups IS 'every cleanup that deleted rows: its table and"
            " cutoff, so etl verify counts older rows as expired, not missing'",
            "ALTER TABLE etl_run_partitions"
            " ADD COLUMN IF NOT EXISTS rewound bigint NOT NULL DEFAULT 0",
        ),
        down=(
            "ALTER TABLE etl_run_partitions DROP COLUMN rewound",
            "DROP TABLE etl_cleanups",
            "DROP TABLE etl_progress",
        ),
    ),
)

LATEST: Final = MIGRATIONS[-1].version

# Every table etl owns, dependents first: `etl db drop` drops them in this order.
DROP_ORDER: Final = (
    "etl_progress",
    "etl_cleanups",
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
    """Every step from ``current`` to ``target``, in order (what `etl.pg.admin.migrate` runs)."""
    steps: list[Step] = []
    while (step := next_step(current, target)) is not None:
        steps.append(step)
        current = step.to_version
    return steps
