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
- The pure `etl.kafka.handout.Handout` decides what is handed out (the carry-over, the batch
  bounds, each batch's ranges); this class is the shell that feeds it librdkafka's records and
  carries out its decisions. `etl.kafka.rebalance` serves the rebalances: on revoke the
  ``before_revoke`` hook given to `start` stores and commits the batch in flight first; a LOST
  assignment is dropped without a commit. Only partitions owned at that moment are committed.
- Every blocking librdkafka call has a deadline and yields to a stop request (`etl.kafka.waits`).
- Positions, a partition choice, ``--no-commit`` or ``--dry-run`` assign explicitly instead of
  joining the group (`Aim.explicit`); without commit the group's offsets are only read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from etl.core import events
from etl.core.aim import Aim
from etl.core.config import KafkaConfig
from etl.core.errors import EtlError, Interrupted, KafkaUnavailable
from etl.core.ports import Batch, Message, PartitionProgress, Positions
from etl.kafka.commits import CommitAnswers, commit_offsets, send_async
from etl.kafka.handout import Accepted, End, Handout
from etl.kafka.offsets import (
    REQUEST_TIMEOUT,
    check_named_partitions,
    close_consumer,
    describe,
    open_consumer,
    topic_partitions,
)
from etl.kafka.partitions import GroupView
from etl.kafka.rebalance import Rebalance
from etl.kafka.reports import BrokerReports, ask_brokers
from etl.kafka.waits import Waiter

log = events.logger(__name__)

_CONSUME_CHUNK = 1000
_POLL_SECONDS = 0.2
# Until the first assignment: it is served inside a poll that then waits on for a record, which
# an assignment with nothing to read (an empty topic) never brings, so that wait is kept short.
_FIRST_POLL_SECONDS = 0.01
_QUERY_SECONDS = REQUEST_TIMEOUT + 2  # librdkafka's own timeout answers first
_CLOSE_SECONDS = 10.0
_LAG_SECONDS = 5.0  # the end-of-run question; a broker that does not answer is not waited for
_ASK_SECONDS = 2.0  # after a commit without an answer: the brokers asked again, for this long
# A `Message` made without the NamedTuple's own __new__, a Python function that costs twice as
# much per message (0.28 against 0.14 us here, where 1 KB reports come 70,000 a second).
_new_tuple = tuple.__new__


class _Consumed(Protocol):
    """A consumed record: confluent_kafka's hints say ``int | None`` for a message's partition
    and offset (one built for producing may lack them); a consumed record always has both."""

    def error(self) -> KafkaError | None: ...
    def partition(self) -> int: ...
    def offset(self) -> int: ...
    def timestamp(self) -> tuple[int, int]: ...
    def value(self) -> bytes | None: ...


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
        self._clock = clock
        self._waits = Waiter(stop_requested, clock)
        self._consumer: Consumer | None = None
        self._handout = Handout(explicit=self._aim.explicit)
        self._rebalance = Rebalance(
            cfg, self._aim, self._handout, waits=self._waits, positions=positions, moved=self._moved
        )
        self._topic_partitions: list[int] = []
        self._last_progress = clock()
        self._reports = BrokerReports(cfg.client, self._on_error)
        self._answers = CommitAnswers(group_member=not self._aim.explicit, group_id=cfg.group_id)
        self._unanswered: dict[int, int] = {}  # sent asynchronously, no answer yet
        self._unsent: dict[int, int] = {}  # to go with the next commit sent

    def start(self, before_revoke: Callable[[], None] = lambda: None) -> None:
        consumer = self._ensure_consumer()
        try:
            existing = self._waits.call(
                "metadata",
                lambda: topic_partitions(consumer, self._cfg, reports=self._reports),
                _QUERY_SECONDS,
            )
        except KafkaUnavailable as exc:
            raise self._failing(exc) from exc
        self._topic_partitions = existing
        check_named_partitions(self._aim, existing, self._cfg.topic)
        self._rebalance.join(consumer, existing, before_revoke)
        self._moved()

    def exhausted(self) -> bool:
        return self._handout.exhausted()

    def finished(self) -> bool:
        return self._handout.finished()

    def read_batch(
        self, max_messages: int, max_bytes: int, stop_requested: Callable[[], bool]
    ) -> Batch:
        handout = self._handout
        handout.begin(max_messages, max_bytes)
        while handout.wants_more() and not stop_requested():
            if handout.all_read():
                if not handout.in_hand() and not self._aim.explicit and not handout.finished():
                    self._wait_for_group()
                break
            handout.take(self._consume(handout.room(_CONSUME_CHUNK)))
        return handout.end()

    def commit(self, next_offsets: Mapping[int, int]) -> dict[int, int]:
        """Send the commit asynchronously, one at a time (`etl.kafka.commits`): offsets that
        come while one is unanswered go with the next; `settle` confirms what is left."""
        taken = self._answered()
        owned = self._handout.owned(next_offsets)
        if not owned or not self._aim.writes_offsets:
            return {**taken, **owned}
        if self._rebalance.in_callback:  # sent asynchronously: taken, never confirmed
            self._commit_now(owned, in_callback=True)
            self._answers.in_flight += 1
            self._moved()
            return {**taken, **owned}
        self._unsent.update(owned)
        if not self._answers.in_flight:
            sending = self._handout.owned(self._unsent)
            self._unsent.clear()
            try:
                send_async(
                    self._live,
                    self._cfg.topic,
                    sending,
                    group_member=not self._aim.explicit,
                    group_id=self._cfg.group_id,
                )
            except KafkaUnavailable as exc:
                raise self._failing(exc) from exc
            self._answers.in_flight += 1
            self._unanswered.update(sending)
        return taken

    def settle(self) -> dict[int, int]:
        """Commit synchronously what no answer confirmed yet, or was not sent, of the
        partitions owned now. Inside a rebalance callback nothing is waited for."""
        if self._rebalance.in_callback:
            return {}
        taken = self._answered()
        owned = self._handout.owned({**self._unanswered, **self._unsent})
        self._unanswered.clear()
        self._unsent.clear()
        if not owned:
            return taken
        if not self._commit_now(owned, in_callback=False):
            return taken  # refused by a rebalance: not committed
        self._moved()
        self._handout.committed(owned)
        return {**taken, **owned}

    def _commit_now(self, owned: dict[int, int], in_callback: bool) -> bool:
        try:
            return commit_offsets(
                self._live,
                self._cfg.topic,
                owned,
                waits=self._waits,
                seconds=self._cfg.timeout_seconds,
                group_member=not self._aim.explicit,
                group_id=self._cfg.group_id,
                in_callback=in_callback,
            )
        except KafkaUnavailable as exc:
            raise self._failing(exc, ask_again=True) from exc

    def _answered(self) -> dict[int, int]:
        """The offsets the broker confirmed since the last call; a failed commit among its
        answers ends the run here."""
        failure, self._answers.failure = self._answers.failure, None
        if failure is not None:
            raise self._failing(failure)
        confirmed = self._answers.take()
        for p, o in confirmed.items():
            if self._unanswered.get(p, o) <= o:
                self._unanswered.pop(p, None)
        if confirmed:
            self._moved()
            self._handout.committed(confirmed)
        return confirmed

    def progress(self) -> Sequence[PartitionProgress]:
        return self._handout.progress()

    def lag(self, reached: Mapping[int, int]) -> dict[int, int | None]:
        """Every partition of the topic: its end offset now minus the offset reached (see
        `GroupView.lag`). A run that failed before `start` (PostgreSQL down) opens its consumer
        here, so its lag is measured too (the topic's partitions asked now if `start` did not
        learn them). Without an answer within `_LAG_SECONDS` per question, None for every
        partition known: unknown, never a guess."""
        held = {p.partition: p for p in self.progress()}
        own = {p: reached.get(p, part.start) for p, part in held.items()}
        try:
            consumer, cfg, reports = self._ensure_consumer(), self._cfg, self._reports
            view = GroupView(consumer, cfg, self._waits)
            if not self._topic_partitions:
                self._topic_partitions = self._waits.call(
                    "metadata",
                    lambda: topic_partitions(consumer, cfg, _LAG_SECONDS, reports=reports),
                    _LAG_SECONDS,
                )
            parts = self._topic_partitions
            measured = view.lag(parts, own, use_group=not self._aim.explicit, seconds=_LAG_SECONDS)
            return {p: measured[p] for p in parts}
        except EtlError as exc:  # unreachable, refused, stopped, or a client it cannot create
            drain = self._handout.drain
            known = {*self._topic_partitions, *held, *(drain.stops if drain else ())}
            log.warning("lag_unknown", error=str(exc), partitions=sorted(known))
            return dict.fromkeys(sorted(known))

    def close(self) -> None:
        self._handout.closing = True
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            close_consumer(consumer, self._waits, min(_CLOSE_SECONDS, self._cfg.timeout_seconds))

    @property
    def _live(self) -> Consumer:
        """The consumer, between `start` and `close`."""
        if self._consumer is None:
            raise RuntimeError("the Kafka source is not started")
        return self._consumer

    def _ensure_consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = open_consumer(
                self._cfg, error_cb=self._reports, logger=self._reports, on_commit=self._answers
            )
        return self._consumer

    def _wait_for_group(self) -> None:
        """Own share done, topic not drained: serve rebalances, watch the group's commits."""
        drain, handout, group = self._handout.drain, self._handout, self._rebalance.group
        assert drain is not None and group is not None
        # The poll may serve a new assignment and return its first record: handed out, it waits
        # in the carry for the next batch (added after the poll: a revoke inside it drops some).
        handout.carry_over(self._accept(self._poll(_POLL_SECONDS)).messages)
        if not handout.all_read() or drain.complete():
            return
        if group.refresh(drain):
            self._moved()
        if drain.complete():
            return
        idle = self._clock() - self._last_progress
        if idle > self._cfg.timeout_seconds:
            raise self._failing(
                KafkaUnavailable(
                    f"topic {self._cfg.topic!r} not drained: no member committed and no partition"
                    f" was assigned for {idle:.0f}s; behind: {drain.describe_behind()}"
                )
            )

    def _poll(self, seconds: float) -> list[_Consumed]:
        try:
            rec = self._live.poll(seconds)
        except KafkaException as exc:
            raise self._failing(KafkaUnavailable(f"consume failed: {describe(exc)}")) from exc
        return [] if rec is None else [cast(_Consumed, rec)]

    def _consume(self, limit: int) -> Accepted:
        """Up to ``limit`` records: whatever is queued now, else the first one to arrive.
        ``consume`` waits for its full count until the timeout (a blocking call would stall
        every batch's last one): it takes what is ready, and ``poll`` waits for the first."""
        try:
            raw = cast(list[_Consumed], self._live.consume(num_messages=limit, timeout=0))
        except KafkaException as exc:
            raise self._failing(KafkaUnavailable(f"consume failed: {describe(exc)}")) from exc
        if not raw and not self._handout.all_read():  # (the consume may serve an assignment)
            seconds = _POLL_SECONDS if self._handout.assigned_once() else _FIRST_POLL_SECONDS
            raw = self._poll(seconds)
        accepted = self._accept(raw)
        if not accepted.messages and not self.finished():  # only errors, EOFs or silence
            self._check_stalled()
        return accepted

    def _accept(self, raw: list[_Consumed]) -> Accepted:
        """librdkafka's records as `Handout` sees them, its decisions carried out; errors noted.
        A fatal error ends the run after the records before it. Runs once per message."""
        records: list[Message | End] = []
        fatal = None
        for rec in raw:
            err = rec.error()
            if err is None:
                ts_type, ts = rec.timestamp()
                fields = (rec.partition(), rec.offset(), ts if ts_type else None, rec.value())
                records.append(_new_tuple(Message, fields))
            elif err.code() == KafkaError._PARTITION_EOF:
                records.append(End(rec.partition(), rec.offset()))
            elif err.fatal():
                fatal = err
                break
            else:
                self._reports.note(err.str())
                log.warning("kafka_error", error=err.str())
        accepted = self._handout.accept(records)
        if accepted.pause:
            self._live.pause([TopicPartition(self._cfg.topic, p) for p in accepted.pause])
        if accepted.heard:
            self._moved()
        if fatal is not None:
            raise self._failing(KafkaUnavailable(f"fatal Kafka error: {fatal.str()}"))
        return accepted

    def _moved(self) -> None:
        """Kafka made progress: a record, an assignment, a commit (the idle deadlines restart)."""
        self._last_progress = self._clock()

    def _check_stalled(self) -> None:
        idle = self._clock() - self._last_progress
        if idle > self._cfg.timeout_seconds:
            assigned = self._handout.assigned_once()
            state = "reading" if assigned else "waiting for a partition assignment"
            raise self._failing(
                KafkaUnavailable(f"no progress from Kafka for {idle:.0f}s while {state}")
            )

    def _failing(self, cause: KafkaUnavailable, ask_again: bool = False) -> EtlError:
        """``cause``, about to end the run, as the broker's reports explain it (the last error
        librdkafka reported, or a refusal: `BrokerReports.explain`); the stop's Kafka waits now
        share `etl.kafka.waits.FAILURE_GRACE_SECONDS`. ``ask_again`` after a call that never
        returned (a commit, whose reports wait in a queue no poll can serve meanwhile): a client
        of its own asks the brokers (`ask_brokers`) for `_ASK_SECONDS` of that grace."""
        self._waits.failed()
        if ask_again:
            try:
                self._waits.call(
                    "metadata", lambda: ask_brokers(self._cfg, self._reports, _ASK_SECONDS), 60
                )
            except (KafkaUnavailable, Interrupted) as exc:
                log.warning("kafka_reports_unread", error=str(exc))
        return self._reports.explain(cause)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            log.error("kafka_fatal_error", error=err.str())
