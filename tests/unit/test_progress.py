"""The live view's content and drawing, the summary table, and repeats collapsed in the logs."""

from __future__ import annotations

import io
import logging
import sys
import time
from itertools import count

import pytest
from rich.console import Console, RenderableType

from etl.cli import logs
from etl.cli.live import EXAMPLES_PER_REASON, LiveView
from etl.cli.logs import RejectionDigest, RepeatCollapser
from etl.cli.progress import (
    CATCH_UP_SECONDS,
    MAX_PARTITION_ROWS,
    MAX_REASON_ROWS,
    Pace,
    Snapshot,
    partition_table,
    render_view,
)
from etl.cli.summary import summary_view
from etl.core import events
from etl.core.counts import RunCounts
from etl.core.ports import PartitionProgress


def text(renderable: RenderableType, width: int = 160) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_the_view_shows_share_counts_megabytes_rate_elapsed_and_eta() -> None:
    parts = [PartitionProgress(0, 0, 1000, 500), PartitionProgress(1, 100, 1100, 100)]
    snap = Snapshot(parts, 2_000_000, 500)
    shown = text(render_view("reports", snap, elapsed=10.0), width=100)
    bar, counts, *table = shown.splitlines()
    assert bar.startswith("reports ")
    assert bar.endswith(" 25.0%  500/2,000 msg")
    assert counts == ("2.0/~8.0 MB  50 msg/s 0.2 MB/s  elapsed 0:00:10  ETA 0:00:30  rejected 0")
    assert [line.split() for line in table] == [
        ["partition", "offset", "stop", "lag"],
        ["0", "500", "1,000", "500"],
        ["1", "100", "1,100", "1,000"],
    ]


def test_the_view_fits_a_narrow_terminal() -> None:
    parts = [PartitionProgress(0, 0, 1000, 500)]
    snap = Snapshot(parts, 10, 1, {"invalid_json": 1}, {"invalid_json": "x" * 100})
    shown = text(render_view("a-long-topic-name", snap, elapsed=1.0), width=60)
    assert all(len(line) <= 60 for line in shown.splitlines())
    assert shown.splitlines()[0].endswith(" 50.0%  500/1,000 msg")


def test_the_estimated_total_is_the_planned_messages_at_the_mean_size_decoded() -> None:
    parts = [PartitionProgress(0, 0, 2000, 1000)]
    # handed out runs up to a batch ahead of what was decoded: the estimate does not move
    for decoded in (100, 400, 1000):
        snap = Snapshot(parts, decoded * 4000, decoded)
        assert "/~8.0 MB" in text(render_view("t", snap, elapsed=1.0))
    assert "/~? MB" in text(render_view("t", Snapshot(parts), elapsed=1.0))


def test_rejections_are_grouped_per_reason_most_frequent_first_with_the_latest_example() -> None:
    parts = [PartitionProgress(0, 0, 1000, 500)]
    rejected = {"empty_value": 0, "invalid_json": 1_200, "wrong_type": 7}
    examples = {"invalid_json": "partition 0 offset 498: not valid JSON\x1b[2J"}
    shown = text(render_view("t", Snapshot(parts, 10, 5, rejected, examples), elapsed=1.0))
    lines = shown.splitlines()
    assert lines[1].endswith("rejected 1,207")
    assert lines[2].split() == [
        *("invalid_json", "1,200", "latest", "partition", "0", "offset", "498:", "not", "valid"),
        "JSON\\x1b[2J",  # a control character in a detail is shown escaped
    ]
    assert lines[3].split() == ["wrong_type", "7"]
    assert lines[4].split() == ["partition", "offset", "stop", "lag"]


def test_many_reasons_show_the_most_frequent_and_a_count_of_the_rest() -> None:
    parts = [PartitionProgress(0, 0, 1000, 500)]
    rejected = {f"reason_{i:02d}": 100 - i for i in range(MAX_REASON_ROWS + 3)}
    lines = text(render_view("t", Snapshot(parts, 10, 5, rejected), elapsed=1.0)).splitlines()
    shown = MAX_REASON_ROWS - 1
    reasons = [line.split()[0] for line in lines[2 : 2 + shown]]
    assert reasons == [f"reason_{i:02d}" for i in range(shown)]
    more = lines[2 + shown].split()
    rest = sum(100 - i for i in range(shown, MAX_REASON_ROWS + 3))
    assert more == ["...", "4", "more", "reasons", str(rest)]
    assert lines[3 + shown].split()[0] == "partition"


def test_as_many_reasons_as_lines_are_all_shown() -> None:
    parts = [PartitionProgress(0, 0, 1000, 500)]
    rejected = {f"reason_{i:02d}": 1 for i in range(MAX_REASON_ROWS)}
    lines = text(render_view("t", Snapshot(parts, 10, 5, rejected), elapsed=1.0)).splitlines()
    assert [line.split()[0] for line in lines[2 : 2 + MAX_REASON_ROWS]] == sorted(rejected)


def test_the_shown_count_follows_batches_steadily_and_never_runs_ahead() -> None:
    pace = Pace()
    shown: list[int] = []
    steps: list[int] = []
    for tick in range(1, 8 * 14):  # 14 s at 8 refreshes a second
        elapsed = tick / 8
        done = min(10_000 * int(elapsed), 100_000)  # 10k handed out at each whole second
        part = PartitionProgress(0, 0, 100_000, done)
        now = pace.step(Snapshot([part], done * 1000, done), elapsed)
        assert now.messages <= done and now.bytes <= done * 1000
        steps.append(now.messages - (shown[-1] if shown else 0))
        shown.append(now.messages)
    assert max(steps) <= 10_000 / 8 * 4  # no jump of a whole batch at one refresh
    assert sum(1 for s in steps[8:80] if s > 0) > 60  # it moves at (nearly) every refresh
    assert shown[-1] == 100_000  # and catches up once the counts stop moving
    assert shown[int((10 + CATCH_UP_SECONDS) * 8)] == 100_000


def test_a_shown_count_goes_straight_down_when_the_real_one_does() -> None:
    pace = Pace()
    pace.step(Snapshot([PartitionProgress(0, 0, 100, 100)], 100, 100), 1.0)
    for t in (2.0, 3.0, 4.0):
        pace.step(Snapshot([PartitionProgress(0, 0, 100, 100)], 100, 100), t)
    shown = pace.step(Snapshot([PartitionProgress(0, 0, 100, 40)], 100, 100), 4.1)
    assert shown.messages == 40


def test_before_the_assignment_the_view_says_it_waits() -> None:
    shown = text(render_view("reports", Snapshot(), elapsed=3.0))
    assert "waiting for the partition assignment" in shown
    assert "elapsed 0:00:03" in shown


def test_many_partitions_show_the_busiest_and_a_count_of_the_rest() -> None:
    parts = [PartitionProgress(p, 0, 100, 100 if p % 2 else p) for p in range(30)]
    lines = text(partition_table(parts)).splitlines()
    assert len(lines) == 1 + MAX_PARTITION_ROWS + 1
    shown = [int(line.split()[0]) for line in lines[1:-1]]
    assert shown == list(range(0, 2 * MAX_PARTITION_ROWS, 2))  # unfinished, lowest offset first
    assert "18 more (15 done in all)" in lines[-1]


def test_a_finished_partition_says_done() -> None:
    lines = text(partition_table([PartitionProgress(0, 0, 5, 5)])).splitlines()
    assert lines[1].split() == ["0", "5", "5", "0", "done"]


def test_summary_of_a_dry_run_tells_each_fact_once() -> None:
    metrics = RunCounts()
    metrics.add("etl_messages_consumed", 7)
    metrics.add("etl_bytes_consumed", 3_500_000)
    metrics.add("etl_rows_inserted", 5)
    metrics.add("etl_rows_duplicate", 1)
    metrics.reject("invalid_json")
    shown = text(
        summary_view("completed", 0, 1.5, metrics, [PartitionProgress(0, 2, 9, 9)], dry_run=True)
    )
    lines = shown.splitlines()
    assert lines[0] == "dry run completed (exit 0) in 1.5s: 7 messages, 3.5 MB, 5 msg/s"
    assert [line.split() for line in lines[1:5]] == [
        ["would", "insert", "5"],
        ["duplicates", "1"],
        ["rejected", "1"],
        ["invalid_json", "1"],
    ]
    assert lines[-2].split() == ["partition", "start", "stop", "reached", "read", "left"]
    assert lines[-1].split() == ["0", "2", "9", "9", "7", "0"]


def record(message: str, name: str = "etl.librdkafka") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 0, message, None, None)


def test_repeated_librdkafka_lines_are_collapsed_into_a_count() -> None:
    ticks = count(0.0, 1.0)
    collapser = RepeatCollapser(clock=lambda: next(ticks))
    refused = "FAIL [rdkafka#consumer-1] 127.0.0.1:1/bootstrap: Connection refused (after {}ms)"
    passed = [collapser.filter(record(refused.format(n))) for n in range(40)]
    assert passed[0]
    assert passed[1:30] == [False] * 29  # within the window: held back
    assert passed[30]  # the first after the window carries the count
    last = record(refused.format(99))
    ticks = count(100.0, 1.0)
    assert collapser.filter(last)
    assert last.fields == {"repeated": 9}  # type: ignore[attr-defined]
    assert collapser.filter(record("another message"))
    assert all(collapser.filter(record("etl says this", name="etl.run")) for _ in range(3))


def rejected(log: events.EventLogger, reason: str, offset: int) -> None:
    log.warning("message_rejected", partition=0, offset=offset, reason=reason, detail="bad")


def test_the_digest_lets_the_first_rejections_of_each_reason_through_and_counts_the_rest() -> None:
    digest = RejectionDigest(per_reason=2)
    logger = logging.getLogger("etl.test.digest")
    logger.addFilter(digest)
    logger.setLevel(logging.INFO)
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    log = events.logger("etl.test.digest")
    try:
        for offset in range(5):
            rejected(log, "invalid_json", offset)
        rejected(log, "wrong_type", 9)
        log.info("partitions_assigned", partitions=[0])
    finally:
        logger.removeFilter(digest)
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert seen == ["message_rejected"] * 3 + ["partitions_assigned"]
    assert digest.counts() == (3, 3)
    assert digest.latest() == {
        "invalid_json": "partition 0 offset 4: bad",
        "wrong_type": "partition 0 offset 9: bad",
    }


def test_log_lines_go_above_the_view_in_batches_not_one_redraw_per_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # the text log's stream, as on a terminal
    logs.setup_logging("info", "text")
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    reads = count()
    part = PartitionProgress(0, 0, 1000, 10)

    def read() -> Snapshot:
        next(reads)
        return Snapshot([part], 0, 0, {"invalid_json": 500})

    log = events.logger("etl.test.view")
    try:
        with LiveView(console, "reports", read, refresh_per_second=20):
            for offset in range(500):
                rejected(log, "invalid_json", offset)
                log.info("progress_note", n=offset)
            time.sleep(0.3)
            log.info("run_finished", status="completed")
    finally:
        logs.reset()
    out = screen.getvalue()
    assert all(f"progress_note  n={n}\n" in out for n in range(500))  # every other line, once
    assert out.count("progress_note") == 500
    assert out.count("message_rejected") == EXAMPLES_PER_REASON
    assert f"{500 - EXAMPLES_PER_REASON} more rejections were counted" in out
    assert "run_finished" not in out  # the summary table says it
    assert next(reads) < 40  # drawn at its rate: about 8 times here, not once per line
