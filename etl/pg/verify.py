"""``etl verify`` on PostgreSQL: one batch of decoded messages checked against the database in
one set-based statement (the classes are `etl.core.verify.KINDS`).

Per batch, in one transaction of a session of its own: the valid messages' binary COPY tuples,
exactly as ``etl run`` sends them, go into a temp table of ``new_reports``' column types; the
invalid messages' coordinates into another. One statement then joins them to ``new_reports`` on
its primary key (org_id, cluster, updated_at) and to ``rejected_messages`` on (topic, partition,
offset), compares the held row's Kafka coordinates and columns with ``IS DISTINCT FROM`` (text
equality is byte equality under a deterministic collation), and counts the classes per
partition, listing the offsets of the missing and different messages. The cutoffs come from
``etl_cleanups`` in the same statement. Keys found missing are remembered in a session table,
so a later message with the same key, in this batch or a later one, is a duplicate, as a run
would make it. The session joins by nested loops only (see `_SETUP`): the cost of a batch is
one index lookup per message, not a scan of ``new_reports``.

Nothing here writes to the tables etl owns; ``--repair`` stores through `etl.pg.sink`. No
retries: an operator runs the check again. psycopg errors become `etl.core.errors` here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import psycopg
from psycopg import sql

from etl.core.config import PostgresConfig
from etl.core.ports import Message, RowBatch
from etl.core.statements import REJECTIONS_TABLE, REPORTS_TABLE
from etl.core.verify import NAMED, Finding
from etl.pg.connect import open_session
from etl.pg.failures import translate
from etl.pg.progress import CLEANUPS_TABLE
from etl.pg.sink import copy_batch

_ROWS: Final = sql.Identifier("etl_verify_rows")
_INVALID: Final = sql.Identifier("etl_verify_invalid")
_MISSING: Final = sql.Identifier("etl_verify_missing")

_SETUP: Final = (
    # One primary-key lookup per message, whatever the size of new_reports: a hash or merge
    # join would read the whole table once per batch. The statement is costed high (its
    # subplans), which would make every batch pay for JIT compilation, half a second each.
    # The batch's temp table in memory (the default, 8 MB, writes a batch of 1 KB reports to
    # disk and back); settable only before the session's first temp table.
    sql.SQL("SET temp_buffers = '128MB'"),
    sql.SQL("SET enable_hashjoin = off"),
    sql.SQL("SET enable_mergejoin = off"),
    sql.SQL("SET jit = off"),
    sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
        _ROWS, sql.Identifier(REPORTS_TABLE)
    ),
    # The batch's reports uncompressed: the temp table does not inherit new_reports' lz4,
    # and the default pglz made the server spend 4.8 s per 500 MB of 100 KB reports, against
    # 2.0 s without compression (bench/run.py --sizes 100k).
    sql.SQL("ALTER TABLE {} ALTER COLUMN report SET STORAGE EXTERNAL").format(_ROWS),
    sql.SQL(
        "CREATE TEMP TABLE {} (kafka_partition integer NOT NULL, kafka_offset bigint NOT NULL,"
        " timestamp_ms bigint) ON COMMIT DELETE ROWS"
    ).format(_INVALID),
    sql.SQL(
        "CREATE TEMP TABLE {} AS SELECT org_id, cluster, updated_at FROM {} WITH NO DATA"
    ).format(_MISSING, sql.Identifier(REPORTS_TABLE)),
    sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (org_id, cluster, updated_at)").format(_MISSING),
)

_CHECK: Final = sql.SQL("""
WITH cutoffs AS (
    SELECT
        (SELECT max(cutoff) FROM {cleanups} WHERE table_name = %(reports)s)
            AT TIME ZONE 'UTC' AS rows_before,
        (SELECT extract(epoch FROM max(cutoff)) * 1000 FROM {cleanups}
            WHERE table_name = %(rejections)s) AS rejections_before_ms
), classified AS MATERIALIZED (
    SELECT b.org_id, b.cluster, b.updated_at, b.kafka_partition, b.kafka_offset, CASE
        WHEN r.org_id IS NOT NULL THEN CASE
            WHEN (r.kafka_partition, r.kafka_offset)
                IS DISTINCT FROM (b.kafka_partition, b.kafka_offset) THEN 'duplicate'
            WHEN (r.account_number, r.report)
                IS DISTINCT FROM (b.account_number, b.report) THEN 'different'
            ELSE 'stored' END
        WHEN EXISTS (
            SELECT FROM {rejections} j WHERE j.topic = %(topic)s
            AND j.kafka_partition = b.kafka_partition AND j.kafka_offset = b.kafka_offset
        ) THEN 'rejected'
        WHEN b.updated_at < (SELECT rows_before FROM cutoffs) THEN 'expired'
        WHEN EXISTS (
            SELECT FROM {missing} m
            WHERE m.org_id = b.org_id AND m.cluster = b.cluster AND m.updated_at = b.updated_at
        ) THEN 'duplicate'
        ELSE 'missing' END AS kind
    FROM {rows} b LEFT JOIN {reports} r
        ON r.org_id = b.org_id AND r.cluster = b.cluster AND r.updated_at = b.updated_at
    UNION ALL
    SELECT NULL, NULL, NULL, x.kafka_partition, x.kafka_offset, CASE
        WHEN EXISTS (
            SELECT FROM {rejections} j WHERE j.topic = %(topic)s
            AND j.kafka_partition = x.kafka_partition AND j.kafka_offset = x.kafka_offset
        ) THEN 'rejected'
        WHEN x.timestamp_ms < (SELECT rejections_before_ms FROM cutoffs) THEN 'expired'
        ELSE 'missing' END
    FROM {invalid} x
), ranked AS MATERIALIZED (
    SELECT org_id, cluster, updated_at, kafka_partition, kafka_offset, CASE
        WHEN org_id IS NOT NULL AND row_number() OVER (
            PARTITION BY org_id, cluster, updated_at ORDER BY kafka_partition, kafka_offset
        ) > 1 THEN 'duplicate'
        ELSE 'missing' END AS kind
    FROM classified WHERE kind = 'missing'
), noted AS (
    INSERT INTO {missing} SELECT org_id, cluster, updated_at FROM ranked
    WHERE kind = 'missing' AND org_id IS NOT NULL ON CONFLICT DO NOTHING
), final AS (
    SELECT kafka_partition, kind, kafka_offset FROM classified WHERE kind <> 'missing'
    UNION ALL
    SELECT kafka_partition, kind, kafka_offset FROM ranked
)
SELECT kafka_partition, kind, count(*),
    array_agg(kafka_offset ORDER BY kafka_offset) FILTER (WHERE kind = ANY(%(named)s))
FROM final GROUP BY kafka_partition, kind
""").format(
    rows=_ROWS,
    invalid=_INVALID,
    missing=_MISSING,
    cleanups=sql.Identifier(CLEANUPS_TABLE),
    rejections=sql.Identifier(REJECTIONS_TABLE),
    reports=sql.Identifier(REPORTS_TABLE),
)
_COPY_INVALID: Final = sql.SQL(
    "COPY {} (kafka_partition, kafka_offset, timestamp_ms) FROM STDIN"
).format(_INVALID)


class PgChecker:
    """`etl.core.verify.Checker` on a PostgreSQL session of its own, for one topic."""

    def __init__(self, cfg: PostgresConfig, topic: str) -> None:
        self._topic = topic
        try:
            self._conn = open_session(cfg, application_name="etl-verify")
        except psycopg.Error as exc:
            raise translate(exc, cfg.masked_dsn) from exc
        try:
            with self._conn.transaction():
                for statement in _SETUP:
                    self._conn.execute(statement)
        except psycopg.Error as exc:
            self._conn.close()
            raise translate(exc) from exc

    def check(self, rows: RowBatch, rejected: Sequence[Message]) -> list[Finding]:
        params: dict[str, Any] = {
            "topic": self._topic,
            "reports": REPORTS_TABLE,
            "rejections": REJECTIONS_TABLE,
            "named": list(NAMED),
        }
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                if rows.count:
                    copy_batch(cur, _ROWS, rows)
                if rejected:
                    with cur.copy(_COPY_INVALID) as copy:
                        for m in rejected:
                            copy.write_row((m.partition, m.offset, m.timestamp_ms))
                found = cur.execute(_CHECK, params).fetchall()
        except psycopg.Error as exc:
            raise translate(exc) from exc
        return [Finding(p, kind, count, offsets or ()) for p, kind, count, offsets in found]

    def close(self) -> None:
        self._conn.close()
