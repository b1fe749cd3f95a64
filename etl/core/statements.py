"""What the sink sends: the tables and columns it writes, its SQL, and the COPY text of a batch.

Pure: no connection here. Every statement is composed with `psycopg.sql`; the COPY text is
built once per row, as bytes, and streamed in bounded chunks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from psycopg import sql

from etl.core.ports import StoredRejection, StoredRow

REPORTS_TABLE: Final = "new_reports"
REJECTIONS_TABLE: Final = "rejected_messages"
RAW_VALUE_LIMIT: Final = 64 * 1024
STAGING = sql.Identifier("etl_staging")
COLUMNS: Final = (
    "org_id",
    "account_number",
    "cluster",
    "report",
    "updated_at",
    "kafka_offset",
    "kafka_partition",
)
REJECTION_COLUMNS: Final = (
    "topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "reason",
    "detail",
    "raw_value",
    "raw_size",
)


def copy_chunks(rows: Sequence[StoredRow], chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """The rows as COPY text-format lines in `COLUMNS` order, in chunks of about ``chunk_bytes``.

    Chunks keep the whole batch from existing twice in memory. Only the report needs escaping:
    orjson never emits raw control characters, so the one COPY-special byte it can contain is
    the backslash. The cluster is a canonical UUID and the rest are numbers and timestamps.
    """
    lines: list[bytes] = []
    size = 0
    for stored in rows:
        r = stored.row
        line = b"%d\t%d\t%s\t%s\t%s\t%d\t%d\n" % (
            r.org_id,
            r.account_number,
            r.cluster.encode(),
            r.report.replace(b"\\", b"\\\\"),
            r.updated_at.isoformat(" ").encode(),
            stored.offset,
            stored.partition,
        )
        lines.append(line)
        size += len(line)
        if size >= chunk_bytes:
            yield b"".join(lines)
            lines, size = [], 0
    if lines:
        yield b"".join(lines)


def rejection_params(topic: str, item: StoredRejection) -> tuple[Any, ...]:
    msg = item.message
    ts = None
    if msg.timestamp_ms is not None:
        try:
            ts = datetime.fromtimestamp(msg.timestamp_ms / 1000, UTC)
        except (OverflowError, ValueError, OSError):  # a producer-set stamp beyond year 9999
            ts = None
    raw = msg.value or b""
    return (
        topic,
        msg.partition,
        msg.offset,
        ts,
        item.rejection.reason,
        item.rejection.detail,
        raw[:RAW_VALUE_LIMIT],
        len(raw),
    )


def copy_sql(table: sql.Identifier) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        table, sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    )


CREATE_STAGING = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
).format(STAGING, sql.Identifier(REPORTS_TABLE))
_COLUMN_LIST = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
INSERT_FROM_STAGING = sql.SQL(
    "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING"
).format(sql.Identifier(REPORTS_TABLE), _COLUMN_LIST, _COLUMN_LIST, STAGING)
INSERT_REJECTION = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
    sql.Identifier(REJECTIONS_TABLE),
    sql.SQL(", ").join(map(sql.Identifier, REJECTION_COLUMNS)),
    sql.SQL(", ").join(sql.Placeholder() * len(REJECTION_COLUMNS)),
)
