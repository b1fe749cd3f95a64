"""What the sink sends: the tables and columns it writes, its SQL, and the binary COPY framing.

Pure: no connection here. Every statement is composed with `psycopg.sql`. The rows themselves
are binary COPY tuples built by the compiled core (`etl.core.decode.decode_batch`) in `COLUMNS`
order; the sink sends `COPY_HEADER`, the tuples, then `COPY_TRAILER`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from psycopg import sql

from etl.core.decode import CopyData
from etl.core.ports import RowBatch, StoredRejection

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
# PostgreSQL's binary COPY file framing: signature, flags (no OIDs), header extension length 0;
# and the end marker, a field count of -1.
COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER: Final = b"\xff\xff"
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
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
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


_OFFSET_FIELD: Final = COLUMNS.index("kafka_offset")


def rows_where(rows: RowBatch, keep: Callable[[int, int], bool]) -> RowBatch:
    """The binary COPY tuples whose message (partition, ``kafka_offset``) ``keep`` accepts,
    bytes unchanged, one chunk per chunk that keeps any, read field by field in Python: for
    cold paths only (``etl verify --repair``). Request ids are not carried: nothing tracks a
    repair."""
    out = RowBatch()
    for chunk in rows.chunks:
        view = memoryview(chunk)
        kept = bytearray()
        count = pos = 0
        while pos < len(view):
            start = pos
            fields = int.from_bytes(view[pos : pos + 2], "big", signed=True)
            pos += 2
            offset = -1
            for index in range(fields):
                length = int.from_bytes(view[pos : pos + 4], "big", signed=True)
                pos += 4
                if index == _OFFSET_FIELD:
                    offset = int.from_bytes(view[pos : pos + length], "big", signed=True)
                pos += max(length, 0)
            if keep(chunk.partition, offset):
                kept += view[start:pos]
                count += 1
        if count:
            out.chunks.append(CopyData(chunk.partition, count, bytes(kept)))
            out.count += count
    return out
