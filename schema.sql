-- Tables written by etl run. Idempotent: safe to apply any number of times
-- (psql -v ON_ERROR_STOP=1 -f schema.sql).

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
-- Added by etl: with kafka_offset it locates the message a row came from.
ALTER TABLE new_reports ADD COLUMN IF NOT EXISTS kafka_partition integer NOT NULL DEFAULT 0;

CREATE INDEX IF NOT EXISTS report_kafka_offset_btree_idx ON new_reports (kafka_offset);
CREATE INDEX IF NOT EXISTS new_reports_org_id_idx ON new_reports (org_id);
CREATE INDEX IF NOT EXISTS new_reports_cluster_idx ON new_reports (cluster);
CREATE INDEX IF NOT EXISTS new_reports_updated_at_asc_idx ON new_reports (updated_at ASC);
CREATE INDEX IF NOT EXISTS new_reports_updated_at_desc_idx ON new_reports (updated_at DESC);

COMMENT ON TABLE new_reports IS
    'latest OCP cluster-analysis reports loaded from Kafka, read by the notification service';

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
