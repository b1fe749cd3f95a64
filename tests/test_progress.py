"""The live view's content, the summary table, and librdkafka repeats collapsed in the logs."""

from __future__ import annotations

import io
import logging
from itertools import count

from rich.console import Console, RenderableType

from etl.cli.logs import RepeatCollapser
from etl.cli.progress import (
    MAX_PARTITION_ROWS,
    Snapshot,
    partition_table,
    render_view,
)
from etl.cli.summary import summary_view
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
    shown = text(render_view("reports", Snapshot(parts, 2_000_000, 3), elapsed=10.0), width=100)
    bar, counts, *table = shown.splitlines()
    assert bar.startswith("reports ")
    assert bar.endswith(" 25.0%  500/2,000 msg")
    assert counts == ("2.0/~8.0 MB  50 msg/s 0.2 MB/s  elapsed 0:00:10  ETA 0:00:30  rejected 3")
    assert [line.split() for line in table] == [
        ["partition", "offset", "stop", "lag"],
        ["0", "500", "1,000", "500"],
        ["1", "100", "1,100", "1,000"],
    ]


def test_the_view_fits_a_narrow_terminal() -> None:
    parts = [PartitionProgress(0, 0, 1000, 500)]
    shown = text(render_view("a-long-topic-name", Snapshot(parts, 10, 0), elapsed=1.0), width=60)
    assert all(len(line) <= 60 for line in shown.splitlines())
    assert shown.splitlines()[0].endswith(" 50.0%  500/1,000 msg")


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
