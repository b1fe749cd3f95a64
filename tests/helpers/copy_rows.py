"""Reading binary COPY tuples back, so tests can check what the core hands to PostgreSQL."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta
from typing import NamedTuple

from etl.core.decode import Decoded, decode_batch
from etl.core.ports import Message, RowBatch

_PG_EPOCH = datetime(2000, 1, 1)


class CopyRow(NamedTuple):
    org_id: int
    account_number: int
    cluster: str
    report: bytes
    updated_at: datetime
    kafka_offset: int
    kafka_partition: int


def parse(data: bytes) -> list[CopyRow]:
    """Tuples in `etl.core.statements.COLUMNS` order, as PostgreSQL's binary COPY reads them."""
    rows, pos = [], 0
    while pos < len(data):
        (count,) = struct.unpack_from(">h", data, pos)
        assert count == 7
        pos += 2
        fields = []
        for _ in range(count):
            (size,) = struct.unpack_from(">i", data, pos)
            fields.append(data[pos + 4 : pos + 4 + size])
            pos += 4 + size
        org, account, cluster, report, stamp, offset, partition = fields
        rows.append(
            CopyRow(
                int.from_bytes(org, "big", signed=True),
                int.from_bytes(account, "big", signed=True),
                cluster.decode(),
                report,
                _PG_EPOCH + timedelta(microseconds=int.from_bytes(stamp, "big", signed=True)),
                int.from_bytes(offset, "big", signed=True),
                int.from_bytes(partition, "big", signed=True),
            )
        )
    return rows


def decoded_rows(decoded: Decoded) -> list[CopyRow]:
    """Every chunk's tuples, chunk after chunk (one chunk per partition)."""
    return [row for chunk in decoded.chunks for row in parse(bytes(memoryview(chunk)))]


def batch_of(values: list[bytes], latest: datetime, partition: int = 0) -> RowBatch:
    """The valid ones of ``values`` (offsets 0..n-1) as the run hands them to the sink."""
    messages = [Message(partition, i, None, v) for i, v in enumerate(values)]
    decoded = decode_batch(messages, latest)
    assert not decoded.rejections, decoded.rejections
    return RowBatch(decoded.chunks, decoded.rows, decoded.request_ids)
