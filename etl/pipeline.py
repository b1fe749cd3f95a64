"""The run loop: read a batch, decode it, store it, then commit its offsets, up to the stop offsets.

Commit order, the heart of the design, per batch:
  1. read a bounded batch from the source (never past a partition's stop offset);
  2. decode every message, one call into the compiled core per slice: a binary COPY row or a
     `Rejection`, never an exception;
  3. ``sink.write``: rows and rejections in ONE database transaction, committed durably;
  4. flush the payload tracker's events for the batch (its failures are only counted);
  5. only then ``source.commit`` the batch's next offsets, synchronously.
A crash between 3 and 5 makes the next run re-read the batch; the sink's ``ON CONFLICT DO
NOTHING`` turns that replay into duplicates skipped, never duplicate rows. Nothing is committed
to Kafka that is not in the database.

Three kinds of work overlap, on three kinds of thread: this one reads slices from the source;
the decoding thread turns each slice into rows (the core releases the GIL) while the next one
is read; ``writers`` sink threads each store one batch, on a connection of their own, so the
server ingests with more than one core. Steps 4-5 stay on this thread and in batch order:
batch N is completed (waited for, tracked, committed) before batch N + 1, whatever finished
first, so a committed offset never passes a batch that is not yet durable. Memory: the values
of the batch being read and of the batches being stored share ``max_bytes``, each batch
carrying at most ``max_bytes / (writers + 1)``.

The loop ends when the source is finished (a group member: the whole topic committed up to
its stop offsets, by this copy or another; see `etl.kafka.source`), or, after a stop request
(SIGTERM/SIGINT), once the batch being read has been written and committed. When partitions are
revoked, the source calls back into `_complete_pending` before giving them up, so the batch in
flight is stored and committed while they are still owned; rows of the batch being read whose
partitions were revoked are dropped, unstored and uncommitted, for their new owner to read.
Whatever happens, `execute` completes the run record, finishes and pushes the metrics, logs one
summary event and closes the adapters.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import gc
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextvars import Token
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from etl.core import events
from etl.core.batch import BatchDecoder
from etl.core.counts import RunCounts
from etl.core.errors import EXIT_BUG, EXIT_OK, EtlError, Interrupted
from etl.core.ports import (
    NullTracker,
    PartitionProgress,
    Publisher,
    RowBatch,
    RunOutcome,
    Sink,
    Source,
    StoredRejection,
    Tracker,
    WriteResult,
)
from etl.core.statements import rows_of_partitions

log = events.logger(__name__)


STOP_GRACE_SECONDS = 3.0  # a write in flight may finish this long after a stop request
_WAIT_SLICE_SECONDS = 0.2

OnBatch = Callable[[Sequence[PartitionProgress], RunCounts], None]


_FIRST_SLICE_DIVISOR = 32
_SLICES = 2  # a batch is read in slices of batch_bytes / _SLICES


@contextlib.contextmanager
def _collect_per_batch() -> Iterator[None]:
    """Python's cyclic garbage collector off inside the loop, run once per batch instead.

    Every message becomes a tuple the collector tracks, so with its default thresholds it ran
    every 700 of them and took about a tenth of the job's CPU, finding nothing: the loop makes
    no reference cycles of its own. What exists before the loop is frozen out of its scans.
    """
    enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class RunSettings:
    """The part of the configuration the loop itself needs."""

    topic: str
    max_messages: int
    max_bytes: int  # values held at once, across the batch being read and those being stored
    clock_skew: timedelta
    group_id: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)  # recorded in the runs table
    dry_run: bool = False
    writers: int = 1  # batches stored at once, each on its own connection


@dataclass
class RunSummary:
    exit_code: int = EXIT_OK
    status: str = "completed"
    error: str | None = None
    run_id: int | None = None
    partitions: list[PartitionProgress] = field(default_factory=list)
    duration_seconds: float = 0.0


@dataclass
class _InFlight:
    """A decoded batch handed to the writer, and what to do once it is stored."""

    write: Future[WriteResult] | None  # None: nothing to store, only offsets to commit
    offsets: dict[int, int]
    rows: RowBatch
    rejections: list[StoredRejection]


@dataclass
class Run:
    """One run's collaborators; `execute` is the whole run."""

    settings: RunSettings
    source: Source
    sink: Sink
    publisher: Publisher
    stop_requested: Callable[[], bool]
    tracker: Tracker = field(default_factory=NullTracker)
    on_batch: OnBatch | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    clock: Callable[[], float] = time.monotonic
    counts: RunCounts = field(default_factory=RunCounts)
    _pending: deque[_InFlight] = field(default_factory=deque)  # oldest first
    _run_id_token: Token[int | None] | None = None
    _committed: dict[int, int] = field(default_factory=dict)
    _slice_bytes: int = 0  # the next slice's byte budget, growing to batch_bytes / 2

    def __post_init__(self) -> None:
        self._decoder = BatchDecoder(self.counts)
        self._decoding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-decode")
        self._writer = ThreadPoolExecutor(
            max_workers=max(1, self.settings.writers), thread_name_prefix="etl-sink"
        )

    @property
    def batch_bytes(self) -> int:
        """One batch's share of ``max_bytes``: the values held at once by the batch being read
        and the ``writers`` batches being stored stay within ``max_bytes``."""
        s = self.settings
        return max(1, s.max_bytes // (max(1, s.writers) + 1))

    def execute(self) -> RunSummary:
        """Returns the summary; re-raises only unexpected errors (bugs), after reporting them."""
        started = self.clock()
        summary = RunSummary()
        try:
            self._loop(summary)
            if self.stop_requested():
                raise Interrupted("stopped by signal after committing the written batches")
        except EtlError as exc:
            summary.exit_code, summary.error = exc.exit_code, str(exc)
            summary.status = "interrupted" if isinstance(exc, Interrupted) else "failed"
        except BaseException as exc:
            summary.exit_code, summary.error, summary.status = EXIT_BUG, repr(exc), "crashed"
            raise
        finally:
            self._finish(summary, self.clock() - started)
            if self._run_id_token is not None:
                events.RUN_ID.reset(self._run_id_token)
        return summary

    def _loop(self, summary: RunSummary) -> None:
        s = self.settings
        self.sink.check_schema()
        # A usage error found here (no such partition) records no run. On a rebalance the
        # batch in flight is stored and committed before the partitions are given up.
        self.source.start(self._complete_pending)
        summary.run_id = self.sink.begin_run(s.topic, s.group_id, s.options)
        self._run_id_token = events.RUN_ID.set(summary.run_id)  # every later line carries it
        self._committed: dict[int, int] = {}
        self._slice_bytes = max(1, self.batch_bytes // _FIRST_SLICE_DIVISOR)
        with _collect_per_batch():
            while not self.source.finished() and not self.stop_requested():
                rows, rejections, offsets, revoked = self._read_decoded()
                if revoked:  # revoked while this batch was read: their new owner reads them
                    rows = rows_of_partitions(rows, offsets.keys())
                    rejections = [r for r in rejections if r.message.partition in offsets]
                while len(self._pending) >= max(1, s.writers):
                    self._complete_oldest()  # durable, tracked, committed, in batch order
                write = None
                if rows.count or rejections:
                    write = self._writer.submit(
                        contextvars.copy_context().run, self.sink.write, s.topic, rows, rejections
                    )
                self._pending.append(_InFlight(write, offsets, rows, rejections))
                if self.source.exhausted():  # store and commit now, not after the source's wait
                    self._complete_pending()
                gc.collect(1)
            self._complete_pending()

    def _read_decoded(
        self,
    ) -> tuple[RowBatch, list[StoredRejection], dict[int, int], set[int]]:
        """One batch (``max_messages`` messages, `batch_bytes` of values at most), decoded as
        it is read.

        It is read in slices of half a batch; each slice is decoded on the decoding thread
        (the core releases the GIL) while the next one is read, so raw values of two slices at
        most are held beside the rows. Only the first batches are smaller (1/32, 1/8, then 1/2
        of a batch), so that the database starts working early instead of waiting for a whole
        first batch. The last value returned is the partitions revoked by a rebalance while
        the batch was read.
        """
        s = self.settings
        limit = self.batch_bytes
        rows = RowBatch()
        rejections: list[StoredRejection] = []
        offsets: dict[int, int] = {}
        held: set[int] = set()  # every partition owned at some slice of this batch
        count = size = 0
        latest_allowed = self.now() + s.clock_skew
        slice_bytes = min(max(1, limit // _SLICES), self._slice_bytes)
        self._slice_bytes *= 4
        decoding: Future[None] | None = None  # the previous slice, decoded while this one is read
        while count < s.max_messages and size < limit:
            part = self.source.read_batch(
                s.max_messages - count, min(limit - size, slice_bytes), self.stop_requested
            )
            count += len(part.messages)
            size += part.size_bytes
            offsets = part.next_offsets
            held.update(offsets)
            last = not part.messages or self.source.exhausted() or self.stop_requested()
            if decoding is not None:
                decoding.result()
            decoding = self._decoding.submit(
                contextvars.copy_context().run,
                self._decoder.decode_into,
                part,
                latest_allowed,
                rows,
                rejections,
            )
            if last:  # decided before the decoder empties the slice
                break
        if decoding is not None:
            decoding.result()
        return rows, rejections, offsets, held - offsets.keys()

    def _complete_pending(self) -> None:
        """Complete every batch in flight, oldest first."""
        while self._pending:
            self._complete_oldest()

    def _complete_oldest(self) -> None:
        """Wait for the oldest batch in flight to be stored, then flush its events and commit
        its offsets. Later batches may be stored already; their offsets wait for their turn,
        so a committed offset never passes a batch that is not yet durable."""
        pending = self._pending.popleft()
        if pending.write is not None:
            result = self._stored(pending.write)  # re-raises the sink's error: nothing committed
            self.counts.add("etl_rows_inserted", result.inserted)
            self.counts.add("etl_rows_duplicate", result.duplicates)
            self.counts.add("etl_batches", 1)
            self._track(pending.rows, pending.rejections)
        changed = {p: o for p, o in pending.offsets.items() if self._committed.get(p) != o}
        self._committed.update(self.source.commit(changed))
        if self.on_batch is not None:
            self.on_batch(self.source.progress(), self.counts)

    def _stored(self, write: Future[WriteResult]) -> WriteResult:
        """The write's result; a stop request lets it finish for `STOP_GRACE_SECONDS`, then
        cancels it in the database (rolled back, offsets uncommitted: nothing lost), so a stop
        is honoured within seconds even behind a lock or a stalled server."""
        stop_seen: float | None = None
        while True:
            try:
                return write.result(timeout=_WAIT_SLICE_SECONDS)
            except FutureTimeout:
                if not self.stop_requested():
                    continue
                now = self.clock()
                stop_seen = now if stop_seen is None else stop_seen
                if now - stop_seen >= STOP_GRACE_SECONDS:
                    self.sink.cancel()
                    stop_seen = now  # ask again after another grace if the first is lost

    def _track(self, rows: RowBatch, rejections: list[StoredRejection]) -> None:
        ok = rows.request_ids
        bad = [r.rejection.request_id for r in rejections if r.rejection.request_id]
        if not ok and not bad:
            return
        for status in ("received", "processed"):
            self.tracker.send(ok + bad, status)
        self.tracker.send(ok, "success")
        self.tracker.send(bad, "error")
        self.tracker.flush()

    def _finish(self, summary: RunSummary, duration: float) -> None:
        # A write still in flight after a failure elsewhere must end before the sink is reused;
        # its offsets stay uncommitted, so the next run re-reads (and skips) that batch.
        self._decoding.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        summary.duration_seconds = duration
        m = self.counts
        try:
            # "reached" is what was stored and committed, not what was read ahead of it.
            summary.partitions = [
                dataclasses.replace(p, next=self._committed.get(p.partition, p.start))
                for p in self.source.progress()
            ]
            for part in summary.partitions:
                m.set_skipped(part.partition, part.skipped_by_retention)
            # Every partition of the topic, failed runs included: the source bounds the
            # question and falls back on what it knows when the broker does not answer.
            if summary.status != "crashed":
                m.set_lag(self.source.lag(self._committed))
        except EtlError as exc:
            log.error("final_state_unreadable", error=str(exc))
        self.tracker.close()
        m.set("etl_tracker_errors", self.tracker.errors)
        counts = {
            "consumed": int(m.get("etl_messages_consumed")),
            "inserted": int(m.get("etl_rows_inserted")),
            "duplicates": int(m.get("etl_rows_duplicate")),
            "rejected": sum(m.rejected().values()),
            "bytes_consumed": int(m.get("etl_bytes_consumed")),
        }
        try:
            if summary.run_id is not None:
                self.sink.end_run(
                    RunOutcome(
                        summary.run_id,
                        self.settings.topic,
                        summary.status,
                        summary.exit_code,
                        summary.error,
                        counts,
                        summary.partitions,
                    )
                )
        except EtlError as exc:
            log.error("run_record_incomplete", run_id=summary.run_id, error=str(exc))
        finally:
            self.source.close()
            self.sink.close()
        m.finish(summary.exit_code, self.now().timestamp(), duration)
        pushed = self.publisher.push(m)
        log_fn = log.info if summary.exit_code == EXIT_OK else log.error
        fields: dict[str, Any] = {
            "status": summary.status,
            "exit_code": summary.exit_code,
            "error": summary.error,
            "run_id": summary.run_id,
            "dry_run": self.settings.dry_run,
            "duration_seconds": round(duration, 3),
            **counts,
            "rejected": {k: v for k, v in m.rejected().items() if v},  # by reason
            "batches": int(m.get("etl_batches")),
            "partitions": {
                p.partition: {"start": p.start, "stop": p.stop, "reached": p.next}
                for p in summary.partitions
            },
            "metrics_pushed": pushed,
        }
        log_fn("run_finished", **fields)
