"""The database's position: the contiguous chain of stored ranges, and where a run resumes."""

from __future__ import annotations

from etl.core.aim import Aim, OffsetSpec
from etl.core.plan import Watermarks, needs_origin, plan_partition
from etl.core.positions import NEVER_LOADED, StoredPositions, StoredRange, chain, chain_end


def r(start: int, stop: int, origin: bool = False) -> StoredRange:
    return StoredRange(0, start, stop, origin)


def test_the_chain_ends_at_the_first_gap_whatever_the_order_ranges_were_stored_in() -> None:
    assert chain_end([r(200, 300), r(0, 0, origin=True), r(0, 100)]) == 100
    assert chain_end([r(100, 200), r(200, 300), r(0, 100), r(0, 0, origin=True)]) == 300


def test_overlapping_ranges_extend_the_chain_and_ranges_below_the_origin_do_not_count() -> None:
    assert chain_end([r(50, 50, origin=True), r(0, 60), r(55, 90), r(90, 95)]) == 95
    assert chain_end([r(50, 50, origin=True), r(0, 40)]) == 50


def test_without_an_origin_the_database_vouches_for_nothing() -> None:
    assert chain_end([r(0, 100), r(100, 200)]) is None
    assert chain([r(0, 100)]) == (None, [])


def test_compaction_folds_the_chain_into_one_origin_and_keeps_what_lies_beyond_a_gap() -> None:
    merged, covered = chain([r(0, 0, origin=True), r(0, 10), r(10, 20), r(30, 40)])
    assert merged == r(0, 20, origin=True)
    assert sorted(c.start for c in covered) == [0, 0, 10]


def test_stored_positions_tell_adopted_never_loaded_and_known_apart() -> None:
    assert StoredPositions().of(0) is None
    known = StoredPositions({0: 70}, adopted=False)
    assert (known.of(0), known.of(1)) == (70, NEVER_LOADED)


MARKS = Watermarks(low=10, high=100, committed=60)


def test_a_database_behind_the_group_is_resumed_from_and_counted_as_rewound() -> None:
    part, _ = plan_partition(0, Watermarks(10, 100, 60, stored=40), Aim(), "earliest")
    assert (part.start, part.drift, part.rewound) == (40, -20, 20)


def test_what_retention_deleted_is_a_gap_not_a_rewind() -> None:
    part, _ = plan_partition(0, Watermarks(50, 100, 60, stored=40), Aim(), "earliest")
    assert (part.start, part.skipped_by_retention, part.rewound) == (50, 10, 10)


def test_a_database_ahead_of_the_group_is_resumed_from_without_rereading() -> None:
    part, _ = plan_partition(0, Watermarks(10, 100, 60, stored=80), Aim(), "earliest")
    assert (part.start, part.drift, part.rewound) == (80, 20, 0)


def test_a_partition_the_database_never_loaded_starts_as_a_new_group_would() -> None:
    never = Watermarks(10, 100, 60, stored=NEVER_LOADED)
    assert plan_partition(0, never, Aim(), "earliest")[0].start == 10
    assert plan_partition(0, never, Aim(), "latest")[0].start == 100
    assert needs_origin(0, never, Aim())


def test_an_adopted_database_starts_at_the_group_position_and_records_it() -> None:
    part, _ = plan_partition(0, MARKS, Aim(), "earliest")
    assert (part.start, part.drift, part.rewound) == (60, None, 0)
    assert needs_origin(0, MARKS, Aim())


def test_an_explicit_start_wins_over_both_positions() -> None:
    behind = Watermarks(10, 100, 60, stored=40)
    aim = Aim(from_offset=OffsetSpec(every=20))
    part, _ = plan_partition(0, behind, aim, "earliest")
    assert (part.start, part.drift, part.rewound) == (20, -20, 0)
    assert not needs_origin(0, Watermarks(10, 100, 60), aim)
    assert plan_partition(0, behind, Aim(partitions=frozenset({0})), "earliest")[0].start == 40
