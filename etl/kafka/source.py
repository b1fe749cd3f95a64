"""Kafka adapter: bounded batches from the partitions this consumer is given, up to stop offsets.

Contract (see `etl.ports.Source`):
- The consumer subscribes to the topic as a member of ``kafka.group_id`` so that parallel
  copies split the partitions. On each assignment it fixes, per partition, the stop offset (the
  end offset at that moment: high watermark, or the last stable offset under read_committed)
  and the start offset (the committed offset; with none, ``auto_offset_reset``; a committed
  offset already deleted by retention starts at the log start and the gap is reported).
- No message at or beyond a partition's stop offset is ever handed out; a partition that reaches
  its stop offset is paused, so the run never waits for data produced after it started.
- `Batch.next_offsets` only covers messages already handed out; messages fetched beyond the batch
  bounds wait in a small carry-over list, so committing a batch never skips unread data.
- Partitions revoked by a rebalance are forgotten together with their carried-over messages;
  their new owner re-reads from the committed offset, and the sink's idempotence absorbs any
  overlap.
- An `Aim` with positions, a partition choice, ``--no-commit`` or ``--dry-run`` assigns the
  partitions explicitly instead of joining the group (see `Aim.explicit`); without commit the
  group's offsets are only read, never written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from etl.core.config import KafkaConfig
from etl.core.errors import KafkaUnavailable
from etl.core.plan import Aim
from etl.core.ports import Batch, Message, PartitionProgress
from etl.kafka.offsets import (
    REQUEST_TIMEOUT,
    AuthWatch,
    check_named_partitions,
    describe,
    open_consumer,
    plan,
    topic_partitions,
)

log = logging.getLogger(__name__)

_CONSUME_CHUNK = 1000
_POLL_SECONDS = 0.2
# Commit refusals caused by a rebalance: the rows are stored, the new owner re-reads them.
_REBALANCE_CODES = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)


class KafkaSource:
    """One consumer-group member reading ``cfg.topic`` up to the stop offsets."""

    def __init__(
        self, cfg: KafkaConfig, aim: Aim | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cfg = cfg
        self._aim = aim or Aim()
        self._clock = clock
        self._consumer: Any = None
        self._parts: dict[int, PartitionProgress] = {}
        self._carry: list[Message] = []
        self._average_size = 1024  # bytes per message value, refined by every batch
        self._assigned_once = False
        self._rebalancing = False  # revoked, waiting for the next assignment
        self._closing = False
        self._last_progress = clock()
        self._last_error: str = "none"
        self._auth = AuthWatch()

    def start(self) -> None:
        self._auth = AuthWatch(self._on_error)
        self._consumer = open_consumer(self._cfg, error_cb=self._auth)
        existing = topic_partitions(self._consumer, self._cfg, auth=self._auth)
        check_named_partitions(self._aim, existing, self._cfg.topic)
        if self._aim.explicit:
            chosen = self._aim.partitions or (self._aim.replay or {}).keys() or existing
            self._on_assign(self._consumer, [TopicPartition(self._cfg.topic, p) for p in chosen])
        else:
            self._consumer.subscribe(
                [self._cfg.topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
        self._last_progress = self._clock()

    def finished(self) -> bool:
        return not self._carry and self._all_read()

    def read_batch(
        self, max_messages: int, max_bytes: int, stop_requested: Callable[[], bool]
    ) -> Batch:
        out: list[Message] = []
        size = 0
        while self._carry and len(out) < max_messages and size < max_bytes:
            msg = self._carry.pop(0)
            out.append(msg)
            size += len(msg.value or b"")
        while len(out) < max_messages and size < max_bytes and not stop_requested():
            if self._all_read():
                break
            # Ask librdkafka for about as many messages as the byte budget still holds (from
            # the average size seen so far), so the carry-over stays small: whatever is taken
            # from its queue lives in Python memory while the queue refills behind it.
            room = (max_bytes - size) // self._average_size + 1
            fetched = self._consume(min(_CONSUME_CHUNK, max_messages - len(out), room))
            for i, msg in enumerate(fetched):
                if len(out) >= max_messages or size >= max_bytes:
                    self._carry.extend(fetched[i:])
                    break
                out.append(msg)
                size += len(msg.value or b"")
        if out:
            self._average_size = max(1, size // len(out))
        return Batch(out, self._handed_out_offsets(), size)

    def commit(self, next_offsets: Mapping[int, int]) -> None:
        if not next_offsets or not self._aim.writes_offsets:
            return
        tps = [TopicPartition(self._cfg.topic, p, o) for p, o in sorted(next_offsets.items())]
        try:
            self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            # Only a group member's commit can be refused by a rebalance; an explicitly
            # assigned run committing into a group with live members must not pass silently.
            if not self._aim.explicit and exc.args and exc.args[0].code() in _REBALANCE_CODES:
                log.warning(
                    "offset commit refused by a rebalance; the new owner re-reads "
                    "these stored rows",
                    extra={"fields": {"error": describe(exc)}},
                )
                return
            if self._aim.explicit and exc.args and exc.args[0].code() in _REBALANCE_CODES:
                raise KafkaUnavailable(
                    f"offset commit failed: group {self._cfg.group_id!r} has live members, so"
                    f" the broker refuses commits from a run outside it ({describe(exc)});"
                    " the rows are stored: stop those consumers and run again, or use another"
                    " --group (or --no-commit)"
                ) from exc
            raise KafkaUnavailable(f"offset commit failed: {describe(exc)}") from exc

    def progress(self) -> Sequence[PartitionProgress]:
        return [self._parts[p] for p in sorted(self._parts)]

    def lag(self, reached: Mapping[int, int]) -> dict[int, int]:
        lag: dict[int, int] = {}
        for part in self.progress():
            tp = TopicPartition(self._cfg.topic, part.partition)
            try:
                _, high = self._consumer.get_watermark_offsets(tp, timeout=REQUEST_TIMEOUT)
            except KafkaException:
                high = part.stop
            lag[part.partition] = max(0, high - reached.get(part.partition, part.start))
        return lag

    def close(self) -> None:
        self._closing = True
        if self._consumer is not None:
            try:
                self._consumer.close()
            except (KafkaException, RuntimeError) as exc:
                log.warning("closing the Kafka consumer failed: %s", exc)
            self._consumer = None

    # -- internals ------------------------------------------------------------------------

    def _all_read(self) -> bool:
        """Every assigned partition has been read up to its stop (carry may still hold some).

        Never true between a revocation and the assignment that follows it: an empty set of
        partitions then means "not yet", not "done".
        """
        return (
            self._assigned_once
            and not self._rebalancing
            and all(p.done for p in self._parts.values())
        )

    def _handed_out_offsets(self) -> dict[int, int]:
        """Next offsets of every partition, excluding messages still waiting in the carry."""
        waiting: dict[int, int] = {}
        for msg in self._carry:
            waiting.setdefault(msg.partition, msg.offset)
        return {p: waiting.get(p, part.next) for p, part in self._parts.items()}

    def _consume(self, limit: int) -> list[Message]:
        """Up to ``limit`` records: whatever is queued now, else the first one to arrive.

        ``consume`` waits for its full count until the timeout, so asking it to block would
        stall every batch's last call; it only ever returns what is ready, and an empty queue
        is waited on with ``poll``, which returns on the first record.
        """
        try:
            raw = self._consumer.consume(num_messages=limit, timeout=0)
            if not raw:
                rec = self._consumer.poll(_POLL_SECONDS)
                raw = [] if rec is None else [rec]
        except KafkaException as exc:
            raise KafkaUnavailable(f"consume failed: {describe(exc)}") from exc
        out: list[Message] = []
        for rec in raw:
            err = rec.error()
            if err is not None:
                self._on_record_error(rec, err)
                continue
            part = self._parts.get(rec.partition())
            if part is None:
                continue  # revoked while the record was in flight
            offset = rec.offset()
            self._last_progress = self._clock()
            if offset >= part.stop:
                self._reach_stop(part)
                continue
            if offset < part.next:
                continue  # re-delivered after a seek; already handed out
            ts_type, ts = rec.timestamp()
            out.append(Message(part.partition, offset, ts if ts_type else None, rec.value()))
            part.next = offset + 1
            if part.done:
                self._pause(part.partition)
        if not out and not self.finished():  # nothing usable: only errors, EOFs or silence
            self._check_stalled()
        return out

    def _on_record_error(self, rec: Any, err: Any) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            part = self._parts.get(rec.partition())
            self._last_progress = self._clock()
            if part is not None and rec.offset() >= part.stop:
                self._reach_stop(part)
            return
        if err.fatal():
            raise KafkaUnavailable(f"fatal Kafka error: {err.str()}")
        self._last_error = err.str()
        log.warning("Kafka reported an error", extra={"fields": {"error": err.str()}})

    def _reach_stop(self, part: PartitionProgress) -> None:
        part.next = max(part.next, part.stop)
        self._pause(part.partition)

    def _pause(self, partition: int) -> None:
        self._consumer.pause([TopicPartition(self._cfg.topic, partition)])

    def _check_stalled(self) -> None:
        idle = self._clock() - self._last_progress
        if idle > self._cfg.timeout_seconds:
            state = "waiting for a partition assignment" if not self._assigned_once else "reading"
            raise self._auth.refused(
                KafkaUnavailable(
                    f"no progress from Kafka for {idle:.0f}s while {state}; "
                    f"last error: {self._last_error}"
                )
            )

    def _on_error(self, err: Any) -> None:
        self._last_error = err.str()
        if err.fatal():
            log.error("fatal Kafka client error", extra={"fields": {"error": err.str()}})

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        planned = plan(consumer, self._cfg, [tp.partition for tp in partitions], self._aim)
        for item in planned:
            part = item.progress
            self._parts[part.partition] = part
            if part.skipped_by_retention:
                log.warning(
                    "committed offset already deleted by retention; starting at the log start",
                    extra={
                        "fields": {
                            "partition": part.partition,
                            "committed": item.marks.committed,
                            "log_start": item.marks.low,
                            "skipped": part.skipped_by_retention,
                        }
                    },
                )
            if item.note:
                log.warning(item.note, extra={"fields": {"partition": part.partition}})
        assigned = [
            TopicPartition(self._cfg.topic, i.progress.partition, i.progress.start) for i in planned
        ]
        consumer.assign(assigned)
        done = [tp for tp in assigned if self._parts[tp.partition].done]
        if done:
            consumer.pause(done)
        self._assigned_once = True
        self._rebalancing = False
        self._last_progress = self._clock()
        log.info(
            "partitions assigned",
            extra={
                "fields": {
                    "mode": "explicit" if self._aim.explicit else "group",
                    "partitions": {p.partition: [p.start, p.stop] for p in self.progress()},
                }
            },
        )

    def _on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        gone = {tp.partition for tp in partitions}
        for p in gone:
            self._parts.pop(p, None)
        self._carry = [m for m in self._carry if m.partition not in gone]
        self._rebalancing = not self._closing
        self._last_progress = self._clock()
        log.info("partitions revoked", extra={"fields": {"partitions": sorted(gone)}})
