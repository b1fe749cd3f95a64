"""The pipeline: read a batch, decode it, store it, then commit its offsets, up to the stop offsets.

`etl.pipeline.loop` runs it; `etl.pipeline.reading` reads and decodes each batch.

Commit order, the heart of the design, per batch:
  1. read a bounded batch from the source (never past a partition's stop offset);
  2. decode every message, one call into the compiled core per slice: a binary COPY row or a
     `Rejection`, never an exception;
  3. ``sink.write``: rows and rejections in ONE database transaction, committed durably;
  4. flush the payload tracker's events for the batch (its failures are only counted);
  5. only then ``source.commit`` the batch's next offsets: sent without waiting for the
     broker (the next batch is read meanwhile); ``source.settle`` waits for what is still
     unanswered once the batches in flight are completed, at the end and before a stop.
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
revoked, the source calls back into the loop before giving them up, so the batches in flight
are stored and committed while they are still owned; rows of the batch being read whose
partitions were revoked are dropped, unstored and uncommitted, for their new owner to read.
Whatever happens, `execute` completes the run record, finishes and pushes the metrics, logs one
summary event and closes the adapters.
"""

from etl.pipeline.loop import STOP_GRACE_SECONDS, OnBatch, Run, RunSettings, RunSummary

__all__ = ["STOP_GRACE_SECONDS", "OnBatch", "Run", "RunSettings", "RunSummary"]
