"""``etl verify`` without services: the ranges it plans, the tally, its loop with in-memory
fakes of our own ports (the checker, the sink, the source), and its command line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from etl.cli.app import app
from etl.core.aim import Aim, OffsetSpec
from etl.core.errors import EXIT_CODES, DatabaseMismatch, Interrupted
from etl.core.plan import NO_OFFSET, Watermarks
from etl.core.ports import Message, RowBatch
from etl.core.positions import StoredRange
from etl.core.statements import rows_where
from etl.core.verify import Finding, Span, Tally, coverage, plan_range
from etl.pipeline.verify import Verification, VerifySettings
from tests.helpers.copy_rows import batch_of, parse
from tests.unit.test_run import NOW, FakeSink, FakeSource, msgs, value


def test_a_chain_from_an_origin_holds_the_partition_from_the_log_start() -> None:
    ranges = [StoredRange(0, 40, 40, origin=True), StoredRange(0, 40, 90), StoredRange(0, 95, 99)]
    assert coverage(ranges) == (None, 90)


def test_ranges_without_an_origin_hold_the_chain_from_the_first_one() -> None:
    assert coverage([StoredRange(0, 70, 90), StoredRange(0, 10, 40), StoredRange(0, 40, 60)]) == (
        10,
        60,
    )
    assert coverage([]) is None


def test_a_check_runs_from_the_log_start_to_the_database_position() -> None:
    marks = Watermarks(low=5, high=100, committed=80)
    assert plan_range(0, marks, Aim(), (None, 90), recorded=True) == Span(0, 5, 90, 90)


def test_the_options_narrow_what_the_database_holds_and_never_widen_it() -> None:
    marks = Watermarks(low=0, high=100)
    aim = Aim(from_offset=OffsetSpec(every=20), until_offset=OffsetSpec(per_partition={0: 95}))
    assert plan_range(0, marks, aim, (None, 90), recorded=True) == Span(0, 20, 90, 90)
    until = Aim(until_offset=OffsetSpec(every=30))
    assert plan_range(0, marks, until, (10, 90), recorded=True) == Span(0, 10, 30, 90)
    timed = Watermarks(low=0, high=100, from_time_offset=NO_OFFSET)  # nothing stamped after
    span = plan_range(0, timed, Aim(), (None, 90), recorded=True)
    assert (span.start, span.stop) == (100, 100)


def test_a_partition_the_database_does_not_hold_reads_nothing_and_says_why() -> None:
    marks = Watermarks(low=0, high=100, committed=50)
    span = plan_range(0, marks, Aim(), None, recorded=False)
    assert (span.start, span.stop, span.database) == (0, 0, None)
    assert span.note == "the database records no progress for this topic and group"
    assert plan_range(0, marks, Aim(), None, recorded=True).note == (
        "the database holds nothing of this partition"
    )


def test_offsets_deleted_by_retention_are_not_asked_for() -> None:
    span = plan_range(0, Watermarks(low=30, high=100), Aim(), (10, 90), recorded=True)
    assert (span.start, span.stop) == (30, 90)
    assert span.note == "offsets below 30 were deleted by retention"


def test_rows_where_keeps_the_exact_tuples_of_the_named_messages() -> None:
    rows = batch_of([value(1), value(2), value(3)], NOW, partition=4)
    kept = rows_where(rows, lambda partition, offset: (partition, offset) in {(4, 0), (4, 2)})
    assert kept.count == 2
    everything = parse(bytes(memoryview(rows.chunks[0])))
    assert parse(bytes(kept.chunks[0])) == [everything[0], everything[2]]


class FakeChecker:
    """Reports the messages at ``missing`` as missing and the rest as stored or rejected."""

    def __init__(self, missing: set[int]) -> None:
        self.missing = missing
        self.batches: list[tuple[int, int]] = []

    def check(self, rows: RowBatch, rejected: Sequence[Message]) -> list[Finding]:
        self.batches.append((rows.count, len(rejected)))
        offsets = [r.kafka_offset for c in rows.chunks for r in parse(bytes(memoryview(c)))]
        offsets += [m.offset for m in rejected]
        gone = sorted(o for o in offsets if o in self.missing)
        stored = len(offsets) - len(gone)
        return [Finding(0, "stored", stored), Finding(0, "missing", len(gone), gone)]


def _check(
    missing: set[int], sink: FakeSink | None, stop: bool = False
) -> tuple[Tally, FakeChecker, FakeSource]:
    messages = msgs(value(1), b"not json", value(2), value(3))
    source = FakeSource([], messages, stop=4)
    checker = FakeChecker(missing)
    tally = Tally([Span(0, 0, 4, 4)])
    Verification(
        VerifySettings("topic", 2, 1 << 20, timedelta(minutes=5)),
        source=source,
        checker=checker,
        tally=tally,
        sink=sink,
        stop_requested=lambda: stop,
        now=lambda: NOW,
    ).execute()
    return tally, checker, source


def test_every_message_is_checked_once_in_batches_and_nothing_is_written() -> None:
    tally, checker, source = _check({2}, sink=None)
    assert checker.batches == [(1, 1), (2, 0)]
    part = tally.partitions[0]
    assert (part.messages, part.counts["missing"], part.offsets["missing"]) == (4, 1, [2])
    assert tally.unresolved() == 1 and source.closed


def test_repair_writes_exactly_the_missing_rows_and_rejections_with_no_offset_range() -> None:
    sink = FakeSink([])
    tally, _, _ = _check({1, 3}, sink)
    assert [r.kafka_offset for r in sink.rows] == [3]
    assert [r.message.offset for r in sink.rejections] == [1]
    assert sink.ranges == [{}, {}]
    assert tally.partitions[0].repaired == 2 and tally.unresolved() == 0


def test_a_stop_request_ends_the_check_incomplete() -> None:
    with pytest.raises(Interrupted, match="the check is incomplete"):
        _check(set(), None, stop=True)


def test_nothing_to_check_opens_no_consumer() -> None:
    source = FakeSource([], [], stop=0)
    Verification(
        VerifySettings("topic", 2, 1 << 20, timedelta(minutes=5)),
        source=source,
        checker=FakeChecker(set()),
        tally=Tally([Span(0, 7, 7, None)]),
    ).execute()
    assert not source.started


def test_a_malformed_aim_option_is_a_usage_error_before_any_connection() -> None:
    closed = "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2"
    result = CliRunner().invoke(
        app,
        ["verify", "--from-offset", "0:x"],
        env={"ETL_LOG__FORMAT": "text", "ETL_POSTGRES__DSN": closed},
    )
    assert result.exit_code == 2
    assert "etl: error: --from-offset: expected N or P:N[,P:N...], got '0:x'" in result.output


def test_verify_help_documents_the_mismatch_exit_code() -> None:
    result = CliRunner().invoke(app, ["verify", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert f"{DatabaseMismatch.exit_code}: etl verify only: the database lacks messages" in (
        " ".join(result.output.split())
    )
    assert EXIT_CODES[DatabaseMismatch.exit_code].startswith("etl verify only")
