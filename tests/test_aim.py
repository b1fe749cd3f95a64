"""Aiming a run: option parsing and the pure per-partition plan."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from etl.core.errors import ConfigError
from etl.core.plan import (
    NO_OFFSET,
    Aim,
    OffsetSpec,
    Watermarks,
    check_combination,
    parse_offsets,
    parse_partitions,
    parse_timestamp,
    plan_partition,
)


def test_offsets_for_every_partition_or_some() -> None:
    assert parse_offsets("--until-offset", "42") == OffsetSpec(every=42)
    spec = parse_offsets("--until-offset", "0:5,3:7")
    assert (spec.get(0), spec.get(3), spec.get(1)) == (5, 7, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x", "expected N or P:N"),
        ("0:5,0:6", "partition 0 given twice"),
        ("-1", "-1 is negative"),
        ("1:", "expected N or P:N"),
    ],
)
def test_malformed_offsets_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_offsets("--until-offset", text)


def test_partitions_and_timestamps() -> None:
    assert parse_partitions("0, 3,5") == frozenset({0, 3, 5})
    with pytest.raises(ConfigError, match="--partitions"):
        parse_partitions("a,b")
    assert parse_timestamp("--from-timestamp", "2026-05-04T09:30:00+02:00") == datetime(
        2026, 5, 4, 7, 30, tzinfo=UTC
    )
    with pytest.raises(ConfigError, match="has no time zone"):
        parse_timestamp("--from-timestamp", "2026-05-04T09:30:00")


@pytest.mark.parametrize(
    ("aim", "message"),
    [
        (Aim(from_offset=OffsetSpec(1), from_beginning=True), "exclude each other"),
        (
            Aim(until_offset=OffsetSpec(1), until_timestamp=datetime(2026, 1, 1, tzinfo=UTC)),
            "exclude each other",
        ),
        (
            Aim(
                from_timestamp=datetime(2026, 1, 2, tzinfo=UTC),
                until_timestamp=datetime(2026, 1, 1, tzinfo=UTC),
            ),
            "must be earlier",
        ),
        (Aim(replay={0: (0, 5)}, until_offset=OffsetSpec(3)), "drop --from/--until"),
        (Aim(replay={0: (0, 5)}, partitions=frozenset({3})), "drop --partitions"),
    ],
)
def test_contradicting_options(aim: Aim, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_combination(aim)


MARKS = Watermarks(low=10, high=100, committed=40)


def plan(
    aim: Aim, marks: Watermarks = MARKS, reset: str = "earliest"
) -> tuple[int, int, str | None]:
    progress, note = plan_partition(0, marks, aim, reset)
    return progress.start, progress.stop, note


def test_default_plan_is_committed_offset_to_end_offset() -> None:
    assert plan(Aim()) == (40, 100, None)
    assert plan(Aim(), Watermarks(10, 100)) == (10, 100, None)
    assert plan(Aim(), Watermarks(10, 100), reset="latest") == (100, 100, None)


def test_committed_offset_lost_to_retention_starts_at_log_start() -> None:
    progress, _ = plan_partition(0, Watermarks(10, 100, committed=4), Aim(), "earliest")
    assert (progress.start, progress.skipped_by_retention) == (10, 6)


def test_until_offset_is_exclusive_and_capped_at_the_end() -> None:
    assert plan(Aim(until_offset=OffsetSpec(60))) == (40, 60, None)
    start, stop, note = plan(Aim(until_offset=OffsetSpec(500)))
    assert (start, stop) == (40, 100)
    assert note is not None and "beyond the end offset 100" in note


def test_group_already_past_until_offset_is_done_at_once() -> None:
    start, stop, note = plan(Aim(until_offset=OffsetSpec(20)))
    assert start == stop == 40
    assert note is not None and "already at offset 40" in note


def test_explicit_ranges() -> None:
    assert plan(Aim(from_offset=OffsetSpec(20), until_offset=OffsetSpec(30))) == (20, 30, None)
    assert plan(Aim(from_beginning=True)) == (10, 100, None)
    with pytest.raises(ConfigError, match=r"range \[30, 30\) is empty or reversed"):
        plan(Aim(from_offset=OffsetSpec(30), until_offset=OffsetSpec(30)))
    with pytest.raises(ConfigError, match=r"range \[50, 30\) is empty or reversed"):
        plan(Aim(from_offset=OffsetSpec(50), until_offset=OffsetSpec(30)))
    with pytest.raises(ConfigError, match="below the log start 10 of partition 0"):
        plan(Aim(from_offset=OffsetSpec(5)))


def test_timestamps_resolve_through_the_broker_answers() -> None:
    marks = Watermarks(10, 100, 40, from_time_offset=25, until_time_offset=70)
    aim = Aim(
        from_timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        until_timestamp=datetime(2026, 1, 2, tzinfo=UTC),
    )
    assert plan(aim, marks) == (25, 70, None)
    # no message at or after the times: start at the end, stop at the end
    none = Watermarks(10, 100, 40, from_time_offset=NO_OFFSET, until_time_offset=NO_OFFSET)
    assert plan(aim, none) == (100, 100, "no message in the time window on this partition")


def test_replay_ranges_are_taken_as_recorded() -> None:
    assert plan(Aim(replay={0: (20, 30)})) == (20, 30, None)
    with pytest.raises(ConfigError, match="deleted by retention"):
        plan(Aim(replay={0: (5, 30)}))


def test_which_options_assign_explicitly() -> None:
    assert not Aim().explicit
    assert not Aim(until_offset=OffsetSpec(5)).explicit
    assert Aim(partitions=frozenset({1})).explicit
    assert Aim(commit=False).explicit
    assert Aim(dry_run=True).explicit
    assert Aim(from_beginning=True).explicit


def test_only_a_plain_run_writes_offsets() -> None:
    assert Aim().writes_offsets
    assert Aim(from_beginning=True).writes_offsets
    assert not Aim(commit=False).writes_offsets
    assert not Aim(dry_run=True).writes_offsets
    assert not Aim(replay={0: (0, 5)}).writes_offsets


@pytest.mark.parametrize("text", ["0,,1", "0,", ",1", "", "1,1", "-1", "x"])
def test_partition_lists_with_holes_repeats_or_junk_are_usage_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="--partitions"):
        parse_partitions(text)


def test_partition_lists_parse() -> None:
    assert parse_partitions("0, 3,5") == frozenset({0, 3, 5})


def test_an_empty_range_as_typed_is_a_usage_error_but_empty_data_is_not() -> None:
    typed = Aim(from_offset=OffsetSpec(30), until_offset=OffsetSpec(30))
    with pytest.raises(ConfigError, match="empty or reversed"):
        plan(typed)
    window = Aim(
        from_timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        until_timestamp=datetime(2026, 1, 2, tzinfo=UTC),
    )
    quiet = Watermarks(10, 100, 40, from_time_offset=60, until_time_offset=60)
    assert plan(window, quiet) == (60, 60, "no message in the time window on this partition")
