"""``etl verify``, the pure part: which offsets to check, and what the checks found.

The database is checked against the topic message by message: each message read from Kafka is
decoded by the same compiled core as ``etl run`` and falls in exactly one `KINDS` class:

    stored     its row is held, from this very message, byte for byte what the run stores
    rejected   an invalid message whose rejection is held at its (topic, partition, offset);
               or a valid one whose rejection is held there (it was refused when loaded: a
               ``LastChecked`` then in the future is valid now)
    duplicate  its key is held from another message (an earlier one wins, as in a run), or an
               earlier message of the check with the same key is itself missing
    expired    nothing is held, and ``etl cleanup`` deleted rows older than it since
               (``etl_cleanups``: ``updated_at`` for rows, the message timestamp for
               rejections)
    missing    nothing is held and nothing explains it
    different  its row is held from this message, but a column differs from what the run
               would store

`plan_range` decides each partition's range from the options, the broker's watermarks and
what the database vouches for (`coverage`); `Tally` adds up the `Finding` values a `Checker`
returns per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, NamedTuple, Protocol

from etl.core.aim import Aim
from etl.core.plan import NO_OFFSET, Watermarks
from etl.core.ports import Message, RowBatch
from etl.core.positions import StoredRange, chain_end

KINDS: Final = ("stored", "rejected", "duplicate", "expired", "missing", "different")
NAMED: Final = ("missing", "different")  # kinds whose offsets are listed one by one


class Finding(NamedTuple):
    """How many messages of one partition fell in one kind; the offsets of `NAMED` kinds."""

    partition: int
    kind: str
    messages: int
    offsets: Sequence[int] = ()


class Checker(Protocol):
    """The database side of a check (`etl.pg.verify`): classify one batch, set-based."""

    def check(self, rows: RowBatch, rejected: Sequence[Message]) -> Sequence[Finding]:
        """Every message of the batch counted once: its valid ones as their COPY ``rows``,
        its invalid ones as the ``rejected`` messages."""


@dataclass(frozen=True)
class Span:
    """The offsets ``[start, stop)`` of one partition to check, and why they end there."""

    partition: int
    start: int
    stop: int
    database: int | None  # the end of what the database vouches for (None: nothing known)
    note: str | None = None


def coverage(ranges: Iterable[StoredRange]) -> tuple[int | None, int] | None:
    """What the database holds of one partition, from its ``etl_progress`` ranges.

    ``(None, end)`` when a chain runs from an origin to ``end``: the database holds the
    partition from where it began loading (and what earlier runs stored before it, from the
    log start). ``(start, end)`` when no range is an origin, as after ``etl run --replay-run``
    into another database: the chain from the first range. None without any range.
    """
    ranges = sorted(ranges, key=lambda r: (r.start, r.stop))
    if not ranges:
        return None
    end = chain_end(ranges)
    if end is not None:
        return None, end
    first = replace(ranges[0], origin=True)
    return first.start, chain_end([first, *ranges[1:]]) or first.stop


def plan_range(
    partition: int,
    marks: Watermarks,
    aim: Aim,
    held: tuple[int | None, int] | None,
    recorded: bool,
) -> Span:
    """The offsets of ``partition`` a check reads: from the log start (or ``--from-*``) up
    to the end of what the database holds (or ``--until-*``, when earlier).

    ``held`` is `coverage`; ``recorded`` says whether the database records any progress for
    the topic and group. Nothing is read of a partition it does not vouch for: the options
    narrow what it holds, they never widen it."""
    note = None
    if held is not None:
        begin, end = held
    else:
        begin, end = None, NO_OFFSET
        note = (
            "the database holds nothing of this partition"
            if recorded
            else "the database records no progress for this topic and group"
        )
    from_offset = aim.from_offset.get(partition) if aim.from_offset else None
    if from_offset is not None:
        start = from_offset
    elif marks.from_time_offset is not None:
        start = marks.high if marks.from_time_offset == NO_OFFSET else marks.from_time_offset
    else:
        start = begin if begin is not None else marks.low
    if start < marks.low:
        note = note or f"offsets below {marks.low} were deleted by retention"
        start = marks.low
    stop = min(marks.high, end)
    until = aim.until_offset.get(partition) if aim.until_offset else None
    if until is not None:
        stop = min(stop, until)
    if marks.until_time_offset is not None and marks.until_time_offset != NO_OFFSET:
        stop = min(stop, marks.until_time_offset)
    return Span(partition, start, max(start, stop), end if end >= 0 else None, note)


@dataclass
class PartitionTally:
    """The counts of one partition, the offsets of its `NAMED` kinds, and what was repaired."""

    span: Span
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    offsets: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in NAMED})
    repaired: int = 0

    @property
    def messages(self) -> int:
        return sum(self.counts.values())


class Tally:
    """What a check found, per partition."""

    def __init__(self, spans: Iterable[Span]) -> None:
        self.partitions = {s.partition: PartitionTally(s) for s in spans}

    def add(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            part = self.partitions[f.partition]
            part.counts[f.kind] += f.messages
            if f.kind in part.offsets:
                part.offsets[f.kind].extend(f.offsets)

    def repaired(self, coordinates: Iterable[tuple[int, int]]) -> None:
        for partition, _ in coordinates:
            self.partitions[partition].repaired += 1

    def total(self, kind: str) -> int:
        return sum(p.counts[kind] for p in self.partitions.values())

    def unresolved(self) -> int:
        """Messages the database still lacks or holds otherwise: 0 when it matches."""
        return sum(
            p.counts["missing"] - p.repaired + p.counts["different"]
            for p in self.partitions.values()
        )


def named(findings: Iterable[Finding], kind: str) -> set[tuple[int, int]]:
    """The (partition, offset) of every message of ``kind`` among the findings."""
    return {(f.partition, o) for f in findings if f.kind == kind for o in f.offsets}
