"""Aiming a run: option parsing and the pure per-partition plan."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from etl.core.aim import (
    Aim,
    OffsetSpec,
    aim_from_options,
    check_combination,
    parse_offsets,
    parse_partitions,
    parse_timestamp,
)
from etl.core.errors import ConfigError
from etl.core.plan import NO_OFFSET, Watermarks, plan_partition, plan_partitions


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


def offsets_aim(from_offset: str, until_offset: str, partitions: str | None = None) -> Aim:
    return aim_from_options(
        from_offset=from_offset,
        until_offset=until_offset,
        from_timestamp=None,
        until_timestamp=None,
        from_beginning=False,
        partitions=partitions,
    )


@pytest.mark.parametrize(
    ("from_offset", "until_offset", "partitions", "message"),
    [
        ("7", "7", None, "the offset range [7, 7) is empty or reversed on every partition"),
        ("7", "2", "0,2", "the offset range [7, 2) is empty or reversed on partitions 0, 2"),
        ("7", "2", "1", "the offset range [7, 2) is empty or reversed on partition 1"),
        (
            "0:7,1:1,2:9",
            "0:7,1:5,2:3",
            None,
            "the offset ranges [7, 7) of partition 0, [9, 3) of partition 2 are empty or reversed",
        ),
        ("7", "0:7,1:9", None, "the offset range [7, 7) of partition 0 is empty or reversed"),
        ("0:5,1:9", "8", None, "the offset range [9, 8) of partition 1 is empty or reversed"),
    ],
)
def test_an_offset_range_empty_as_typed_names_every_partition_concerned(
    from_offset: str, until_offset: str, partitions: str | None, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        offsets_aim(from_offset, until_offset, partitions)
    assert str(err.value) == message


def test_offset_ranges_empty_on_no_partition_pass() -> None:
    assert offsets_aim("0:7,1:1", "0:8,2:3").from_offset == OffsetSpec(per_partition={0: 7, 1: 1})
    assert offsets_aim("3", "4").until_offset == OffsetSpec(every=4)


def test_every_partition_whose_range_the_data_refuses_is_named() -> None:
    marks = {0: Watermarks(25, 100), 1: Watermarks(2, 100), 2: Watermarks(30, 100)}
    with pytest.raises(ConfigError) as err:
        plan_partitions(marks, Aim(from_beginning=True, until_offset=OffsetSpec(20)), "earliest")
    assert str(err.value) == (
        "partition 0: the offset range [25, 20) is empty or reversed; "
        "partition 2: the offset range [30, 20) is empty or reversed"
    )
    with pytest.raises(ConfigError) as err:
        plan_partitions(marks, Aim(from_offset=OffsetSpec(5)), "earliest")
    assert str(err.value) == (
        "--from-offset: 5 is below the log start 25 of partition 0; "
        "--from-offset: 5 is below the log start 30 of partition 2"
    )
    planned = plan_partitions(marks, Aim(from_offset=OffsetSpec(40)), "earliest")
    assert [(p.progress.partition, p.progress.start) for p in planned] == [
        (0, 40),
        (1, 40),
        (2, 40),
    ]
