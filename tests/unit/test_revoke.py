"""Partitions revoked while a batch was read: their rows go as whole chunks, the rest stay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from etl.core.decode import decode_batch
from etl.core.ports import Batch, Message, RowBatch
from tests.helpers.copy_rows import parse
from tests.unit.test_run import FakeSink, FakeSource, run_with, value

LATEST = datetime.now(UTC) + timedelta(minutes=5)


def with_id(org: int, request_id: str) -> bytes:
    return value(org).replace(b'"OrgID"', f'"RequestId":"{request_id}","OrgID"'.encode())


def test_of_partitions_keeps_the_chunks_of_the_kept_partitions_untouched() -> None:
    messages = [
        Message(0, 10, None, with_id(1, "a")),
        Message(1, 20, None, with_id(2, "b")),
        Message(2, 30, None, with_id(3, "c")),
        Message(0, 11, None, with_id(4, "d")),
    ]
    decoded = decode_batch(messages, LATEST)
    rows = RowBatch(decoded.chunks, decoded.rows, decoded.request_ids)
    kept = rows.of_partitions({0, 2})
    assert [(c.partition, c.rows) for c in kept.chunks] == [(0, 2), (2, 1)]
    assert kept.count == 3
    assert all(k is c for k, c in zip(kept.chunks, [rows.chunks[0], rows.chunks[2]], strict=True))
    tuples = [(r.kafka_partition, r.kafka_offset) for c in kept.chunks for r in parse(bytes(c))]
    assert tuples == [(0, 10), (0, 11), (2, 30)]
    # as documented: the tracker may report a row its new owner stores a moment later
    assert kept.request_ids == ["a", "b", "c", "d"]


class Revoking(FakeSource):
    """Hands out partitions 0 and 1, then loses partition 1 to a rebalance within the batch."""

    def __init__(self, events: list[str]) -> None:
        super().__init__(events, [], stop=2)
        first = [
            Message(0, 0, None, value(1)),
            Message(1, 0, None, value(2)),
            Message(1, 1, None, b"nope"),
        ]
        self.slices = [
            Batch(first, {0: 1, 1: 2}, 1, {0: 0, 1: 0}),
            Batch([Message(0, 1, None, value(3))], {0: 2}, 1, {}),
        ]

    def read_batch(
        self, max_messages: int, max_bytes: int, stop_requested: Callable[[], bool]
    ) -> Batch:
        if not self.slices:
            return Batch([], {0: self.part.next}, 0, {})
        batch = self.slices.pop(0)
        self.part.next = batch.next_offsets[0]
        return batch


def test_a_partition_revoked_while_reading_stores_none_of_its_rows_or_rejections() -> None:
    events: list[str] = []
    sink = FakeSink(events)
    summary, _, _ = run_with(Revoking(events), sink, max_messages=10)
    assert summary.exit_code == 0
    assert [(r.kafka_partition, r.kafka_offset, r.org_id) for r in sink.rows] == [
        (0, 0, 1),
        (0, 1, 3),
    ]
    assert sink.rejections == []
    assert events.count("write 2+0") == 1
    assert "commit {0: 2}" in events
