"""Whether the whole topic is drained: every partition's group offset at its stop offset.

A group-mode run succeeds only when the topic, not just its own share, reached the stop
offsets fixed at its first assignment: copies split the partitions, and a member that died
keeps its partitions until its session expires. `Drain` holds, per partition of the topic,
the stop offset and the best known reached offset: what this consumer committed or found
committed at an assignment, and what the group's committed offsets say. It is pure; the source
feeds it broker answers.

A partition is reached when its offset is at or past its stop, or when it had nothing to read
at all (its planned start already at or past the stop: an empty partition nobody commits).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from etl.core.ports import PartitionProgress

NO_OFFSET = -1001  # librdkafka's "no committed offset"


class Drain:
    """Stop offsets of every partition of the topic, and how far the group got."""

    def __init__(self, stops: Mapping[int, int], starts: Mapping[int, int]) -> None:
        self.stops = dict(stops)
        # Where reading would begin at the fixed moment: a partition whose start is at its
        # stop has nothing to read, whether or not anybody ever commits it.
        self._reached = {p: starts.get(p, NO_OFFSET) for p in self.stops}

    @classmethod
    def fixed_at(cls, planned: Iterable[PartitionProgress]) -> Drain:
        """The stops and starts of every partition, as planned at the first assignment."""
        parts = list(planned)
        return cls({p.partition: p.stop for p in parts}, {p.partition: p.start for p in parts})

    def take(self, part: PartitionProgress) -> None:
        """An assigned partition reads up to the fixed stop; its start is a known position."""
        if part.partition in self.stops:
            part.stop = self.stops[part.partition]
            self.note({part.partition: part.start})

    def note(self, offsets: Mapping[int, int]) -> bool:
        """Record offsets known to be committed (or started from); True when one moved."""
        moved = False
        for p, offset in offsets.items():
            if p in self._reached and offset > self._reached[p]:
                self._reached[p] = offset
                moved = True
        return moved

    def reached(self, partition: int) -> int:
        """The furthest offset known committed (or started from); 0 for an unknown partition."""
        return max(self._reached.get(partition, 0), 0)

    def behind(self) -> dict[int, int]:
        """Partitions not yet at their stop, with how many offsets are left."""
        out = {}
        for p, stop in sorted(self.stops.items()):
            reached = self._reached[p]
            if reached < stop:
                out[p] = stop - max(reached, 0)
        return out

    def complete(self) -> bool:
        return not self.behind()

    def describe_behind(self) -> str:
        return ", ".join(f"partition {p} (lag {lag})" for p, lag in self.behind().items())
