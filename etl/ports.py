"""The small interfaces between the run loop and its adapters, and the values that cross them.

`etl.run` depends only on these; `etl.source`, `etl.sink` and `etl.metrics` implement them against
Kafka, PostgreSQL and the Pushgateway, and tests implement them in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from etl.decode import CopyData, Rejection


class Message(NamedTuple):
    """One Kafka record as the run sees it."""

    partition: int
    offset: int
    timestamp_ms: int | None  # broker or producer timestamp, None when the record has none
    value: bytes | None


@dataclass
class Batch:
    """Messages read together, and the offsets to commit once they are durably stored.

    ``next_offsets[p]`` is the offset of the first message of partition ``p`` not yet handed
    out: everything below it is in this batch or an earlier one. It can exceed the last message
    offset + 1 when a partition ends in transaction markers.
    """

    messages: list[Message]
    next_offsets: dict[int, int]
    size_bytes: int


@dataclass
class PartitionProgress:
    """Where one partition started, where the run stops, and what it has handed out so far."""

    partition: int
    start: int
    stop: int
    next: int
    skipped_by_retention: int = 0

    @property
    def done(self) -> bool:
        return self.next >= self.stop


@dataclass
class RowBatch:
    """The valid rows of one batch, ready for ``COPY ... (FORMAT BINARY)``.

    ``chunks`` are runs of binary COPY tuples in `etl.statements.COLUMNS` order (Kafka
    coordinates included), without the file header and trailer: one chunk per decoded slice.
    """

    chunks: list[CopyData] = field(default_factory=list)
    count: int = 0
    request_ids: list[str] = field(default_factory=list)  # for the payload tracker


class StoredRejection(NamedTuple):
    """A rejected message with its coordinates and raw value (the sink truncates it)."""

    rejection: Rejection
    message: Message


class WriteResult(NamedTuple):
    inserted: int
    duplicates: int


class Source(Protocol):
    """Kafka: hand out bounded batches up to each partition's stop offset; commit on request."""

    def start(self) -> None:
        """Connect and subscribe; raises KafkaUnavailable if the topic cannot be reached."""

    def read_batch(
        self, max_messages: int, max_bytes: int, stop_requested: Callable[[], bool]
    ) -> Batch:
        """Up to ``max_messages``/``max_bytes``; empty only when finished or stop requested."""

    def finished(self) -> bool:
        """True once assigned and every assigned partition has reached its stop offset."""

    def commit(self, next_offsets: Mapping[int, int]) -> None:
        """Synchronously commit these next offsets for the consumer group."""

    def progress(self) -> Sequence[PartitionProgress]:
        """Per-partition progress of the partitions assigned now."""

    def lag(self, reached: Mapping[int, int]) -> dict[int, int]:
        """Per partition: its end offset now minus ``reached`` (default: where it started)."""

    def close(self) -> None:
        """Leave the group and release the connection."""


class Sink(Protocol):
    """PostgreSQL: store one batch's rows and rejections in one transaction, idempotently."""

    def check_schema(self) -> None:
        """Raise SchemaMissing if a table or column the sink writes is absent."""

    def write(
        self, topic: str, rows: RowBatch, rejections: Sequence[StoredRejection]
    ) -> WriteResult:
        """Durably commit the batch or raise; replaying a batch inserts nothing twice."""

    def begin_run(self, topic: str, group_id: str, options: Mapping[str, Any]) -> int | None:
        """Record a starting run in the runs table; its id (None when not recorded)."""

    def end_run(
        self,
        run_id: int,
        topic: str,
        *,
        status: str,
        exit_code: int,
        error: str | None,
        counts: Mapping[str, int],
        partitions: Sequence[PartitionProgress],
    ) -> None:
        """Complete the run's record with its outcome, counts and offsets reached."""

    def close(self) -> None:
        """Release the connection."""
