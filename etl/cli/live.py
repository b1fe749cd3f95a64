"""The live view on a terminal: drawn at a fixed rate under the log lines, which it batches.

Drawn only when stderr is a TTY (`etl run` decides); off a TTY nothing here runs and the logs
are the only output, every line as it comes. While the view is open:

- The ``etl`` log handlers that wrote to the terminal write into a buffer instead, and one
  thread of ours, `REFRESH_PER_SECOND` times a second, prints what the buffer holds above the
  view and redraws it, in one write. So the view costs a fixed number of redraws a second,
  not one per log line: through rich's stderr proxy each line redrew the whole view (about
  3.5 ms a line: a run of 200k messages with 1% rejected took nearly three times as long).
- On a text log, rejections are grouped per reason (`etl.cli.logs.RejectionDigest`): the
  first `EXAMPLES_PER_REASON` of each reason scroll above the view, the rest are counted
  there, one line per reason with its latest example. When the view closes, one line says how
  many were not written one by one and where they all are. JSON lines on a terminal are
  all written (batched like the others): whoever asks for JSON asks for every event.
- The text ``run_finished`` line is held back: `etl.cli.summary` prints the table that says
  the same when the view is wiped.

`etl.cli.progress` says what the view shows; this module only draws it.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from types import TracebackType
from typing import Any, Final

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

from etl.cli.logs import JsonFormatter, RejectionDigest
from etl.cli.progress import Pace, Snapshot, render_view

REFRESH_PER_SECOND: Final = 4.0  # rich's own default; a draw costs about 1 ms of CPU
EXAMPLES_PER_REASON: Final = 3
_SUMMARY_EVENTS: Final = frozenset({"run_finished"})
_JOIN_SECONDS: Final = 5.0


class _HoldSummary(logging.Filter):
    """Hold back the text ``run_finished`` line: the summary table says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in _SUMMARY_EVENTS


class _Lines:
    """A stream for log handlers: keeps what they write until the view's thread takes it."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        """Nothing to do: the view's thread writes the lines at its next refresh."""

    def take(self) -> str:
        with self._lock:
            parts, self._parts = self._parts, []
        return "".join(parts)


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
        """``read`` takes a `Snapshot` from the run (from the view's thread); the view adds
        the examples of rejections it kept from the log."""
        self._topic = topic
        self._read = read
        self._clock = clock
        self._period = 1 / refresh_per_second
        self._started = clock()
        self._last = Snapshot()
        self._pace = Pace()
        self._console = console
        self._live = Live(
            self,  # rendered afresh on each draw: see __rich_console__
            console=console,
            auto_refresh=False,  # our thread draws, with the waiting log lines
            transient=True,
            redirect_stdout=False,
            redirect_stderr=True,  # stray writes to stderr (warnings) land above the view
        )
        self._lines = _Lines()
        self._digest = RejectionDigest(EXAMPLES_PER_REASON)
        self._hold = _HoldSummary()
        self._handlers: list[tuple[logging.StreamHandler[Any], Any, list[logging.Filter]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._draw_loop, name="etl-view", daemon=True)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        with suppress(RuntimeError, KeyError):  # the assignment changed while it was read
            self._last = dataclasses.replace(self._read(), examples=self._digest.latest())
        elapsed = self._clock() - self._started
        yield render_view(self._topic, self._last, elapsed, self._pace.step(self._last, elapsed))

    def _draw_loop(self) -> None:
        while not self._stop.wait(self._period):
            self._draw()

    def _draw(self) -> None:
        """Write the waiting log lines above the view and redraw it: one write to the terminal."""
        text = self._lines.take()
        if text:
            self._console.print(Text(text.removesuffix("\n")), highlight=False)
        else:
            self._live.refresh()

    def __enter__(self) -> LiveView:
        real = sys.stderr
        self._live.start()
        for handler in logging.getLogger("etl").handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is real:
                text = not isinstance(handler.formatter, JsonFormatter)
                added: list[logging.Filter] = [self._hold, self._digest] if text else []
                self._handlers.append((handler, real, added))
                handler.setStream(self._lines)
                for found in added:
                    handler.addFilter(found)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(_JOIN_SECONDS)
        try:
            self._draw()  # the lines logged since the last refresh
            for line in _held_back_note(self._digest.counts()):
                self._console.print(Text(line, style="dim"), highlight=False)
            sys.stderr.flush()
            self._live.stop()
        finally:  # the logs go to the terminal again whatever happened to the view
            for handler, stream, added in self._handlers:
                handler.setStream(stream)
                for found in added:
                    handler.removeFilter(found)
            self._handlers.clear()


def _held_back_note(counts: tuple[int, int]) -> Iterable[str]:
    passed, held = counts
    if held:
        yield (
            f"{held:,} more rejections were counted, not logged one by one on this terminal "
            f"({passed:,} logged, at most {EXAMPLES_PER_REASON} per reason); all are in the "
            "rejected_messages table, and JSON logs (ETL_LOG__FORMAT=json) log each one"
        )
