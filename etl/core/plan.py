"""Where a run starts and stops, per partition: pure planning from an `etl.core.aim.Aim`.

`plan_partition` turns the aim, with what the broker reports for one partition (`Watermarks`)
and the database's position (`etl.core.positions`), into a `PartitionProgress` or a usage
error. ``etl plan`` and ``etl run`` share it, so the plan shows exactly what the run will do.

A well-formed range that the data leaves empty (no message stamped inside the time window, a
group already past ``--until-offset``) is not an error: that partition reads nothing, its note
says why, and the run exits 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from etl.core.aim import Aim, starts_from_position
from etl.core.errors import ConfigError
from etl.core.ports import PartitionProgress
from etl.core.positions import NEVER_LOADED, drift, resume_from

NO_OFFSET = -1  # the broker's answer for "no committed offset" / "no message at or after T"


@dataclass(frozen=True)
class Watermarks:
    """What the broker reports for one partition at the start of the run."""

    low: int
    high: int  # end offset: high watermark, or last stable offset under read_committed
    committed: int = NO_OFFSET
    from_time_offset: int | None = None  # offsets-for-times answer for --from-timestamp
    until_time_offset: int | None = None  # ... for --until-timestamp
    stored: int | None = None  # the database's position (`etl.core.positions.StoredPositions.of`)


@dataclass(frozen=True)
class PlannedPartition:
    """One partition's plan with the broker's answers it came from (what ``etl plan`` shows)."""

    progress: PartitionProgress
    marks: Watermarks
    note: str | None

    @property
    def messages(self) -> int:
        """Offsets the run would read (transaction markers and aborted records included)."""
        return self.progress.stop - self.progress.start

    @property
    def committed(self) -> int | None:
        return self.marks.committed if self.marks.committed >= 0 else None

    @property
    def stored(self) -> int | None:
        """The database's position, None when it vouches for none (adopting, never loaded)."""
        return (
            self.marks.stored if self.marks.stored is not None and self.marks.stored >= 0 else None
        )

    @property
    def lag(self) -> int:
        """The group's lag now: end offset minus its committed offset (or the log start)."""
        return self.marks.high - max(self.marks.committed, self.marks.low)


def plan_partition(
    partition: int, marks: Watermarks, aim: Aim, auto_offset_reset: str
) -> tuple[PartitionProgress, str | None]:
    """Start and stop for one partition, and a note for the operator (or None).

    Raises ConfigError for a range the operator asked for that is empty, reversed or already
    deleted by retention.
    """
    note = None
    skipped = 0
    if aim.replay is not None:
        start, stop = aim.replay[partition]
        if start < marks.low:
            raise ConfigError(
                f"partition {partition}: the run started at offset {start}, but the log now "
                f"starts at {marks.low} (deleted by retention)"
            )
        return PartitionProgress(partition, start, min(stop, marks.high), start), None
    from_offset = aim.from_offset.get(partition) if aim.from_offset else None
    explicit_start = aim.from_beginning or from_offset is not None
    if aim.from_beginning:
        start = marks.low
    elif from_offset is not None:
        if from_offset < marks.low:
            raise ConfigError(
                f"--from-offset: {from_offset} is below the log start {marks.low} of "
                f"partition {partition}"
            )
        start = from_offset
    elif marks.from_time_offset is not None:
        start = marks.high if marks.from_time_offset == NO_OFFSET else marks.from_time_offset
    else:
        resume = resume_from(marks.committed, marks.stored)
        start, skipped = _start_from(marks, resume, auto_offset_reset)

    stop = marks.high
    until = aim.until_offset.get(partition) if aim.until_offset else None
    if until is not None:
        if until > marks.high:
            note = f"--until-offset {until} is beyond the end offset {marks.high}; stopping there"
        stop = min(until, marks.high)
    elif marks.until_time_offset is not None and marks.until_time_offset != NO_OFFSET:
        stop = min(marks.until_time_offset, marks.high)
    if until is not None and explicit_start and start >= until:
        raise ConfigError(
            f"partition {partition}: the offset range [{start}, {until}) is empty or reversed"
        )
    if start > stop:  # e.g. the group already committed beyond --until-offset
        note = note or f"already at offset {start}, beyond the stop offset {stop}"
        stop = start
    moved, rewound = _against_group(partition, marks, aim, start)
    progress = PartitionProgress(partition, start, stop, start, skipped, moved, rewound)
    return progress, note or _window_note(start, stop, aim)


def _against_group(
    partition: int, marks: Watermarks, aim: Aim, start: int
) -> tuple[int | None, int]:
    """The database's position minus the group's, and the messages read again because the
    run resumes from a database that is behind (what retention deleted is not read again)."""
    moved = drift(marks.committed, marks.stored)
    if moved is None or moved >= 0 or not starts_from_position(partition, aim):
        return moved, 0
    return moved, max(0, marks.committed - start)


def needs_origin(partition: int, marks: Watermarks, aim: Aim) -> bool:
    """The database vouches for no position of ``partition`` (adopted, or never loaded) and the
    run resumes from a position: its start is recorded as the partition's origin."""
    return marks.stored in (None, NEVER_LOADED) and starts_from_position(partition, aim)


def plan_partitions(
    marks: Mapping[int, Watermarks], aim: Aim, auto_offset_reset: str
) -> list[PlannedPartition]:
    """`plan_partition` for each partition, in order; one ConfigError naming every partition
    whose range is refused, not only the first."""
    planned, refused = [], []
    for partition, its_marks in sorted(marks.items()):
        try:
            progress, note = plan_partition(partition, its_marks, aim, auto_offset_reset)
        except ConfigError as exc:
            refused.append(str(exc))
            continue
        planned.append(PlannedPartition(progress, its_marks, note))
    if refused:
        raise ConfigError("; ".join(refused))
    return planned


def _window_note(start: int, stop: int, aim: Aim) -> str | None:
    """A time window the data leaves empty is a fact worth saying, not an error (exit 0)."""
    if start == stop and (aim.from_timestamp or aim.until_timestamp):
        return "no message in the time window on this partition"
    return None


def _start_from(marks: Watermarks, resume: int, reset: str) -> tuple[int, int]:
    """Start and offsets skipped by retention, resuming at ``resume`` (negative: none)."""
    if resume < 0:
        return (marks.low if reset == "earliest" else marks.high), 0
    if resume < marks.low:
        return marks.low, marks.low - resume
    return resume, 0
