"""What the Kafka source has handed out, and what it hands out next: the pure half of the source.

`Handout` keeps the bookkeeping of `etl.kafka.source.KafkaSource` and makes its decisions; the
source is the shell that talks to librdkafka (callbacks, polls, commits, waits) and carries out
what `Handout` decides, such as pausing a partition. Nothing here imports a Kafka client: the
source turns librdkafka's records into `Message` and `End` values first, so every rule below is
tested without a broker.

- Each owned partition is a `PartitionProgress`: ``next`` is the first offset not handed out.
  A record below ``next`` is a re-delivery after a seek and is skipped; a record at or beyond
  ``stop`` is never handed out, and its partition, like one whose end event lies at or beyond
  the stop, has reached its stop and is to be paused.
- A batch takes the carried-over messages first, then what the shell fetched, while it holds
  fewer than ``max_messages`` and fewer than ``max_bytes`` (the message crossing the byte
  budget is still taken). Fetched messages beyond the bounds wait in the carry-over, in order.
- `Batch.next_offsets` covers owned partitions: their ``next``, or the first carried-over offset
  where messages wait, so a commit never skips unread data. `Batch.start_offsets` is where the
  previous batch of the partition was cut (its planned start after an assignment): the ranges
  `etl.core.positions` records as stored.
- A revoked or lost partition is forgotten with its carried-over and in-hand messages, for the
  next owner to read again; the range it covered stays in `progress`, merged per partition.
- "All read" is never true before the first assignment nor between a revocation and the next
  assignment: no partitions then means "not yet", not "done". A group member is finished only
  when the whole topic is drained (`etl.kafka.drain`), an explicitly assigned run when its own
  partitions are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from etl.core.ports import Batch, Message, PartitionProgress
from etl.kafka.drain import Drain


class End(NamedTuple):
    """librdkafka's end-of-partition event: ``partition`` holds nothing at ``offset`` yet."""

    partition: int
    offset: int


class Accepted(NamedTuple):
    """What `Handout.accept` made of the records one fetch returned."""

    messages: list[Message]  # to hand out, in order
    size: int  # bytes of their values
    pause: list[int]  # partitions that reached their stop, each once
    heard: bool  # a record of an owned partition, or an end event: the broker makes progress


class Handout:
    """Per-partition progress, the carry-over, the batch being filled, and the drain state."""

    def __init__(self, explicit: bool) -> None:
        self.explicit = explicit  # assigned by the options, not by the group
        self.parts: dict[int, PartitionProgress] = {}  # owned now
        self.drain: Drain | None = None  # group mode: fixed at the first assignment
        self.closing = False  # a revocation now comes from the consumer closing
        self._held: dict[int, PartitionProgress] = {}  # every range given up, merged
        self._carry: list[Message] = []
        self._cut: dict[int, int] = {}  # per owned partition, where the last batch ended
        self._reading: list[Message] = []  # the batch being filled
        self._size = 0  # bytes of its values
        self._max_messages = 0
        self._max_bytes = 0
        self._average_size = 1024  # bytes per message value, refined by every batch
        self._assigned_once = False
        self._rebalancing = False  # revoked, waiting for the next assignment

    # -- assignments ----------------------------------------------------------------------

    def fixes_stops(self) -> bool:
        """True for the first assignment of a group member: it plans the whole topic."""
        return not self.explicit and self.drain is None

    def fix_stops(self, planned: Iterable[PartitionProgress]) -> None:
        """The stop offsets of every partition of the topic, for the whole run."""
        self.drain = Drain.fixed_at(planned)

    def assign(self, planned: Iterable[PartitionProgress]) -> set[int]:
        """Own these partitions (up to the fixed stops); those with nothing to read, to pause."""
        planned = list(planned)
        for part in planned:
            if self.drain is not None:
                self.drain.take(part)
            self.parts[part.partition] = part
            self._cut[part.partition] = part.start
        self._assigned_once = True
        self._rebalancing = False
        return {part.partition for part in planned if part.done}

    def drop(self, gone: set[int]) -> None:
        """Forget revoked or lost partitions, with their carried-over and in-hand messages."""
        for p in gone:
            self._cut.pop(p, None)
            part = self.parts.pop(p, None)
            if part is not None:
                self._held.update(merge_ranges(self._held, {p: part}))
        self._carry[:] = [m for m in self._carry if m.partition not in gone]
        kept = [m for m in self._reading if m.partition not in gone]
        if len(kept) != len(self._reading):
            self._reading[:] = kept
            self._size = sum(len(m.value or b"") for m in kept)
        self._rebalancing = not self.closing

    def owned(self, offsets: Mapping[int, int]) -> dict[int, int]:
        """The part of ``offsets`` this consumer may commit: partitions owned now."""
        return {p: o for p, o in offsets.items() if p in self.parts}

    def committed(self, offsets: Mapping[int, int]) -> None:
        """The broker confirmed ``offsets``: the drain knows them reached."""
        if self.drain is not None:
            self.drain.note(offsets)

    # -- state ----------------------------------------------------------------------------

    def assigned_once(self) -> bool:
        return self._assigned_once

    def all_read(self) -> bool:
        """Every owned partition read up to its stop (the carry-over may still hold some)."""
        return (
            self._assigned_once
            and not self._rebalancing
            and all(p.done for p in self.parts.values())
        )

    def exhausted(self) -> bool:
        return not self._carry and self.all_read()

    def finished(self) -> bool:
        if not self.exhausted():
            return False
        return self.explicit or (self.drain is not None and self.drain.complete())

    def progress(self) -> list[PartitionProgress]:
        """One range per partition this run held, owned now or given up, by partition."""
        merged = merge_ranges(self._held, self.parts)
        return [merged[p] for p in sorted(merged)]

    # -- records --------------------------------------------------------------------------

    def accept(self, records: Iterable[Message | End]) -> Accepted:
        """The messages to hand out among fetched records, in order. Runs once per message:
        keep it lean."""
        out: list[Message] = []
        size = 0
        pause: list[int] = []
        parts = self.parts
        heard = False
        for rec in records:
            part = parts.get(rec.partition)
            if isinstance(rec, End):
                heard = True
                if part is not None and rec.offset >= part.stop:
                    _reach_stop(part, pause)
                continue
            if part is None:
                continue  # revoked while the record was in flight
            heard = True
            offset = rec.offset
            if offset >= part.stop:
                _reach_stop(part, pause)
                continue
            if offset < part.next:
                continue  # re-delivered after a seek; already handed out
            out.append(rec)
            value = rec.value
            if value is not None:
                size += len(value)
            part.next = offset + 1
            if part.done:
                pause.append(part.partition)
        return Accepted(out, size, pause, heard)

    def carry_over(self, messages: Iterable[Message]) -> None:
        """Accepted outside a batch: handed out by the next one."""
        self._carry.extend(messages)

    # -- batches --------------------------------------------------------------------------

    def begin(self, max_messages: int, max_bytes: int) -> None:
        """Start a batch with what the carry-over holds, within the bounds."""
        self._max_messages, self._max_bytes = max_messages, max_bytes
        out = self._reading = []
        size = 0
        carry, taken = self._carry, 0
        while taken < len(carry) and len(out) < max_messages and size < max_bytes:
            out.append(carry[taken])
            size += len(carry[taken].value or b"")
            taken += 1
        del carry[:taken]
        self._size = size

    def wants_more(self) -> bool:
        return len(self._reading) < self._max_messages and self._size < self._max_bytes

    def in_hand(self) -> int:
        return len(self._reading)

    def room(self, most: int) -> int:
        """How many records to ask for, at most ``most``: about as many as the byte budget still
        holds (from the average size seen so far), so the carry-over stays small: whatever is
        taken from librdkafka's queue lives in Python memory while the queue refills behind it."""
        budget = (self._max_bytes - self._size) // self._average_size + 1
        return min(most, self._max_messages - len(self._reading), budget)

    def take(self, fetched: Accepted) -> None:
        """Add fetched messages to the batch; those beyond its bounds wait in the carry-over."""
        out, messages = self._reading, fetched.messages
        if (
            len(out) + len(messages) <= self._max_messages
            and self._size + fetched.size < self._max_bytes
        ):
            out.extend(messages)  # the common case: all of it fits
            self._size += fetched.size
            return
        for i, msg in enumerate(messages):
            if len(out) >= self._max_messages or self._size >= self._max_bytes:
                self._carry.extend(messages[i:])
                break
            out.append(msg)
            self._size += len(msg.value or b"")

    def end(self) -> Batch:
        """The batch: its messages, and per owned partition the range it covers."""
        out, size = self._reading, self._size
        self._reading, self._size = [], 0
        if out:
            self._average_size = max(1, size // len(out))
        ends = self._handed_out()
        starts = {p: self._cut.get(p, self.parts[p].start) for p in ends}
        self._cut.update(ends)
        return Batch(out, ends, size, starts)

    def _handed_out(self) -> dict[int, int]:
        """Next offsets of every owned partition, excluding messages waiting in the carry."""
        waiting: dict[int, int] = {}
        for msg in self._carry:
            waiting.setdefault(msg.partition, msg.offset)
        return {p: waiting.get(p, part.next) for p, part in self.parts.items()}


def _reach_stop(part: PartitionProgress, pause: list[int]) -> None:
    part.next = max(part.next, part.stop)
    if part.partition not in pause:
        pause.append(part.partition)


def merge_ranges(
    held: Mapping[int, PartitionProgress], more: Mapping[int, PartitionProgress]
) -> dict[int, PartitionProgress]:
    """One range per partition: the first start, the furthest stop and the latest position.

    Reassignments of a partition to the same run continue where the group's committed offset
    stood, so the ranges a run held of one partition are contiguous unless another member
    loaded part of it in between; ``etl_run_partitions`` keeps one row per run and partition.
    """
    out = dict(held)
    for p, part in more.items():
        before = out.get(p)
        if before is None:
            out[p] = part
            continue
        out[p] = PartitionProgress(
            p,
            min(before.start, part.start),
            max(before.stop, part.stop),
            max(before.next, part.next),
            before.skipped_by_retention + part.skipped_by_retention,
            before.drift if before.drift is not None else part.drift,  # the first comparison
            before.rewound + part.rewound,
        )
    return out
