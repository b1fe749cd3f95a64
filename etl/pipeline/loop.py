"""The run loop: `Run.execute` is one whole run (see the package docstring for the design).

Batch N is completed on this thread, in order: its write waited for (a stop request gives it
`STOP_GRACE_SECONDS`, then cancels it in the database), its tracker events flushed, then its
offsets committed. At most ``writers`` batches are stored at once, while the next is read.
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
from etl.pipeline.reading import BatchReader, share_of

log = events.logger(__name__)


STOP_GRACE_SECONDS = 3.0  # a write in flight may finish this long after a stop request
_WAIT_SLICE_SECONDS = 0.2

OnBatch = Callable[[Sequence[PartitionProgress], RunCounts], None]


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
    # When the process started, on ``clock``'s scale (None: when `execute` is called). The
    # duration pushed and logged runs from here to just before the push: the whole job.
    started: float | None = None
    counts: RunCounts = field(default_factory=RunCounts)
    # The id begin_run recorded: what a crash, which returns no summary, can still be tagged with.
    run_id: int | None = field(default=None, init=False)
    # The run's own state, never passed in: the batches in flight (oldest first), the offset
    # committed last per partition, and the log context's run id to restore at the end.
    _pending: deque[_InFlight] = field(default_factory=deque, init=False, repr=False)
    _committed: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _run_id_token: Token[int | None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        self._reader = BatchReader(
            self.source,
            BatchDecoder(self.counts),
            self.stop_requested,
            s.max_messages,
            share_of(s.max_bytes, s.writers),
        )
        self._writer = ThreadPoolExecutor(
            max_workers=max(1, s.writers), thread_name_prefix="etl-sink"
        )

    def execute(self) -> RunSummary:
        """Returns the summary; re-raises only unexpected errors (bugs), after reporting them."""
        started = self.clock() if self.started is None else self.started
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
            self._finish(summary, started)
            if self._run_id_token is not None:
                events.RUN_ID.reset(self._run_id_token)
        return summary

    def _loop(self, summary: RunSummary) -> None:
        s = self.settings
        self.sink.check_schema()
        # A usage error found here (no such partition) records no run. On a rebalance the
        # batches in flight are stored and committed before the partitions are given up.
        self.source.start(self._complete_pending)
        summary.run_id = self.run_id = self.sink.begin_run(s.topic, s.group_id, s.options)
        self._run_id_token = events.RUN_ID.set(summary.run_id)  # every later line carries it
        with _collect_per_batch():
            while not self.source.finished() and not self.stop_requested():
                batch = self._reader.read(self.now() + s.clock_skew)
                rows, rejections, offsets = batch.rows, batch.rejections, batch.offsets
                if batch.revoked:  # revoked while this batch was read: their new owner reads them
                    rows = rows.of_partitions(offsets.keys())
                    rejections = [r for r in rejections if r.message.partition in offsets]
                while len(self._pending) >= max(1, s.writers):
                    self._complete_oldest()  # durable, tracked, committed, in batch order
                ranges = batch.ranges()  # recorded with the rows: the database's own position
                write = None
                if rows.count or rejections or ranges:
                    write = self._writer.submit(
                        contextvars.copy_context().run,
                        self.sink.write,
                        s.topic,
                        rows,
                        rejections,
                        ranges,
                    )
                self._pending.append(_InFlight(write, offsets, rows, rejections))
                if self.source.exhausted():  # store and commit now, not after the source's wait
                    self._complete_pending()
                gc.collect(1)
            self._complete_pending()

    def _complete_pending(self) -> None:
        """Complete every batch in flight, oldest first, and settle the last commit."""
        while self._pending:
            self._complete_oldest()
        self._note_committed(self.source.settle())

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
        self._note_committed(self.source.commit(changed))
        if self.on_batch is not None:
            self.on_batch(self.source.progress(), self.counts)

    def _note_committed(self, offsets: Mapping[int, int]) -> None:
        """Offsets the source took; a confirmation that arrives after a later commit was taken
        (one left in flight through a rebalance callback) never moves a partition back."""
        for p, o in offsets.items():
            if o > self._committed.get(p, o - 1):
                self._committed[p] = o

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

    def _finish(self, summary: RunSummary, started: float) -> None:
        """Whatever the outcome, in this order: stop the workers, settle where each partition
        stands, close the tracker, record the run, publish the metrics, log the summary line.

        A final state that cannot be read, or a run row that cannot be completed, is logged
        and the later steps still run: a failed run is recorded, pushed and logged as well as
        it can be. The source and the sink are closed before the push, whose time is not counted.
        """
        self._stop_workers()
        self._settle_partitions(summary)
        self._close_tracker()
        counts = self._totals()
        self._record(summary, counts)
        pushed = self._publish(summary, started)
        self._log_finished(summary, counts, pushed)

    def _stop_workers(self) -> None:
        """Stop reading ahead and wait for a write still in flight (after a failure elsewhere):
        it must end before the sink is reused. Its offsets stay uncommitted, so the next run
        re-reads (and skips) that batch."""
        self._reader.close()
        self._writer.shutdown(wait=True)

    def _settle_partitions(self, summary: RunSummary) -> None:
        """Each partition's final state in ``summary.partitions`` and in the metrics: where it
        stands, what retention skipped, the drift, and the lag left behind.

        "reached" is what was stored and committed, not what was read ahead of it. The lag
        covers every partition of the topic, failed runs included, even one that failed before
        the source started: the source bounds the question and answers None where Kafka does
        not. A crashed run's state is not trusted: its lag is unknown.
        """
        m = self.counts
        crashed = summary.status == "crashed"
        if not crashed:  # a failed run's last commit, sent before the failure, may have landed
            try:
                self._note_committed(self.source.settle())
            except EtlError as exc:
                log.warning("last_commit_unsettled", error=str(exc))
        try:
            summary.partitions = [
                dataclasses.replace(p, next=self._committed.get(p.partition, p.start))
                for p in self.source.progress()
            ]
            for part in summary.partitions:
                m.set_skipped(part.partition, part.skipped_by_retention)
                m.note_position(part.partition, part.drift, part.rewound)
        except EtlError as exc:
            log.error("final_state_unreadable", error=str(exc))
        held = [p.partition for p in summary.partitions]
        lag = dict.fromkeys(held) if crashed else self.source.lag(self._committed)
        m.set_lag(lag)
        m.cover([*lag, *held])  # this run's samples replace an earlier run's

    def _close_tracker(self) -> None:
        """Close the tracker (its last events flushed) and count the events it failed to send."""
        self.tracker.close()
        self.counts.set("etl_tracker_errors", self.tracker.errors)

    def _totals(self) -> dict[str, int]:
        """The run's totals as the runs table records them and the summary line logs them."""
        m = self.counts
        return {
            "consumed": int(m.get("etl_messages_consumed")),
            "inserted": int(m.get("etl_rows_inserted")),
            "duplicates": int(m.get("etl_rows_duplicate")),
            "rejected": sum(m.rejected().values()),
            "bytes_consumed": int(m.get("etl_bytes_consumed")),
        }

    def _record(self, summary: RunSummary, counts: dict[str, int]) -> None:
        """End the run's row in the runs table (when it was begun), then close the source and
        the sink whatever happened; a row left incomplete is logged, not raised."""
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

    def _publish(self, summary: RunSummary, started: float) -> bool:
        """Set the duration and the outcome in the metrics and push them; whether the push
        succeeded. The duration counts everything but the push itself: the lag query, the
        run's record and the closes."""
        duration = summary.duration_seconds = self.clock() - started
        self.counts.finish(summary.exit_code, self.now().timestamp(), duration)
        return self.publisher.push(self.counts)

    def _log_finished(self, summary: RunSummary, counts: dict[str, int], pushed: bool) -> None:
        """The one ``run_finished`` line: outcome, totals, rejections by reason and each
        partition's range (an error line when the run did not succeed)."""
        m = self.counts
        log_fn = log.info if summary.exit_code == EXIT_OK else log.error
        fields: dict[str, Any] = {
            "status": summary.status,
            "exit_code": summary.exit_code,
            "error": summary.error,
            "run_id": summary.run_id,
            "dry_run": self.settings.dry_run,
            "duration_seconds": round(summary.duration_seconds, 3),
            **counts,
            "rejected": {k: v for k, v in m.rejected().items() if v},  # by reason
            "batches": int(m.get("etl_batches")),
            "partitions": {
                p.partition: {
                    "start": p.start,
                    "stop": p.stop,
                    "reached": p.next,
                    # where the database and the group disagreed (see etl.core.positions)
                    **({"drift": p.drift} if p.drift else {}),
                    **({"rewound": p.rewound} if p.rewound else {}),
                }
                for p in summary.partitions
            },
            "metrics_pushed": pushed,
        }
        log_fn("run_finished", **fields)
