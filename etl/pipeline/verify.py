"""The loop of ``etl verify``: read, decode, check, and with ``--repair`` store what is missing.

Per batch:
  1. read a bounded batch from the source: an explicit assignment of the ranges chosen by
     `etl.core.verify.plan_range`, which never joins the consumer group nor commits;
  2. decode it with the compiled core exactly as ``etl run`` does (`etl.pipeline.reading`), at
     one ``latest_allowed`` per batch, so the rows are the binary COPY tuples a run would send;
  3. ``checker.check``: one set-based comparison with the database (`etl.pg.verify`);
  4. with ``repair``: the missing messages' rows (their very COPY tuples) and rejections go
     through ``sink.write`` in one transaction, ``ON CONFLICT DO NOTHING``, the path of a run,
     with no offset range: the database's position and the group's offsets stay as they were.
     A row that differs is never overwritten; the tally names it.
Steps 3-4 run on a thread of their own while the next batch is read and decoded (the values of
two batches at most are held: ``max_bytes``, as in a run); the next batch is checked only after
this one's repair is committed, so a key repaired here is a duplicate there, as in a run. A
stop request (SIGTERM) ends the loop between batches with `Interrupted`: repairs written so
far are committed, the check is incomplete.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from etl.core.batch import BatchDecoder
from etl.core.counts import RunCounts
from etl.core.errors import Interrupted
from etl.core.ports import Sink, Source
from etl.core.statements import rows_where
from etl.core.verify import Checker, Tally, named
from etl.pipeline.reading import BatchReader, DecodedBatch, share_of


@dataclass(frozen=True)
class VerifySettings:
    topic: str
    max_messages: int
    max_bytes: int
    clock_skew: timedelta


class Verification:
    """One check of the planned ranges (the ``tally``'s partitions), repairing when given a
    sink."""

    def __init__(
        self,
        settings: VerifySettings,
        *,
        source: Source,
        checker: Checker,
        tally: Tally,
        sink: Sink | None = None,
        stop_requested: Callable[[], bool] = lambda: False,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.source = source
        self.checker = checker
        self.tally = tally
        self.sink = sink
        self.stop_requested = stop_requested
        self.now = now
        self.batches = 0

    def execute(self) -> Tally:
        """Check every planned offset; the tally, or `Interrupted` on a stop request."""
        s = self.settings
        if not any(p.span.stop > p.span.start for p in self.tally.partitions.values()):
            return self.tally  # nothing to read: no consumer at all
        self.source.start(lambda: None)
        reader = BatchReader(
            self.source,
            BatchDecoder(RunCounts(), log_rejections=False),
            self.stop_requested,
            s.max_messages,
            share_of(s.max_bytes, 1),
        )
        checking = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-verify")
        pending: Future[None] | None = None
        try:
            while not self.source.finished():
                if self.stop_requested():
                    raise Interrupted(
                        "stopped by signal: the check is incomplete (repairs made are committed)"
                    )
                batch = reader.read(self.now() + s.clock_skew)
                if pending is not None:
                    pending.result()  # checked and repaired before the next batch is checked
                    pending = None
                if batch.rows.count or batch.rejections:
                    pending = checking.submit(contextvars.copy_context().run, self._check, batch)
            if pending is not None:
                pending.result()
        finally:
            checking.shutdown(wait=True)
            reader.close()
            self.source.close()
        return self.tally

    def _check(self, batch: DecodedBatch) -> None:
        found = self.checker.check(batch.rows, [r.message for r in batch.rejections])
        self.tally.add(found)
        self.batches += 1
        missing = named(found, "missing")
        if self.sink is None or not missing:
            return
        rows = rows_where(batch.rows, lambda partition, offset: (partition, offset) in missing)
        rejections = [
            r for r in batch.rejections if (r.message.partition, r.message.offset) in missing
        ]
        self.sink.write(self.settings.topic, rows, rejections, {})
        self.tally.repaired(missing)
