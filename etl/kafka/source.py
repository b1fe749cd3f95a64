"""Kafka adapter: bounded batches from the partitions this consumer is given, up to stop offsets.

Contract (see `etl.core.ports.Source`):
- The consumer subscribes as a member of ``kafka.group_id``, so parallel copies split the
  partitions. The FIRST assignment fixes the stop offset of every partition of the topic, owned
  or not (the end offset then: high watermark, or the last stable offset under read_committed);
  later assignments read up to those same stops. An assigned partition starts at the committed
  offset (none: ``auto_offset_reset``; deleted by retention: the log start, gap reported).
- No message at or beyond a stop offset is handed out; a partition at its stop is paused.
- A group member is finished only when the whole topic is drained (`etl.kafka.drain`). Until
  then it stays in the group, its partitions paused, polling so rebalances are served: a dead
  member's partitions come to it once that member's session expired. Nothing moving for
  ``kafka.timeout_seconds`` (no commit by any member, no assignment) is `KafkaUnavailable`
  naming the partitions behind. An empty assignment is never finished.
- `Batch.next_offsets` covers messages already handed out, of partitions owned now; messages
  fetched beyond the batch bounds wait in a carry-over list, so a commit never skips unread data.
- On revoke the ``before_revoke`` hook given to `start` runs first (the run stores and commits
  its batch in flight, `etl.kafka.commits`); then the partitions are forgotten with their
  carried-over and in-hand messages, for the new owner to re-read. A LOST assignment is dropped
  without a commit. Only partitions owned at that moment are ever committed.
- Every blocking librdkafka call has a deadline and yields to a stop request (`etl.kafka.waits`).
- Positions, a partition choice, ``--no-commit`` or ``--dry-run`` assign explicitly instead of
  joining the group (`Aim.explicit`); without commit the group's offsets are only read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from etl.core import events
from etl.core.aim import Aim
from etl.core.config import KafkaConfig
from etl.core.errors import EtlError, Interrupted, KafkaUnavailable
from etl.core.plan import PlannedPartition, needs_origin
from etl.core.ports import Batch, Message, PartitionProgress, Positions
from etl.kafka.commits import commit_offsets
from etl.kafka.drain import Drain
from etl.kafka.offsets import (
    REQUEST_TIMEOUT,
    check_named_partitions,
    close_consumer,
    describe,
    log_planned,
    open_consumer,
    plan,
    topic_partitions,
)
from etl.kafka.partitions import GroupView, merge_ranges
from etl.kafka.reports import BrokerReports, ask_brokers
from etl.kafka.waits import Waiter

log = events.logger(__name__)

_CONSUME_CHUNK = 1000
_POLL_SECONDS = 0.2
_QUERY_SECONDS = REQUEST_TIMEOUT + 2  # librdkafka's own timeout answers first
_CLOSE_SECONDS = 10.0
_LAG_SECONDS = 5.0  # the end-of-run question; a broker that does not answer is not waited for
_ASK_SECONDS = 2.0  # after a commit without an answer: the brokers asked again, for this long


class KafkaSource:
    """One consumer-group member reading ``cfg.topic`` up to the stop offsets."""

    def __init__(
        self,
        cfg: KafkaConfig,
        aim: Aim | None = None,
        clock: Callable[[], float] = time.monotonic,
        stop_requested: Callable[[], bool] = lambda: False,
        positions: Positions | None = None,
    ) -> None:
        self._cfg = cfg
        self._aim = aim or Aim()
        self._positions = positions  # the database's progress; None: the group's only
        self._clock = clock
        self._waits = Waiter(stop_requested, clock)
        self._consumer: Any = None
        self._topic_partitions: list[int] = []
        self._parts: dict[int, PartitionProgress] = {}  # owned now
        self._held: dict[int, PartitionProgress] = {}  # every range this run held, merged
        self._drain: Drain | None = None  # group mode: fixed at the first assignment
        self._group: GroupView | None = None
        self._carry: list[Message] = []
        self._cut: dict[int, int] = {}  # per owned partition, where the last batch ended
        self._reading: list[Message] = []  # handed out by the read_batch call in progress
        self._before_revoke: Callable[[], None] = lambda: None
        self._revokes = 0
        self._in_callback = False  # inside on_assign/on_revoke, on the polling thread
        self._average_size = 1024  # bytes per message value, refined by every batch
        self._assigned_once = False
        self._rebalancing = False  # revoked, waiting for the next assignment
        self._closing = False
        self._last_progress = clock()
        self._reports = BrokerReports(cfg.client, self._on_error)

    def start(self, before_revoke: Callable[[], None] = lambda: None) -> None:
        self._before_revoke = before_revoke
        self._consumer = open_consumer(self._cfg, error_cb=self._reports, logger=self._reports)
        try:
            existing = self._waits.call(
                "metadata",
                lambda: topic_partitions(self._consumer, self._cfg, reports=self._reports),
                _QUERY_SECONDS,
            )
        except KafkaUnavailable as exc:
            raise self._failing(exc) from exc
        self._topic_partitions = existing
        check_named_partitions(self._aim, existing, self._cfg.topic)
        if self._aim.explicit:
            chosen = self._aim.partitions or (self._aim.replay or {}).keys() or existing
            self._on_assign(self._consumer, [TopicPartition(self._cfg.topic, p) for p in chosen])
        else:
            self._consumer.subscribe(
                [self._cfg.topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
        self._last_progress = self._clock()

    def exhausted(self) -> bool:
        return not self._carry and self._all_read()

    def finished(self) -> bool:
        if not self.exhausted():
            return False
        return self._aim.explicit or (self._drain is not None and self._drain.complete())

    def read_batch(
        self, max_messages: int, max_bytes: int, stop_requested: Callable[[], bool]
    ) -> Batch:
        out = self._reading = []
        size = 0
        carry, taken = self._carry, 0
        while taken < len(carry) and len(out) < max_messages and size < max_bytes:
            out.append(carry[taken])
            size += len(carry[taken].value or b"")
            taken += 1
        del carry[:taken]
        while len(out) < max_messages and size < max_bytes and not stop_requested():
            if self._all_read():
                if not out and not self._aim.explicit and not self.finished():
                    self._wait_for_group()
                break
            # Ask librdkafka for about as many messages as the byte budget still holds (from
            # the average size seen so far), so the carry-over stays small: whatever is taken
            # from its queue lives in Python memory while the queue refills behind it.
            room = (max_bytes - size) // self._average_size + 1
            revokes = self._revokes
            fetched, fetched_size = self._consume(
                min(_CONSUME_CHUNK, max_messages - len(out), room)
            )
            if revokes != self._revokes:  # a revoke inside the poll dropped some of ``out``
                size = sum(len(m.value or b"") for m in out)
            if len(out) + len(fetched) <= max_messages and size + fetched_size < max_bytes:
                out.extend(fetched)  # the common case: all of it fits
                size += fetched_size
                continue
            for i, msg in enumerate(fetched):
                if len(out) >= max_messages or size >= max_bytes:
                    self._carry.extend(fetched[i:])
                    break
                out.append(msg)
                size += len(msg.value or b"")
        self._reading = []
        if out:
            self._average_size = max(1, size // len(out))
        ends = self._handed_out_offsets()
        starts = {p: self._cut.get(p, self._parts[p].start) for p in ends}
        self._cut.update(ends)
        return Batch(out, ends, size, starts)

    def commit(self, next_offsets: Mapping[int, int]) -> dict[int, int]:
        owned = {p: o for p, o in next_offsets.items() if p in self._parts}
        if not owned or not self._aim.writes_offsets:
            return owned
        try:
            confirmed = commit_offsets(
                self._consumer,
                self._cfg.topic,
                owned,
                waits=self._waits,
                seconds=self._cfg.timeout_seconds,
                group_member=not self._aim.explicit,
                group_id=self._cfg.group_id,
                in_callback=self._in_callback,
            )
        except KafkaUnavailable as exc:
            raise self._failing(exc, ask_again=True) from exc
        if not confirmed and not self._in_callback:
            return {}  # refused by a rebalance: not committed
        self._last_progress = self._clock()
        if confirmed and self._drain is not None:
            self._drain.note(owned)
        return owned

    def progress(self) -> Sequence[PartitionProgress]:
        merged = merge_ranges(self._held, self._parts)
        return [merged[p] for p in sorted(merged)]

    def lag(self, reached: Mapping[int, int]) -> dict[int, int | None]:
        """Every partition of the topic: its end offset now minus the offset reached (see
        `GroupView.lag`). A run that failed before `start` (PostgreSQL down) opens its consumer
        here, so its lag is measured too. Without an answer within `_LAG_SECONDS` per
        question, None for every partition known: unknown, never a guess."""
        held = {p.partition: p for p in self.progress()}
        own = {p: reached.get(p, part.start) for p, part in held.items()}
        try:
            view = GroupView(self._ensure_consumer(), self._cfg, self._waits)
            parts = self._lag_partitions()
            measured = view.lag(parts, own, use_group=not self._aim.explicit, seconds=_LAG_SECONDS)
            return {p: measured[p] for p in parts}
        except EtlError as exc:  # unreachable, refused, stopped, or a client it cannot create
            known = {*self._topic_partitions, *held, *(self._drain.stops if self._drain else ())}
            log.warning("lag_unknown", error=str(exc), partitions=sorted(known))
            return dict.fromkeys(sorted(known))

    def _ensure_consumer(self) -> Any:
        if self._consumer is None:
            self._consumer = open_consumer(self._cfg, error_cb=self._reports, logger=self._reports)
        return self._consumer

    def _lag_partitions(self) -> list[int]:
        """The topic's partitions: learned at `start`, else asked now (bounded)."""
        if not self._topic_partitions:
            consumer, cfg, reports = self._consumer, self._cfg, self._reports
            self._topic_partitions = self._waits.call(
                "metadata",
                lambda: topic_partitions(consumer, cfg, _LAG_SECONDS, reports=reports),
                _LAG_SECONDS,
            )
        return self._topic_partitions

    def close(self) -> None:
        self._closing = True
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            close_consumer(consumer, self._waits, min(_CLOSE_SECONDS, self._cfg.timeout_seconds))

    # -- internals ------------------------------------------------------------------------

    def _all_read(self) -> bool:
        """Every assigned partition has been read up to its stop (carry may still hold some).

        Never true between a revocation and the assignment that follows it, nor before the
        first assignment: an empty set of partitions then means "not yet", not "done".
        """
        return (
            self._assigned_once
            and not self._rebalancing
            and all(p.done for p in self._parts.values())
        )

    def _handed_out_offsets(self) -> dict[int, int]:
        """Next offsets of every owned partition, excluding messages waiting in the carry."""
        waiting: dict[int, int] = {}
        for msg in self._carry:
            waiting.setdefault(msg.partition, msg.offset)
        return {p: waiting.get(p, part.next) for p, part in self._parts.items()}

    def _wait_for_group(self) -> None:
        """Own share done, topic not drained: serve rebalances, watch the group's commits."""
        assert self._drain is not None and self._group is not None
        # The poll may serve a new assignment and return its first record: handed out, it
        # waits in the carry for the next batch (taken after the poll: a revoke inside it
        # rewrites the carry).
        accepted, _ = self._accept(self._poll(_POLL_SECONDS))
        self._carry.extend(accepted)
        if not self._all_read() or self._drain.complete():
            return
        if self._group.refresh(self._drain):
            self._last_progress = self._clock()
        if self._drain.complete():
            return
        idle = self._clock() - self._last_progress
        if idle > self._cfg.timeout_seconds:
            raise self._failing(
                KafkaUnavailable(
                    f"topic {self._cfg.topic!r} not drained: no member committed and no partition"
                    f" was assigned for {idle:.0f}s; behind: {self._drain.describe_behind()}"
                )
            )

    def _poll(self, seconds: float) -> list[Any]:
        try:
            rec = self._consumer.poll(seconds)
        except KafkaException as exc:
            raise self._failing(KafkaUnavailable(f"consume failed: {describe(exc)}")) from exc
        return [] if rec is None else [rec]

    def _consume(self, limit: int) -> tuple[list[Message], int]:
        """Up to ``limit`` records: whatever is queued now, else the first one to arrive.

        ``consume`` waits for its full count until the timeout, so asking it to block would
        stall every batch's last call; it only ever returns what is ready, and an empty queue
        is waited on with ``poll``, which returns on the first record.
        """
        try:
            raw = self._consumer.consume(num_messages=limit, timeout=0)
        except KafkaException as exc:
            raise self._failing(KafkaUnavailable(f"consume failed: {describe(exc)}")) from exc
        out, size = self._accept(raw or self._poll(_POLL_SECONDS))
        if not out and not self.finished():  # nothing usable: only errors, EOFs or silence
            self._check_stalled()
        return out, size

    def _accept(self, raw: list[Any]) -> tuple[list[Message], int]:
        """The usable messages among librdkafka records, and the bytes of their values; errors,
        EOFs and stops are noted. This runs once per message: keep it lean."""
        out: list[Message] = []
        size = 0
        parts = self._parts
        heard = False  # a record of an owned partition: the broker is making progress
        for rec in raw:
            err = rec.error()
            if err is not None:
                self._on_record_error(rec, err)
                continue
            part = parts.get(rec.partition())
            if part is None:
                continue  # revoked while the record was in flight
            offset = rec.offset()
            heard = True
            if offset >= part.stop:
                self._reach_stop(part)
                continue
            if offset < part.next:
                continue  # re-delivered after a seek; already handed out
            ts_type, ts = rec.timestamp()
            value = rec.value()
            out.append(Message(part.partition, offset, ts if ts_type else None, value))
            if value is not None:
                size += len(value)
            part.next = offset + 1
            if part.done:
                self._pause(part.partition)
        if heard:
            self._last_progress = self._clock()
        return out, size

    def _on_record_error(self, rec: Any, err: Any) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            part = self._parts.get(rec.partition())
            self._last_progress = self._clock()
            if part is not None and rec.offset() >= part.stop:
                self._reach_stop(part)
            return
        if err.fatal():
            raise self._failing(KafkaUnavailable(f"fatal Kafka error: {err.str()}"))
        self._reports.note(err.str())
        log.warning("kafka_error", error=err.str())

    def _reach_stop(self, part: PartitionProgress) -> None:
        part.next = max(part.next, part.stop)
        self._pause(part.partition)

    def _pause(self, partition: int) -> None:
        self._consumer.pause([TopicPartition(self._cfg.topic, partition)])

    def _check_stalled(self) -> None:
        idle = self._clock() - self._last_progress
        if idle > self._cfg.timeout_seconds:
            state = "waiting for a partition assignment" if not self._assigned_once else "reading"
            raise self._failing(
                KafkaUnavailable(f"no progress from Kafka for {idle:.0f}s while {state}")
            )

    def _failing(self, cause: KafkaUnavailable, ask_again: bool = False) -> EtlError:
        """``cause``, about to end the run, as the broker's reports explain it (naming the last
        error librdkafka reported, or a refusal: `BrokerReports.explain`). From now on the
        stop's Kafka waits (end offsets, close) share `etl.kafka.waits.FAILURE_GRACE_SECONDS`.

        ``ask_again`` after a call that never returned (a commit): its reports wait in the
        consumer's queue, which cannot be served while that call is pending (a poll blocks
        behind it), so a client of its own asks the brokers once more, for at most
        `_ASK_SECONDS` of the grace, and its reports name the error.
        """
        self._waits.failed()
        if ask_again:
            try:
                self._waits.call(
                    "metadata", lambda: ask_brokers(self._cfg, self._reports, _ASK_SECONDS), 60
                )
            except (KafkaUnavailable, Interrupted) as exc:
                log.warning("kafka_reports_unread", error=str(exc))
        return self._reports.explain(cause)

    def _on_error(self, err: Any) -> None:
        if err.fatal():
            log.error("kafka_fatal_error", error=err.str())

    def _plan(self, consumer: Any, partitions: list[int]) -> list[PlannedPartition]:
        """Plan from the broker's offsets and the database's positions, read at every
        assignment (a rebalance may hand over a partition another copy loaded meanwhile)."""
        stored = self._positions.read(partitions) if self._positions is not None else None
        # librdkafka answers no other thread during a rebalance callback: asked on this one,
        # each query is bounded by its own timeout.
        if self._in_callback:
            return plan(consumer, self._cfg, partitions, self._aim, stored)
        return self._waits.call(
            "offsets",
            lambda: plan(consumer, self._cfg, partitions, self._aim, stored),
            _QUERY_SECONDS,
        )

    def _adopt(self, planned: list[PlannedPartition]) -> None:
        """Record where owned partitions without a stored position start (their origin)."""
        origins = [i for i in planned if needs_origin(i.progress.partition, i.marks, self._aim)]
        if self._positions is None or not origins:
            return
        self._positions.adopt({i.progress.partition: i.progress.start for i in origins})
        log.info(
            "progress_origins",
            partitions={i.progress.partition: i.progress.start for i in origins},
            adopted=[i.progress.partition for i in origins if i.marks.stored is None],
            effect="where the database held no progress for the topic and group (adopted), the"
            " group's positions are recorded as its starting points; partitions it never loaded"
            " start as a new group would",
        )

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self._in_callback = not self._aim.explicit
        try:
            self._assign(consumer, partitions)
        finally:
            self._in_callback = False

    def _assign(self, consumer: Any, partitions: list[Any]) -> None:
        """Plan the assigned partitions (the first group assignment: the whole topic)."""
        wanted = sorted(tp.partition for tp in partitions)
        if self._aim.explicit or self._drain is not None:
            planned = self._plan(consumer, wanted)
        else:  # the first assignment of a group member fixes the stops of the whole topic
            everything = self._plan(consumer, sorted({*self._topic_partitions, *wanted}))
            self._drain = Drain.fixed_at([i.progress for i in everything])
            self._group = GroupView(consumer, self._cfg, self._waits)
            planned = [i for i in everything if i.progress.partition in set(wanted)]
        for item in planned:
            if self._drain is not None:
                self._drain.take(item.progress)
            self._parts[item.progress.partition] = item.progress
            self._cut[item.progress.partition] = item.progress.start
            log_planned(item, self._aim)
        self._adopt(planned)
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
        mode = "explicit" if self._aim.explicit else "group"
        ranges = {p.partition: [p.start, p.stop] for p in self._parts.values()}
        log.info("partitions_assigned", mode=mode, partitions=ranges)

    def _on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        """Store and commit what is in flight while the partitions are still ours, then drop."""
        if not self._closing:
            self._in_callback = True
            try:
                self._before_revoke()
            finally:
                self._in_callback = False
        self._drop({tp.partition for tp in partitions}, "partitions_revoked")

    def _on_lost(self, _consumer: Any, partitions: list[Any]) -> None:
        """Lost (the session expired): another member may own them already; never commit."""
        self._drop({tp.partition for tp in partitions}, "partitions_lost")

    def _drop(self, gone: set[int], event: str) -> None:
        self._revokes += 1
        for p in gone:
            self._cut.pop(p, None)
            part = self._parts.pop(p, None)
            if part is not None:
                self._held.update(merge_ranges(self._held, {p: part}))
        # In place: read_batch and _wait_for_group hold these very lists across the poll.
        self._carry[:] = [m for m in self._carry if m.partition not in gone]
        self._reading[:] = [m for m in self._reading if m.partition not in gone]
        self._rebalancing = not self._closing
        self._last_progress = self._clock()
        log.info(event, partitions=sorted(gone))
