-- The notification database at the latest schema version (13), the same catalog that
-- `etl db init` builds from the migrations in etl/migrations.py (a test compares the two).
-- Idempotent: safe to apply any number of times
--   psql -v ON_ERROR_STOP=1 --single-transaction -f schema.sql
-- A database recorded at another version is refused: upgrade it with `etl db migrate`.

DO $$
BEGIN
    IF to_regclass('migration_info') IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM migration_info WHERE version <> 13) THEN
            RAISE EXCEPTION 'schema.sql builds schema version 13 but this database is at '
                'another version: run etl db migrate instead';
        END IF;
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS migration_info (
    version integer NOT NULL
);
INSERT INTO migration_info (version)
    SELECT 13 WHERE NOT EXISTS (SELECT 1 FROM migration_info);
COMMENT ON TABLE migration_info IS 'information about the latest DB schema and migration status';

CREATE TABLE IF NOT EXISTS notification_types (
    id          integer NOT NULL,
    value       varchar NOT NULL,
    frequency   varchar NOT NULL,
    comment     varchar,
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS notification_types_id_idx ON notification_types (id ASC);
INSERT INTO notification_types (id, value, frequency, comment) VALUES
    (1, 'instant', '* * * * * *', 'instant notifications performed ASAP'),
    (2, 'weekly', '@weekly', 'weekly summary')
    ON CONFLICT DO NOTHING;
COMMENT ON TABLE notification_types IS
    'list of all notification types used by Notification service';

CREATE TABLE IF NOT EXISTS states (
    id          integer NOT NULL,
    value       varchar NOT NULL,
    comment     varchar,
    PRIMARY KEY (id)
);
INSERT INTO states (id, value, comment) VALUES
    (1, 'sent', 'notification has been sent to user'),
    (2, 'same', 'skipped, report is the same as previous one'),
    (3, 'lower', 'skipped, all issues has low priority'),
    (4, 'error', 'notification delivery error')
    ON CONFLICT DO NOTHING;
COMMENT ON TABLE states IS 'states for each row stored in reported table';

CREATE TABLE IF NOT EXISTS event_targets (
    id          integer NOT NULL,
    name        varchar NOT NULL UNIQUE,
    metainfo    varchar NOT NULL UNIQUE,
    PRIMARY KEY (id)
);
INSERT INTO event_targets (id, name, metainfo) VALUES
    (1, 'notifications backend', 'the target of the report is the ccx notification service back end'),
    (2, 'service log', 'the target of the report is the ServiceLog')
    ON CONFLICT DO NOTHING;
COMMENT ON TABLE event_targets IS 'specification of all event targets currently supported';

-- new_reports is read by the notification service: keep these names and types.
CREATE TABLE IF NOT EXISTS new_reports (
    org_id          integer                     NOT NULL,
    account_number  integer                     NOT NULL,
    cluster         character(36)               NOT NULL,
    report          character varying           NOT NULL,
    updated_at      timestamp without time zone NOT NULL,
    kafka_offset    bigint                      NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, cluster, updated_at)
);
-- Added by etl (version 9): with kafka_offset it locates the message a row came from.
ALTER TABLE new_reports ADD COLUMN IF NOT EXISTS kafka_partition integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN new_reports.kafka_partition IS
    'Kafka partition of the message the row came from (with kafka_offset)';

CREATE INDEX IF NOT EXISTS report_kafka_offset_btree_idx ON new_reports (kafka_offset);
CREATE INDEX IF NOT EXISTS new_reports_org_id_idx ON new_reports (org_id);
CREATE INDEX IF NOT EXISTS new_reports_cluster_idx ON new_reports (cluster);
CREATE INDEX IF NOT EXISTS new_reports_updated_at_asc_idx ON new_reports (updated_at ASC);
CREATE INDEX IF NOT EXISTS new_reports_updated_at_desc_idx ON new_reports (updated_at DESC);

COMMENT ON TABLE new_reports IS
    'latest OCP cluster-analysis reports loaded from Kafka, read by the notification service';

CREATE TABLE IF NOT EXISTS reported (
    org_id              integer       NOT NULL,
    account_number      integer       NOT NULL,
    cluster             character(36) NOT NULL,
    notification_type   integer       NOT NULL,
    state               integer       NOT NULL,
    report              varchar       NOT NULL,
    updated_at          timestamp     NOT NULL,
    notified_at         timestamp     NOT NULL,
    error_log           varchar,
    event_type_id       integer       NOT NULL,
    PRIMARY KEY (org_id, cluster, notified_at),
    CONSTRAINT fk_notification_type FOREIGN KEY (notification_type)
        REFERENCES notification_types (id),
    CONSTRAINT fk_state FOREIGN KEY (state) REFERENCES states (id),
    FOREIGN KEY (event_type_id) REFERENCES event_targets (id)
);
CREATE INDEX IF NOT EXISTS notified_at_desc_idx ON reported (notified_at DESC);
-- Named "desc" by the reference service but ascending; kept for compatibility.
CREATE INDEX IF NOT EXISTS updated_at_desc_idx ON reported (updated_at ASC);
CREATE INDEX IF NOT EXISTS idx_reported_event_state_org_cluster
    ON reported (event_type_id, state, org_id, cluster);
CREATE INDEX IF NOT EXISTS idx_reported_updated_at ON reported (updated_at);
COMMENT ON TABLE reported IS 'notifications reported to user or skipped due to some conditions';

CREATE TABLE IF NOT EXISTS read_errors (
    error_id    serial PRIMARY KEY,
    org_id      integer       NOT NULL,
    cluster     character(36) NOT NULL,
    updated_at  timestamp     NOT NULL,
    error_text  varchar(1000) NOT NULL,
    created_at  timestamp     NOT NULL,
    CONSTRAINT read_errors_org_id_cluster_updated_at_fkey
        FOREIGN KEY (org_id, cluster, updated_at)
        REFERENCES new_reports (org_id, cluster, updated_at) ON DELETE CASCADE,
    UNIQUE (error_id, org_id, cluster, updated_at)
);
COMMENT ON TABLE read_errors IS 'errors that are detected during new reports collection';

-- Messages etl could not store, each with a specific reason. A replay never duplicates them.
CREATE TABLE IF NOT EXISTS rejected_messages (
    topic            text                     NOT NULL,
    kafka_partition  integer                  NOT NULL,
    kafka_offset     bigint                   NOT NULL,
    kafka_timestamp  timestamp with time zone,
    reason           text                     NOT NULL,
    detail           text                     NOT NULL,
    raw_value        bytea,
    raw_size         integer                  NOT NULL,
    rejected_at      timestamp with time zone NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);
CREATE INDEX IF NOT EXISTS rejected_messages_rejected_at_idx ON rejected_messages (rejected_at);

COMMENT ON TABLE rejected_messages IS
    'Kafka messages etl rejected: reason, detail and the raw value (first 64 KiB)';

-- Added by etl (version 10): the record of every run (dry runs excepted).
CREATE TABLE IF NOT EXISTS etl_runs (
    id              bigserial PRIMARY KEY,
    started_at      timestamp with time zone NOT NULL,
    ended_at        timestamp with time zone,
    status          text    NOT NULL,
    exit_code       integer,
    error           text,
    topic           text    NOT NULL,
    group_id        text    NOT NULL,
    options         jsonb   NOT NULL DEFAULT '{}',
    consumed        bigint  NOT NULL DEFAULT 0,
    inserted        bigint  NOT NULL DEFAULT 0,
    duplicates      bigint  NOT NULL DEFAULT 0,
    rejected        bigint  NOT NULL DEFAULT 0,
    bytes_consumed  bigint  NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS etl_runs_started_at_idx ON etl_runs (started_at);
COMMENT ON TABLE etl_runs IS
    'one row per etl run (dry runs excepted): options, outcome and counts';

CREATE TABLE IF NOT EXISTS etl_run_partitions (
    run_id           bigint  NOT NULL REFERENCES etl_runs (id) ON DELETE CASCADE,
    topic            text    NOT NULL,
    kafka_partition  integer NOT NULL,
    start_offset     bigint  NOT NULL,
    stop_offset      bigint  NOT NULL,
    reached_offset   bigint  NOT NULL,
    PRIMARY KEY (run_id, kafka_partition)
);
CREATE INDEX IF NOT EXISTS etl_run_partitions_range_idx
    ON etl_run_partitions (topic, kafka_partition, start_offset);
COMMENT ON TABLE etl_run_partitions IS
    'per run and partition: the start, stop and reached Kafka offsets';

-- Added by etl (version 11): lz4 TOAST compression for the reports, where the server has it.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE new_reports ALTER COLUMN report SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error OR undefined_object THEN
    RAISE NOTICE 'new_reports.report keeps its compression: %', SQLERRM;
END $$;

-- Added by etl (version 12): the cascade from new_reports and read_errors cleanup use indexes.
CREATE INDEX IF NOT EXISTS read_errors_org_id_cluster_updated_at_idx
    ON read_errors (org_id, cluster, updated_at);
CREATE INDEX IF NOT EXISTS read_errors_updated_at_idx ON read_errors (updated_at);

-- Added by etl (version 13): how far the database holds the topic, per group and partition.
-- Each batch's transaction adds the offset range it stored; the contiguous chain of ranges from
-- the partition's origin ends at the database's position, which a restore rolls back together
-- with the rows.
CREATE TABLE IF NOT EXISTS etl_progress (
    topic            text    NOT NULL,
    group_id         text    NOT NULL,
    kafka_partition  integer NOT NULL,
    start_offset     bigint  NOT NULL,
    stop_offset      bigint  NOT NULL,
    origin           boolean NOT NULL DEFAULT false,
    stored_at        timestamp with time zone NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, group_id, kafka_partition, start_offset),
    CHECK (start_offset <= stop_offset)
);
COMMENT ON TABLE etl_progress IS
    'offset ranges stored, each in the transaction of its rows: the contiguous chain from the origin is how far the database holds the topic';

-- The cutoff of every cleanup that deleted rows: etl verify counts older rows as expired.
CREATE TABLE IF NOT EXISTS etl_cleanups (
    id          bigserial PRIMARY KEY,
    table_name  text    NOT NULL,
    cutoff      timestamp with time zone NOT NULL,
    deleted     bigint  NOT NULL,
    ran_at      timestamp with time zone NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS etl_cleanups_table_name_idx ON etl_cleanups (table_name, cutoff);
COMMENT ON TABLE etl_cleanups IS
    'every cleanup that deleted rows: its table and cutoff, so etl verify counts older rows as expired, not missing';

ALTER TABLE etl_run_partitions ADD COLUMN IF NOT EXISTS rewound bigint NOT NULL DEFAULT 0;
