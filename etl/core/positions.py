"""How far the database holds a topic, and where a run resumes: pure.

The database, not Kafka, is the truth of progress. Every batch's transaction adds, per
partition, the half-open offset range ``[start, stop)`` it stored (rows, rejections, and offsets
that hold nothing to store, such as transaction markers) to ``etl_progress``, so a restore, a
failover or a point-in-time recovery rolls the ranges back together with the rows. A partition's
*origin* is the range where loading began: the group's committed offset when a database that
already held rows was adopted, or the start of a partition the database never loaded. The
database's *position* is the end of the chain of touching or overlapping ranges that begins at
the origin; a range stored beyond a gap (writers commit batches out of order) counts only once
the gap is filled, so the position never passes a batch that is not durable.

Where a run resumes, per partition, when no option names a start (see `resume_from`):
- the database holds a position: there, whatever the group committed (behind: the messages in
  between are read again, their rows skipped as duplicates; ahead: nothing is read twice);
- the database holds progress for the topic and group, but not for this partition: it never
  loaded it, so it starts as a new group would (``auto_offset_reset``);
- the database holds no progress for the topic and group at all (every database before this
  table existed): the group's committed offset, recorded as the origin (adopted, no rewind).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

NEVER_LOADED: Final = -1  # the database holds progress for the topic, none for this partition


@dataclass(frozen=True)
class StoredRange:
    """Offsets ``[start, stop)`` of one partition, stored in one transaction (or an origin)."""

    partition: int
    start: int
    stop: int
    origin: bool = False


@dataclass(frozen=True)
class StoredPositions:
    """What the database vouches for at one moment, for one topic and consumer group.

    ``adopted`` is True when the database holds no progress for them at all: nothing is
    vouched for, and the group's committed offsets are taken as the starting points.
    """

    ends: Mapping[int, int] = field(default_factory=dict)  # partition -> position
    adopted: bool = True

    def of(self, partition: int) -> int | None:
        """The position to resume from, `NEVER_LOADED`, or None when adopting."""
        if self.adopted:
            return None
        return self.ends.get(partition, NEVER_LOADED)


def chain_end(ranges: Iterable[StoredRange]) -> int | None:
    """The end of the contiguous chain from the partition's origin; None without an origin.

    Ranges below the origin or beyond the first gap are ignored; overlapping ranges (a
    partition read again after a rewind, an explicit replay) extend the chain like touching
    ones.
    """
    ordered = sorted(ranges, key=lambda r: (r.start, r.stop))
    origins = [r.start for r in ordered if r.origin]
    if not origins:
        return None
    position = min(origins)
    for r in ordered:
        if r.stop <= position:
            continue
        if r.start > position:
            break
        position = r.stop
    return position


def chain(ranges: Iterable[StoredRange]) -> tuple[StoredRange | None, list[StoredRange]]:
    """The ranges a compaction replaces with one origin range (that range first), or
    ``(None, [])`` when there is no origin. Ranges beyond a gap are kept as they are."""
    ranges = list(ranges)
    end = chain_end(ranges)
    if end is None:
        return None, []
    start = min(r.start for r in ranges if r.origin)
    covered = [r for r in ranges if r.start >= start and r.stop <= end]
    return StoredRange(ranges[0].partition, start, end, origin=True), covered


def resume_from(committed: int, stored: int | None) -> int:
    """The offset a run resumes from when no option names a start: see the module docstring.

    ``committed`` is the group's (negative: none); ``stored`` is `StoredPositions.of`. The
    result is negative when neither holds a position (start as ``auto_offset_reset`` says).
    """
    return committed if stored is None else stored


def drift(committed: int, stored: int | None) -> int | None:
    """The database's position minus the group's committed offset, when both exist."""
    if stored is None or stored < 0 or committed < 0:
        return None
    return stored - committed
