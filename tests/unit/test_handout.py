"""The source's bookkeeping, without a broker: what is handed out, carried over, dropped, paused."""

from __future__ import annotations

import subprocess
import sys

from etl.core.ports import Message, PartitionProgress
from etl.kafka.handout import End, Handout, merge_ranges


def msg(partition: int, offset: int, size: int = 10) -> Message:
    return Message(partition, offset, None, b"x" * size)


def assigned(*ranges: tuple[int, int, int], explicit: bool = True) -> Handout:
    """A handout owning partition ``i`` from ``start`` to ``stop`` for each (i, start, stop)."""
    handout = Handout(explicit=explicit)
    parts = [PartitionProgress(p, start, stop, start) for p, start, stop in ranges]
    if not explicit:
        handout.fix_stops(parts)
    handout.assign(parts)
    return handout


def fill(handout: Handout, fetched: list[Message], max_messages: int, max_bytes: int) -> None:
    handout.begin(max_messages, max_bytes)
    handout.take(handout.accept(fetched))


def test_a_batch_keeps_what_exceeds_max_messages_for_the_next_one() -> None:
    handout = assigned((0, 0, 100))
    fill(handout, [msg(0, o) for o in range(5)], max_messages=3, max_bytes=10_000)
    batch = handout.end()
    assert [m.offset for m in batch.messages] == [0, 1, 2]
    assert batch.next_offsets == {0: 3}  # the carried-over messages are not committed
    assert not handout.exhausted()
    handout.begin(3, 10_000)
    assert [m.offset for m in handout.end().messages] == [3, 4]


def test_a_batch_stops_after_the_message_that_crosses_max_bytes() -> None:
    handout = assigned((0, 0, 100))
    fill(handout, [msg(0, o, size=40) for o in range(4)], max_messages=100, max_bytes=100)
    batch = handout.end()
    assert [m.offset for m in batch.messages] == [0, 1, 2]  # 120 bytes: the third crossed
    assert batch.size_bytes == 120
    assert batch.next_offsets == {0: 3}


def test_the_carry_over_is_taken_within_the_bounds_too() -> None:
    handout = assigned((0, 0, 100))
    fill(handout, [msg(0, o) for o in range(10)], max_messages=1, max_bytes=10_000)
    handout.end()
    handout.begin(4, 10_000)
    assert not handout.wants_more()
    assert [m.offset for m in handout.end().messages] == [1, 2, 3, 4]


def test_room_asks_for_what_the_byte_budget_holds_at_the_average_size() -> None:
    handout = assigned((0, 0, 1000))
    fill(handout, [msg(0, o, size=100) for o in range(10)], max_messages=100, max_bytes=10_000)
    handout.end()  # the average is now 100 bytes
    handout.begin(1000, 1_000)
    assert handout.room(500) == 11
    assert handout.room(5) == 5


def test_records_at_or_after_the_stop_are_ignored_and_the_partition_paused() -> None:
    handout = assigned((0, 0, 3))
    accepted = handout.accept([msg(0, 1), msg(0, 3), msg(0, 4)])
    assert [m.offset for m in accepted.messages] == [1]
    assert accepted.pause == [0]
    assert handout.parts[0].next == 3  # reached its stop
    assert handout.all_read()


def test_the_last_message_before_the_stop_pauses_its_partition() -> None:
    handout = assigned((0, 0, 2), (1, 0, 5))
    accepted = handout.accept([msg(0, 0), msg(1, 0), msg(0, 1)])
    assert [(m.partition, m.offset) for m in accepted.messages] == [(0, 0), (1, 0), (0, 1)]
    assert accepted.size == 30
    assert accepted.pause == [0]
    assert not handout.all_read()


def test_an_end_event_at_the_stop_completes_the_partition() -> None:
    handout = assigned((0, 0, 5))
    handout.accept([msg(0, 0), msg(0, 1)])
    accepted = handout.accept([End(0, 5)])  # 2..4: transaction markers
    assert accepted.pause == [0] and accepted.heard
    assert handout.parts[0].next == 5
    handout.begin(10, 10_000)
    assert handout.end().next_offsets == {0: 5}


def test_an_end_event_before_the_stop_is_only_progress() -> None:
    handout = assigned((0, 0, 5))
    accepted = handout.accept([End(0, 3), End(7, 9)])
    assert accepted.heard and accepted.pause == []
    assert handout.parts[0].next == 0


def test_offsets_re_delivered_after_a_seek_are_skipped() -> None:
    handout = assigned((0, 0, 100))
    handout.accept([msg(0, o) for o in range(5)])
    accepted = handout.accept([msg(0, o) for o in range(3, 7)])
    assert [m.offset for m in accepted.messages] == [5, 6]


def test_records_of_partitions_not_owned_are_not_heard() -> None:
    handout = assigned((0, 0, 100))
    accepted = handout.accept([msg(1, 0)])
    assert accepted == ([], 0, [], False)


def test_each_batch_starts_where_the_previous_one_was_cut() -> None:
    handout = assigned((0, 10, 100), (1, 0, 100))
    fill(handout, [msg(0, 10), msg(0, 11), msg(1, 0)], max_messages=100, max_bytes=10_000)
    first = handout.end()
    assert first.start_offsets == {0: 10, 1: 0}
    assert first.next_offsets == {0: 12, 1: 1}
    fill(handout, [msg(0, 12)], max_messages=100, max_bytes=10_000)
    second = handout.end()
    assert second.start_offsets == {0: 12, 1: 1}
    assert second.next_offsets == {0: 13, 1: 1}


def test_a_revoke_drops_the_carry_and_the_messages_in_hand_of_those_partitions() -> None:
    handout = assigned((0, 0, 100), (1, 0, 100), explicit=False)
    fill(handout, [msg(0, 0), msg(1, 0), msg(0, 1), msg(1, 1)], max_messages=1, max_bytes=10_000)
    handout.end()  # partition 0's message 0 handed out; three wait in the carry
    handout.begin(3, 10_000)  # in hand: (1, 0), (0, 1) and (1, 1)
    handout.drop({0})
    assert not handout.all_read()  # revoked: waiting for the next assignment
    handout.take(handout.accept([msg(0, 2), msg(1, 2)]))  # partition 0: in flight, not ours
    batch = handout.end()
    assert [(m.partition, m.offset) for m in batch.messages] == [(1, 0), (1, 1), (1, 2)]
    assert batch.size_bytes == 30
    assert batch.next_offsets == {1: 3}
    assert handout.owned({0: 2, 1: 3}) == {1: 3}
    assert handout.exhausted() is False


def test_a_dropped_partition_keeps_its_range_in_the_progress() -> None:
    handout = assigned((0, 0, 10), (1, 5, 10), explicit=False)
    handout.accept([msg(0, 0), msg(0, 1)])
    handout.drop({0})
    handout.assign([PartitionProgress(0, 4, 10, 4)])  # handed back, from the group's offset
    handout.accept([msg(0, 4)])
    assert [(p.partition, p.start, p.next) for p in handout.progress()] == [(0, 0, 5), (1, 5, 5)]


def test_nothing_is_read_before_the_first_assignment_nor_while_rebalancing() -> None:
    handout = Handout(explicit=False)
    assert not handout.all_read() and not handout.finished()
    assert handout.fixes_stops()
    handout.fix_stops([PartitionProgress(0, 0, 0, 0)])
    assert handout.assign([]) == set()
    assert handout.all_read()  # assigned nothing: its own share is read
    handout.drop(set())
    assert not handout.all_read()
    handout.closing = True
    handout.drop(set())  # a revocation by the closing consumer awaits no assignment
    assert handout.all_read()


def test_a_group_member_is_finished_only_when_the_whole_topic_is_drained() -> None:
    handout = Handout(explicit=False)
    handout.fix_stops([PartitionProgress(0, 0, 2, 0), PartitionProgress(1, 0, 3, 0)])
    assert not handout.fixes_stops()
    assert handout.assign([PartitionProgress(0, 0, 99, 0)]) == set()
    assert handout.parts[0].stop == 2  # the stop fixed at the first assignment
    handout.accept([msg(0, 0), msg(0, 1)])
    assert handout.exhausted() and not handout.finished()  # partition 1 is behind
    handout.committed({0: 2})
    assert not handout.finished()
    handout.committed({1: 3})
    assert handout.finished()


def test_an_explicit_run_is_finished_when_its_own_partitions_are_read() -> None:
    handout = assigned((0, 0, 1), (1, 4, 4))
    assert handout.assign([PartitionProgress(1, 4, 4, 4)]) == {1}  # nothing to read: paused
    handout.accept([msg(0, 0)])
    assert handout.finished()
    handout.begin(10, 100)  # nothing left
    assert handout.end().messages == []


def test_a_carried_message_keeps_the_run_from_being_exhausted() -> None:
    handout = assigned((0, 0, 2))
    fill(handout, [msg(0, 0), msg(0, 1)], max_messages=1, max_bytes=10_000)
    handout.end()
    assert handout.all_read() and not handout.exhausted() and not handout.finished()
    handout.carry_over([])
    handout.begin(10, 10_000)
    assert [m.offset for m in handout.end().messages] == [1]
    assert handout.finished()


def test_merged_ranges_keep_the_first_start_the_furthest_stop_and_position() -> None:
    held = {0: PartitionProgress(0, 5, 10, 8, skipped_by_retention=1, drift=2, rewound=1)}
    more = {0: PartitionProgress(0, 8, 12, 12, skipped_by_retention=2, drift=3, rewound=0)}
    merged = merge_ranges(held, more)[0]
    assert (merged.start, merged.stop, merged.next) == (5, 12, 12)
    assert (merged.skipped_by_retention, merged.drift, merged.rewound) == (3, 2, 1)


def test_the_handout_loads_no_kafka_client() -> None:
    code = "import sys, etl.kafka.handout; print('confluent_kafka' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
