"""The run loop: read a batch, decode it, store it, then commit its offsets, up to the stop offsets.

Commit order, the heart of the design, per batch:
  1. read a bounded batch from the source (never past a partition's stop offset);
  2. decode every message: a `Row` or a `Rejection`, never an exception;
  3. ``sink.write``: rows and rejections in ONE database transaction, committed durably;
  4. only then ``source.commit`` the batch's next offsets, synchronously.
A crash between 3 and 4 makes the next run re-read the batch; the sink's ``ON CONFLICT DO
NOTHING`` turns that replay into duplicates skipped, never duplicate rows. Nothing is committed
to Kafka that is not in the database.

The loop ends when every assigned partition reached its stop offset, or, after a stop request
(SIGTERM/SIGINT), once the batch being read has been written and committed. Whatever happens,
`execute` finishes the metrics, pushes them, logs one summary event and closes both adapters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from etl.decode import Rejection, decode
from etl.errors import EXIT_BUG, EXIT_OK, EtlError, Interrupted
from etl.metrics import RunMetrics
from etl.ports import Batch, PartitionProgress, Sink, Source, StoredRejection, StoredRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """The part of the configuration the loop itself needs."""

    topic: str
    max_messages: int
    max_bytes: int
    clock_skew: timedelta


@dataclass
class RunSummary:
    exit_code: int = EXIT_OK
    status: str = "completed"
    error: str | None = None
    partitions: list[PartitionProgress] = field(default_factory=list)
    duration_seconds: float = 0.0


def execute(
    settings: RunSettings,
    *,
    source: Source,
    sink: Sink,
    metrics: RunMetrics,
    stop_requested: Callable[[], bool],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    clock: Callable[[], float] = time.monotonic,
) -> RunSummary:
    """One whole run. Returns the summary; re-raises only unexpected errors (bugs)."""
    started = clock()
    summary = RunSummary()
    try:
        _loop(
            settings,
            source=source,
            sink=sink,
            metrics=metrics,
            stop_requested=stop_requested,
            now=now,
        )
        if stop_requested():
            raise Interrupted("stopped by signal after committing the written batches")
    except EtlError as exc:
        summary.exit_code, summary.error = exc.exit_code, str(exc)
        summary.status = "interrupted" if isinstance(exc, Interrupted) else "failed"
    except BaseException as exc:
        summary.exit_code, summary.error, summary.status = EXIT_BUG, repr(exc), "crashed"
        raise
    finally:
        _finish(
            summary,
            source=source,
            sink=sink,
            metrics=metrics,
            now=now,
            duration=clock() - started,
        )
    return summary


def _loop(
    settings: RunSettings,
    *,
    source: Source,
    sink: Sink,
    metrics: RunMetrics,
    stop_requested: Callable[[], bool],
    now: Callable[[], datetime],
) -> None:
    sink.check_schema()
    source.start()
    committed: dict[int, int] = {}
    seen_versions: set[str] = set()
    while not source.finished() and not stop_requested():
        batch = source.read_batch(settings.max_messages, settings.max_bytes, stop_requested)
        rows, rejections = _decode_batch(batch, now() + settings.clock_skew, metrics, seen_versions)
        if rows or rejections:
            result = sink.write(settings.topic, rows, rejections)  # durable first ...
            metrics.add("etl_rows_inserted", result.inserted)
            metrics.add("etl_rows_duplicate", result.duplicates)
            metrics.add("etl_batches", 1)
        changed = {p: o for p, o in batch.next_offsets.items() if committed.get(p) != o}
        source.commit(changed)  # ... then the offsets
        committed.update(changed)
        if batch.messages:
            log.debug(
                "batch committed",
                extra={
                    "fields": {
                        "messages": len(batch.messages),
                        "rows": len(rows),
                        "rejections": len(rejections),
                        "offsets": changed,
                    }
                },
            )


def _decode_batch(
    batch: Batch, latest_allowed: datetime, metrics: RunMetrics, seen_versions: set[str]
) -> tuple[list[StoredRow], list[StoredRejection]]:
    rows: list[StoredRow] = []
    rejections: list[StoredRejection] = []
    report_bytes = missing_account = unexpected_version = 0
    for msg in batch.messages:
        result = decode(msg.value, latest_allowed)
        if isinstance(result, Rejection):
            rejections.append(StoredRejection(result, msg))
            metrics.reject(result.reason)
            log.warning(
                "message rejected",
                extra={
                    "fields": {
                        "partition": msg.partition,
                        "offset": msg.offset,
                        "reason": result.reason,
                        "detail": result.detail,
                    }
                },
            )
            continue
        rows.append(StoredRow(result, msg.partition, msg.offset))
        report_bytes += len(result.report)
        missing_account += result.account_missing
        if result.unexpected_version is not None:
            unexpected_version += 1
            version = repr(result.unexpected_version)
            if version not in seen_versions:
                seen_versions.add(version)
                log.warning(
                    "unexpected message Version (logged once per value and run)",
                    extra={
                        "fields": {
                            "version": version,
                            "expected": 2,
                            "partition": msg.partition,
                            "offset": msg.offset,
                        }
                    },
                )
    metrics.add("etl_messages_consumed", len(batch.messages))
    metrics.add("etl_bytes_consumed", batch.size_bytes)
    metrics.add("etl_bytes_stored", report_bytes)
    metrics.add("etl_rows_missing_account_number", missing_account)
    metrics.add("etl_messages_unexpected_version", unexpected_version)
    return rows, rejections


def _finish(
    summary: RunSummary,
    *,
    source: Source,
    sink: Sink,
    metrics: RunMetrics,
    now: Callable[[], datetime],
    duration: float,
) -> None:
    summary.duration_seconds = duration
    try:
        summary.partitions = list(source.progress())
        for part in summary.partitions:
            metrics.set_skipped(part.partition, part.skipped_by_retention)
        if summary.status != "crashed":
            metrics.set_lag(source.lag())
    except EtlError as exc:
        log.error("could not read final partition state", extra={"fields": {"error": str(exc)}})
    finally:
        source.close()
        sink.close()
    metrics.finish(summary.exit_code, now().timestamp(), duration)
    pushed = metrics.push()
    log_fn = log.info if summary.exit_code == EXIT_OK else log.error
    log_fn(
        "run finished",
        extra={
            "fields": {
                "status": summary.status,
                "exit_code": summary.exit_code,
                "error": summary.error,
                "duration_seconds": round(duration, 3),
                "consumed": int(metrics.get("etl_messages_consumed")),
                "inserted": int(metrics.get("etl_rows_inserted")),
                "duplicates": int(metrics.get("etl_rows_duplicate")),
                "rejected": {k: v for k, v in metrics.rejected().items() if v},
                "batches": int(metrics.get("etl_batches")),
                "bytes_consumed": int(metrics.get("etl_bytes_consumed")),
                "partitions": {
                    p.partition: {"start": p.start, "stop": p.stop, "reached": p.next}
                    for p in summary.partitions
                },
                "metrics_pushed": pushed,
            }
        },
    )
