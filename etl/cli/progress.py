"""The live view of a run on a terminal: a bar and a partition table pinned under the logs.

Drawn only when stderr is a TTY (`etl run` decides); off a TTY nothing here runs and the logs
are the only output. While the view is open, log lines scroll above it (the ``etl`` log
handlers write through rich's console) and it is redrawn several times a second from what has
been read so far: messages and MB of the planned total, rate, elapsed time, ETA, rejections, and
per partition the offset reached, the stop offset and what is left, like
``kafka-consumer-groups.sh --describe``. The view is transient: when the run ends it is wiped,
and `etl.cli.summary` prints the one table that tells the outcome. The text ``run_finished`` log
line says the same as that table, so on a text log it is held back while the view is open.

`render_view` is pure (a `Snapshot` and the elapsed time in, a rich renderable out); `LiveView`
owns the refresh thread and the log handlers' streams.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from etl.cli.logs import JsonFormatter
from etl.core.ports import PartitionProgress

REFRESH_PER_SECOND: Final = 8.0
MAX_PARTITION_ROWS: Final = 12
_SUMMARY_EVENTS: Final = frozenset({"run_finished"})


@dataclass(frozen=True)
class Snapshot:
    """What has been read so far; taken from the source and the metrics on each refresh."""

    parts: Sequence[PartitionProgress] = ()
    bytes_read: int = 0
    rejected: int = 0


@dataclass
class _Totals:
    planned: int
    done: int
    left: int = field(init=False)

    def __post_init__(self) -> None:
        self.left = self.planned - self.done


def render_view(topic: str, snap: Snapshot, elapsed: float) -> RenderableType:
    """The bar line, the counts line and the partition table for one moment of the run."""
    if not snap.parts:
        return Text.assemble(
            (topic, "bold"),
            ("  waiting for the partition assignment", "yellow"),
            (f"  elapsed {clock_text(elapsed)}", "dim"),
            no_wrap=True,
            overflow="ellipsis",
        )
    totals = _Totals(
        planned=sum(max(0, p.stop - p.start) for p in snap.parts),
        done=sum(max(0, min(p.next, p.stop) - p.start) for p in snap.parts),
    )
    rate = totals.done / elapsed if elapsed > 0 else 0.0
    eta = clock_text(totals.left / rate) if rate > 0 else "-:--:--"
    share = totals.done / totals.planned if totals.planned else 1.0
    mb = snap.bytes_read / 1e6
    planned_mb = mb / totals.done * totals.planned if totals.done else 0.0
    bar = Table.grid(padding=(0, 1), expand=True)
    bar.add_column(no_wrap=True, overflow="ellipsis", max_width=40)
    bar.add_column(ratio=1)
    bar.add_column(no_wrap=True)
    bar.add_row(
        Text(topic, style="bold"),
        ProgressBar(total=max(totals.planned, 1), completed=totals.done),
        Text(f"{share * 100:5.1f}%  {totals.done:,}/{totals.planned:,} msg"),
    )
    counts = Text.assemble(
        f"{mb:,.1f}/~{planned_mb:,.1f} MB  ",
        f"{rate:,.0f} msg/s {mb / elapsed if elapsed > 0 else 0.0:,.1f} MB/s  ",
        f"elapsed {clock_text(elapsed)}  ETA {eta}  ",
        (f"rejected {snap.rejected:,}", "red" if snap.rejected else "dim"),
        no_wrap=True,
        overflow="ellipsis",
    )
    return Group(bar, counts, partition_table(snap.parts))


def partition_table(parts: Sequence[PartitionProgress]) -> Table:
    """Offset reached, stop and lag per partition; the busiest first when there are many."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold dim")
    for name in ("partition", "offset", "stop", "lag"):
        table.add_column(name, justify="right")
    table.add_column("")
    shown = list(parts)
    if len(shown) > MAX_PARTITION_ROWS:
        shown = sorted(shown, key=lambda p: (-(p.stop - min(p.next, p.stop)), p.partition))
        shown = sorted(shown[:MAX_PARTITION_ROWS], key=lambda p: p.partition)
    for p in shown:
        lag = max(0, p.stop - p.next)
        table.add_row(
            str(p.partition),
            f"{p.next:,}",
            f"{p.stop:,}",
            f"{lag:,}",
            Text("done", style="green") if lag == 0 else Text(""),
        )
    hidden = len(parts) - len(shown)
    if hidden:
        done = sum(1 for p in parts if p.next >= p.stop)
        table.add_row("", "", "", "", Text(f"... {hidden} more ({done} done in all)", style="dim"))
    return table


def clock_text(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _HoldSummary(logging.Filter):
    """Hold back the text ``run_finished`` line: the summary table says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in _SUMMARY_EVENTS


class LiveView:
    """Context manager: the view pinned at the bottom of the terminal while the run goes."""

    def __init__(
        self,
        console: Console,
        topic: str,
        read: Callable[[], Snapshot],
        clock: Callable[[], float] = time.monotonic,
        refresh_per_second: float = REFRESH_PER_SECOND,
    ) -> None:
        self._topic = topic
        self._read = read
        self._clock = clock
        self._started = clock()
        self._last = Snapshot()
        self._console = console
        self._live = Live(
            console=console,
            get_renderable=self._render,
            refresh_per_second=refresh_per_second,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=True,
        )
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._hold = _HoldSummary()

    def _render(self) -> RenderableType:
        with suppress(RuntimeError, KeyError):  # the assignment changed while it was read
            self._last = self._read()
        return render_view(self._topic, self._last, self._clock() - self._started)

    def __enter__(self) -> LiveView:
        real = sys.stderr
        self._live.start()
        for handler in logging.getLogger("etl").handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is real:
                self._handlers.append((handler, real))
                handler.setStream(sys.stderr)  # rich's proxy: lines go above the view
                if not isinstance(handler.formatter, JsonFormatter):
                    handler.addFilter(self._hold)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        sys.stderr.flush()
        self._live.stop()
        for handler, stream in self._handlers:
            handler.setStream(stream)
            handler.removeFilter(self._hold)
        self._handlers.clear()
