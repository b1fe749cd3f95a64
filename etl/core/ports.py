"""The small interfaces between the run loop and its adapters, and the values that cross them.

`etl.pipeline` depends only on these; `etl.kafka` (`Source`, `Tracker`), `etl.pg` (`Sink`) and
`etl.metrics` (`Publisher`) implement them against Kafka, PostgreSQL and the Pushgateway, and
tests implement them in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from etl.core.counts import RunCounts
from etl.core.decode import CopyData, Rejection
from etl.core.positions import StoredPositions


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
    # Where each partition of ``next_offsets`` stood before this batch: the batch covers
    # ``[start_offsets[p], next_offsets[p])``, the range its transaction records as stored.
    start_offsets: dict[int, int] = field(default_factory=dict)


@dataclass
class PartitionProgress:
    """Where one partition started, where the run stops, and what it has handed out so far."""

    partition: int
    start: int
    stop: int
    next: int
    skipped_by_retention: int = 0
    drift: int | None = None  # the database's position minus the group's, at assignment
    rewound: int = 0  # messages read again because the database was behind the group

    @property
    def done(self) -> bool:
        return self.next >= self.stop


@dataclass
class RowBatch:
    """The valid rows of one batch, ready for ``COPY ... (FORMAT BINARY)``.

    ``chunks`` are runs of binary COPY tuples in `etl.core.statements.COLUMNS` order (Kafka
    coordinates included), without the file header and trailer: one chunk per partition of
    each decoded slice, tagged with its partition and row count. ``count`` is their rows.
    """

    chunks: list[CopyData] = field(default_factory=list)
    count: int = 0
    request_ids: list[str] = field(default_factory=list)  # for the payload tracker

    def of_partitions(self, keep: Collection[int]) -> RowBatch:
        """The rows of ``keep``'s partitions only: whole chunks, never a parse of the tuples.

        For a rebalance that revoked partitions while a batch was being read, so that their
        new owner, not this run, stores them. Request ids stay as they were: the tracker may
        report a row its new owner stores a moment later.
        """
        chunks = [c for c in self.chunks if c.partition in keep]
        return RowBatch(chunks, sum(c.rows for c in chunks), self.request_ids)


class StoredRejection(NamedTuple):
    """A rejected message with its coordinates and raw value (the sink truncates it)."""

    rejection: Rejection
    message: Message


class WriteResult(NamedTuple):
    inserted: int
    duplicates: int


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, as its record in the runs table keeps it."""

    run_id: int
    topic: str
    status: str  # completed, failed, interrupted, crashed
    exit_code: int
    error: str | None
    counts: Mapping[str, int]  # consumed, inserted, duplicates, rejected, bytes_consumed
    partitions: Sequence[PartitionProgress]  # start, stop and reached per partition


class Source(Protocol):
    """Kafka: hand out bounded batches up to each partition's stop offset; commit on request."""

    def start(self, before_revoke: Callable[[], None]) -> None:
        """Connect and subscribe; raises KafkaUnavailable if the topic cannot be reached.

        ``before_revoke`` is called when partitions are about to be revoked, while they are
        still owned: the run stores and commits what it has in flight there.
        """

    def read_batch(
        self, max_messages: int, max_bytes: int, stop_requested: Callable[[], bool]
    ) -> Batch:
        """Up to ``max_messages``/``max_bytes``; empty only when finished or stop requested."""

    def finished(self) -> bool:
        """True once assigned, every assigned partition has reached its stop offset and, for a
        consumer-group member, every partition of the topic was committed up to its stop."""

    def exhausted(self) -> bool:
        """True when nothing is left to hand out now: every partition owned has been read up to
        its stop offset (a rebalance may still bring more). The run then stores and commits
        what it holds instead of keeping it in flight while the source waits."""

    def commit(self, next_offsets: Mapping[int, int]) -> Mapping[int, int]:
        """Commit these next offsets for the consumer group, those of partitions owned now
        only, without waiting for the broker (they may wait for an earlier commit's answer).
        Returns the offsets taken since the last call: those the broker confirmed meanwhile,
        and these at once when it writes none. A failed earlier commit raises here."""

    def settle(self) -> Mapping[int, int]:
        """Commit, under a deadline and waiting for the answer, whatever `commit` took that no
        answer confirmed yet; the offsets taken (none when a rebalance refused them)."""

    def progress(self) -> Sequence[PartitionProgress]:
        """Per-partition range of every partition this run held, across rebalances."""

    def lag(self, reached: Mapping[int, int]) -> Mapping[int, int | None]:
        """Every partition of the topic: its end offset now minus what was reached (this run's
        ``reached``, or what the group committed). Asked of every run that did not crash, also
        one that failed before `start`; bounded, and never raises: when Kafka does not answer,
        None for each partition known (none known: empty)."""

    def close(self) -> None:
        """Leave the group and release the connection."""


class Sink(Protocol):
    """PostgreSQL: store one batch's rows and rejections in one transaction, idempotently."""

    def check_schema(self) -> None:
        """Raise SchemaMissing if a table or column the sink writes is absent."""

    def write(
        self,
        topic: str,
        rows: RowBatch,
        rejections: Sequence[StoredRejection],
        ranges: Mapping[int, tuple[int, int]],
    ) -> WriteResult:
        """Durably commit the batch, with the offset ranges it covers per partition (see
        `etl.core.positions`), or raise; replaying a batch inserts nothing twice."""

    def begin_run(self, topic: str, group_id: str, options: Mapping[str, Any]) -> int | None:
        """Record a starting run in the runs table; its id (None when not recorded)."""

    def end_run(self, outcome: RunOutcome) -> None:
        """Complete the run's record with its outcome, counts and offsets reached."""

    def cancel(self) -> None:
        """From another thread: cancel the write in flight; it then fails, rolled back."""

    def close(self) -> None:
        """Release the connection."""


class Positions(Protocol):
    """The database's own progress for the run's topic and group (`etl.core.positions`)."""

    def read(self, partitions: Sequence[int]) -> StoredPositions:
        """What the database vouches for now (compacting its stored ranges as it goes)."""

    def adopt(self, origins: Mapping[int, int]) -> None:
        """Record these starts as the origins of partitions the database holds no chain for."""


class Tracker(Protocol):
    """The payload tracker: status events per request id. Its failures are only counted."""

    errors: int

    def send(self, request_ids: Iterable[str], status: str) -> None:
        """Queue one event per id; never raises."""

    def flush(self) -> None:
        """Wait (bounded) until queued events are delivered or failed; never raises."""

    def close(self) -> None: ...


class NullTracker:
    """No tracker topic configured."""

    errors = 0

    def send(self, request_ids: Iterable[str], status: str) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class Publisher(Protocol):
    """Where a run's counts go at its end (the Pushgateway); a failure never fails the run."""

    def push(self, counts: RunCounts) -> bool:
        """Publish once; True when published, False when not configured or it failed."""
