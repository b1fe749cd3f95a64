"""What a person at a terminal sees during a long run: a progress line, then a summary table.

Used only when stderr is a TTY; logs stay JSON lines otherwise. Pure formatting plus one
stream: `ProgressBar` is the run's ``on_batch`` callback, redrawing one line at most ten times a
second; `summary_table` renders the end of a run (or of a dry run) for people.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TextIO

from etl.core.counts import RunCounts
from etl.core.ports import PartitionProgress

_WIDTH = 30
_MIN_INTERVAL = 0.1


class ProgressBar:
    """``topic [#####.....]  45.0%  12,345/27,000 msg  3,456 msg/s  ETA 0:00:04``."""

    def __init__(
        self, stream: TextIO, topic: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._topic = topic
        self._clock = clock
        self._started = clock()
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, parts: Sequence[PartitionProgress], _counts: RunCounts) -> None:
        now = self._clock()
        if now - self._last_draw < _MIN_INTERVAL:
            return
        self._last_draw = now
        self._stream.write("\r" + render_line(self._topic, parts, now - self._started) + "\x1b[K")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()


def render_line(topic: str, parts: Sequence[PartitionProgress], elapsed: float) -> str:
    total = sum(max(0, p.stop - p.start) for p in parts)
    done = sum(max(0, min(p.next, p.stop) - p.start) for p in parts)
    share = done / total if total else 1.0
    filled = round(share * _WIDTH)
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = _clock_text((total - done) / rate) if rate > 0 else "--:--:--"
    return (
        f"{topic} [{'#' * filled}{'.' * (_WIDTH - filled)}] {share * 100:5.1f}%  "
        f"{done:,}/{total:,} msg  {rate:,.0f} msg/s  ETA {eta}"
    )


def summary_table(
    status: str,
    exit_code: int,
    duration: float,
    counts: RunCounts,
    parts: Sequence[PartitionProgress],
    *,
    dry_run: bool,
) -> str:
    """The run's outcome for people: counts, rejections by reason, offsets per partition."""
    verb = "would insert" if dry_run else "inserted"
    lines = [
        f"{'dry run' if dry_run else 'run'} {status} (exit {exit_code}) in {duration:.1f}s",
        f"  consumed     {int(counts.get('etl_messages_consumed')):>12,}",
        f"  {verb:<12} {int(counts.get('etl_rows_inserted')):>12,}",
        f"  duplicates   {int(counts.get('etl_rows_duplicate')):>12,}",
        f"  rejected     {sum(counts.rejected().values()):>12,}",
    ]
    lines += [f"    {reason:<18} {n:>8,}" for reason, n in counts.rejected().items() if n]
    if parts:
        lines.append(f"  {'partition':>9} {'start':>12} {'stop':>12} {'reached':>12}")
        lines += [f"  {p.partition:>9} {p.start:>12,} {p.stop:>12,} {p.next:>12,}" for p in parts]
    return "\n".join(lines)


def _clock_text(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
