"""The Kafka source's partitions: joining the group or assigning explicitly, and its rebalances.

`Rebalance` is the part of the source's shell (`etl.kafka.source`) that librdkafka calls back
while it serves a poll: ``on_assign``, ``on_revoke`` and ``on_lost``. What they decide is kept by
`etl.kafka.handout.Handout`; here the broker and the database are asked and answered:

- an assignment is planned from the broker's offsets and the database's positions, read anew
  at every assignment (a rebalance may hand over a partition another copy loaded meanwhile).
  The first assignment of a group member plans the whole topic: it fixes the stop offset of
  every partition, owned or not, for the whole run. Partitions without a stored position get
  their origin recorded (`etl.core.positions`); partitions with nothing to read are paused;
- a revocation first runs the ``before_revoke`` hook (the run stores and commits its batch in
  flight, `etl.kafka.commits`), unless the consumer is closing; then the partitions are dropped.
  A LOST assignment (the session expired: another member may own them already) is dropped
  without a commit;
- inside a callback librdkafka answers no other thread, so its queries run on the polling
  thread, each bounded by its own timeout, and a commit is sent without waiting for it
  (`in_callback`).
"""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from etl.core import events
from etl.core.aim import Aim
from etl.core.config import KafkaConfig
from etl.core.plan import PlannedPartition, needs_origin
from etl.core.ports import Positions
from etl.kafka.handout import Handout
from etl.kafka.offsets import REQUEST_TIMEOUT, log_planned, plan
from etl.kafka.partitions import GroupView
from etl.kafka.waits import Waiter

log = events.logger(__name__)

_QUERY_SECONDS = REQUEST_TIMEOUT + 2  # librdkafka's own timeout answers first


class Rebalance:
    """The rebalance callbacks of one consumer, and the explicit assignment standing in for
    them; ``moved`` is called whenever the partitions changed (the source's idle clock)."""

    def __init__(
        self,
        cfg: KafkaConfig,
        aim: Aim,
        handout: Handout,
        *,
        waits: Waiter,
        positions: Positions | None,
        moved: Callable[[], None],
    ) -> None:
        self._cfg = cfg
        self._aim = aim
        self._handout = handout
        self._waits = waits
        self._positions = positions  # the database's progress; None: the group's only
        self._moved = moved
        self._topic_partitions: list[int] = []
        self._before_revoke: Callable[[], None] = lambda: None
        self.group: GroupView | None = None  # group mode: from the first assignment
        self.in_callback = False  # inside on_assign/on_revoke, on the polling thread

    def join(
        self, consumer: Consumer, existing: list[int], before_revoke: Callable[[], None]
    ) -> None:
        """Subscribe as a member of the group, or assign the partitions the options choose
        (all of ``existing``, the topic's partitions, when they choose none)."""
        self._topic_partitions = existing
        self._before_revoke = before_revoke
        if self._aim.explicit:
            chosen = self._aim.partitions or (self._aim.replay or {}).keys() or existing
            self.on_assign(consumer, [TopicPartition(self._cfg.topic, p) for p in chosen])
        else:
            consumer.subscribe(
                [self._cfg.topic],
                on_assign=self.on_assign,
                on_revoke=self.on_revoke,
                on_lost=self.on_lost,
            )

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.in_callback = not self._aim.explicit
        try:
            self._assign(consumer, partitions)
        finally:
            self.in_callback = False

    def on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Store and commit what is in flight while the partitions are still ours, then drop."""
        if not self._handout.closing:
            self.in_callback = True
            try:
                self._before_revoke()
            finally:
                self.in_callback = False
        self._drop({tp.partition for tp in partitions}, "partitions_revoked")

    def on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Lost (the session expired): another member may own them already; never commit."""
        self._drop({tp.partition for tp in partitions}, "partitions_lost")

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Plan the assigned partitions (the first group assignment: the whole topic)."""
        handout = self._handout
        wanted = sorted(tp.partition for tp in partitions)
        if not handout.fixes_stops():
            planned = self._plan(consumer, wanted)
        else:  # the first assignment of a group member fixes the stops of the whole topic
            everything = self._plan(consumer, sorted({*self._topic_partitions, *wanted}))
            handout.fix_stops(i.progress for i in everything)
            self.group = GroupView(consumer, self._cfg, self._waits)
            planned = [i for i in everything if i.progress.partition in set(wanted)]
        done = handout.assign(i.progress for i in planned)
        for item in planned:
            log_planned(item, self._aim)
        self._adopt(planned)
        assigned = [
            TopicPartition(self._cfg.topic, i.progress.partition, i.progress.start) for i in planned
        ]
        consumer.assign(assigned)
        if done:
            consumer.pause([tp for tp in assigned if tp.partition in done])
        self._moved()
        mode = "explicit" if self._aim.explicit else "group"
        ranges = {p.partition: [p.start, p.stop] for p in handout.parts.values()}
        log.info("partitions_assigned", mode=mode, partitions=ranges)

    def _plan(self, consumer: Consumer, partitions: list[int]) -> list[PlannedPartition]:
        """Plan from the broker's offsets and the database's positions."""
        stored = self._positions.read(partitions) if self._positions is not None else None
        if self.in_callback:  # librdkafka answers no other thread: each query bounded itself
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

    def _drop(self, gone: set[int], event: str) -> None:
        self._handout.drop(gone)
        self._moved()
        log.info(event, partitions=sorted(gone))
