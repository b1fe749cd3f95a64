"""The TTY progress line and summary table."""

from __future__ import annotations

import io
from itertools import count

from etl.cli.progress import ProgressBar, render_line, summary_table
from etl.core.counts import RunCounts
from etl.core.ports import PartitionProgress


def test_progress_line_shows_share_rate_and_eta() -> None:
    parts = [PartitionProgress(0, 0, 1000, 500), PartitionProgress(1, 100, 1100, 100)]
    line = render_line("reports", parts, elapsed=10.0)
    assert line.startswith("reports [")
    assert " 25.0%" in line
    assert "500/2,000 msg" in line
    assert "50 msg/s" in line
    assert "ETA 0:00:30" in line


def test_bar_redraws_one_line_at_most_ten_times_a_second() -> None:
    out = io.StringIO()
    ticks = count(0, 0.04)
    bar = ProgressBar(out, "t", clock=lambda: next(ticks))
    metrics = RunCounts()
    for n in range(10):
        bar([PartitionProgress(0, 0, 10, n + 1)], metrics)
    bar.close()
    text = out.getvalue()
    assert 2 <= text.count("\r") <= 4
    assert text.endswith("\n")


def test_summary_table_for_a_dry_run() -> None:
    metrics = RunCounts()
    metrics.add("etl_messages_consumed", 7)
    metrics.add("etl_rows_inserted", 5)
    metrics.add("etl_rows_duplicate", 1)
    metrics.reject("invalid_json")
    text = summary_table(
        "completed", 0, 1.5, metrics, [PartitionProgress(0, 2, 9, 9)], dry_run=True
    )
    assert text.splitlines()[0] == "dry run completed (exit 0) in 1.5s"
    assert "would insert" in text
    assert "invalid_json" in text
    assert text.splitlines()[-1].split() == ["0", "2", "9", "9"]
