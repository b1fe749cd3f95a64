"""What the group knows beyond this consumer: committed offsets of every partition, end offsets.

`GroupView` asks the broker, each call under a deadline (`etl.kafka.waits`), for the group's
committed offsets (to learn whether other members drained their share) and for the end
offsets behind the lag metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import Consumer, KafkaException, TopicPartition

from etl.core import events
from etl.core.config import KafkaConfig
from etl.core.errors import KafkaUnavailable
from etl.kafka.drain import Drain
from etl.kafka.offsets import REQUEST_TIMEOUT, describe
from etl.kafka.waits import Waiter

log = events.logger(__name__)

_QUERY_SECONDS = REQUEST_TIMEOUT + 2
_REFRESH_SECONDS = 0.5  # how often a waiting member asks for the group's committed offsets


class GroupView:
    """The group's committed offsets and the topic's end offsets, asked with deadlines."""

    def __init__(self, consumer: Consumer, cfg: KafkaConfig, waits: Waiter) -> None:
        self._consumer = consumer
        self._cfg = cfg
        self._waits = waits
        self._last_refresh = float("-inf")

    def committed(
        self, partitions: Iterable[int], seconds: float = _QUERY_SECONDS
    ) -> dict[int, int]:
        """The group's committed offset per partition (negative: none)."""
        tps = [TopicPartition(self._cfg.topic, p) for p in sorted(partitions)]
        if not tps:
            return {}

        def query() -> dict[int, int]:
            found = self._consumer.committed(tps, timeout=REQUEST_TIMEOUT)
            return {tp.partition: tp.offset for tp in found if tp.error is None}

        try:
            result: dict[int, int] = self._waits.call("committed offsets", query, seconds)
        except KafkaException as exc:
            raise KafkaUnavailable(f"cannot read committed offsets: {describe(exc)}") from exc
        return result

    def refresh(self, drain: Drain) -> bool:
        """Learn the group's progress on the partitions still behind; True when one moved.

        Asked at most every half second. A failed query is only logged: the caller's idle
        deadline turns a broker that stays unreachable into exit 3.
        """
        now = self._waits.clock()
        if now - self._last_refresh < _REFRESH_SECONDS:
            return False
        self._last_refresh = now
        try:
            return drain.note(self.committed(drain.behind()))
        except KafkaUnavailable as exc:
            log.warning("group_offsets_unreadable", error=str(exc))
            return False

    def lag(
        self, partitions: Iterable[int], own: Mapping[int, int], *, use_group: bool, seconds: float
    ) -> dict[int, int]:
        """End offset minus reached, per partition: ``own`` where given, else (and at least,
        with ``use_group``) the group's committed offset, else where a new reader starts."""
        parts = sorted(partitions)
        group = self.committed(parts, seconds) if use_group or set(parts) - set(own) else {}

        def ends() -> dict[int, tuple[int, int]]:
            return {
                p: self._consumer.get_watermark_offsets(
                    TopicPartition(self._cfg.topic, p), timeout=REQUEST_TIMEOUT, cached=False
                )
                for p in parts
            }

        try:
            marks: dict[int, tuple[int, int]] = self._waits.call("end offsets", ends, seconds)
        except KafkaException as exc:
            raise KafkaUnavailable(f"cannot read end offsets: {describe(exc)}") from exc
        lag = {}
        for p in parts:
            low, high = marks[p]
            fresh = low if self._cfg.auto_offset_reset == "earliest" else high
            committed = group.get(p, -1)
            if p in own and not use_group:
                reached = own[p]
            else:
                reached = max(own.get(p, -1), committed if committed >= 0 else fresh)
            lag[p] = max(0, high - reached)
        return lag
