"""What the live view of a run shows: a bar, the counts, rejections by reason, the partitions.

Pure: `render_view` turns a `Snapshot` (what has been read so far), the elapsed time and the
`Shown` counts into a rich renderable; `Pace` turns the real counts into the `Shown` ones.
The shell that draws it on the terminal is `etl.cli.live`.

Steady figures. Messages are handed out a batch at a time and decoded a slice at a time, so the
real counts move in steps of thousands and then stand still while a batch is stored. `Pace`
lets the bar and the MB read follow them at a steady speed instead (a little faster than the
run's average rate, or fast enough to catch up within `CATCH_UP_SECONDS`), never ahead of them.
The estimated total MB is the planned messages (from the stop offsets) times the mean value
size of the messages decoded so far: both counts come from the decoder, so the mean is of the
same messages and settles as the run goes, instead of dividing bytes decoded by messages
handed out, which ran up to a batch apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.progress_bar import ProgressBar
from rich.text import Text

from etl.cli.logs import escape_controls
from etl.core.ports import PartitionProgress

MAX_PARTITION_ROWS: Final = 12
MAX_REASON_ROWS: Final = 8  # lines of rejections, the last one for the rarest reasons
MAX_TOPIC_WIDTH: Final = 40
CATCH_UP_SECONDS: Final = 2.0  # the shown counts are at most about this far behind
PACE: Final = 1.25  # how much faster than the average rate the shown counts may move


@dataclass(frozen=True)
class Snapshot:
    """What has been read so far; taken from the source, the counts and the log on each refresh.

    ``bytes_read`` and ``messages_read`` are what the decoder counted (their ratio is the mean
    value size); the partitions' ``next`` is what was handed out, up to a batch ahead of it.
    ``rejected`` counts per reason; ``examples`` holds the latest rejection logged per reason
    (``partition P offset O: detail``), when the log level lets rejections through.
    """

    parts: Sequence[PartitionProgress] = ()
    bytes_read: int = 0
    messages_read: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)
    examples: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Shown:
    """The messages and bytes the bar and the counts line show (see `Pace`)."""

    messages: int
    bytes: int


def follow(shown: float, actual: float, seconds: float, rate: float) -> float:
    """``shown`` moved towards ``actual`` for ``seconds``: at ``PACE`` times ``rate``, or faster
    when that would leave it more than `CATCH_UP_SECONDS` behind; never past ``actual``, and
    straight down to it when the real count went back (a partition revoked)."""
    if actual <= shown:
        return actual
    speed = max(rate * PACE, (actual - shown) / CATCH_UP_SECONDS)
    return min(actual, shown + speed * max(0.0, seconds))


class Pace:
    """Steady counts for the view: fed the real ones on each refresh, returns what to show."""

    def __init__(self) -> None:
        self._messages = 0.0
        self._bytes = 0.0
        self._at: float | None = None

    def step(self, snap: Snapshot, elapsed: float) -> Shown:
        done = handed_out(snap.parts)
        since = 0.0 if self._at is None else elapsed - self._at
        self._at = elapsed
        per_second = 1 / elapsed if elapsed > 0 else 0.0
        self._messages = follow(self._messages, done, since, done * per_second)
        self._bytes = follow(self._bytes, snap.bytes_read, since, snap.bytes_read * per_second)
        return Shown(int(self._messages), int(self._bytes))


def planned(parts: Sequence[PartitionProgress]) -> int:
    return sum(max(0, p.stop - p.start) for p in parts)


def handed_out(parts: Sequence[PartitionProgress]) -> int:
    return sum(max(0, min(p.next, p.stop) - p.start) for p in parts)


def render_view(
    topic: str, snap: Snapshot, elapsed: float, shown: Shown | None = None
) -> RenderableType:
    """The bar line, the counts line, rejections by reason and the partition table.

    Without ``shown`` the real counts are shown."""
    if not snap.parts:
        return Text.assemble(
            (topic, "bold"),
            ("  waiting for the partition assignment", "yellow"),
            (f"  elapsed {clock_text(elapsed)}", "dim"),
            no_wrap=True,
            overflow="ellipsis",
        )
    total = planned(snap.parts)
    shown = shown or Shown(handed_out(snap.parts), snap.bytes_read)
    done = min(shown.messages, total)
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = clock_text((total - done) / rate) if rate > 0 else "-:--:--"
    share = done / total if total else 1.0
    mb = shown.bytes / 1e6
    estimate = (
        f"{snap.bytes_read / snap.messages_read * total / 1e6:,.1f}" if snap.messages_read else "?"
    )
    bar = BarLine(topic, done, total, Text(f"{share * 100:5.1f}%  {done:,}/{total:,} msg"))
    rejected = sum(snap.rejected.values())
    counts = Text.assemble(
        f"{mb:,.1f}/~{estimate} MB  ",
        f"{rate:,.0f} msg/s {mb / elapsed if elapsed > 0 else 0.0:,.1f} MB/s  ",
        f"elapsed {clock_text(elapsed)}  ETA {eta}  ",
        (f"rejected {rejected:,}", "red" if rejected else "dim"),
        no_wrap=True,
        overflow="ellipsis",
    )
    if not rejected:
        return Group(bar, counts, partition_table(snap.parts))
    return Group(
        bar, counts, reason_table(snap.rejected, snap.examples), partition_table(snap.parts)
    )


class BarLine:
    """``topic ━━━━━━━━━━     share  done/total msg`` as wide as the terminal.

    Laid out by hand: a rich table grid did the same at a third of the cost of a whole draw.
    The topic takes at most `MAX_TOPIC_WIDTH` columns, the bar what is left (at least one)."""

    def __init__(self, topic: str, done: int, total: int, tail: Text) -> None:
        self.topic, self.done, self.total, self.tail = topic, done, total, tail

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        head = Text(self.topic, style="bold", no_wrap=True, end="")
        head.truncate(min(MAX_TOPIC_WIDTH, max(1, options.max_width // 3)), overflow="ellipsis")
        head.append(" ")
        tail = Text.assemble(" ", self.tail, no_wrap=True)
        width = options.max_width - head.cell_len - tail.cell_len
        if width < 1:  # too narrow for a bar: the share alone
            yield Text.assemble(head, self.tail, no_wrap=True, overflow="ellipsis")
            return
        yield head
        yield ProgressBar(total=max(self.total, 1), completed=self.done, width=width)
        yield tail


def reason_table(rejected: Mapping[str, int], examples: Mapping[str, str]) -> Text:
    """Rejections per reason, the most frequent first, each with its latest example.

    One line per reason however many messages were rejected: the view groups them, so a run
    with many bad messages costs no more to show than one with a few (see `etl.cli.live`)."""
    ranked = sorted((item for item in rejected.items() if item[1]), key=lambda i: (-i[1], i[0]))
    keep = len(ranked) if len(ranked) <= MAX_REASON_ROWS else MAX_REASON_ROWS - 1
    rows = [(reason, f"{n:,}") for reason, n in ranked[:keep]]
    if keep < len(ranked):  # two or more
        rest = sum(n for _, n in ranked[keep:])
        rows.append((f"... {len(ranked) - keep} more reasons", f"{rest:,}"))
    names = max(len(r) for r, _ in rows)
    numbers = max(len(n) for _, n in rows)
    lines = []
    for reason, n in rows:
        example = examples.get(reason)
        lines.append(
            Text.assemble(
                ("  " + reason.ljust(names), "red" if reason in rejected else "dim"),
                "  " + n.rjust(numbers),
                ("  latest " + escape_controls(example) if example else "", "dim"),
            )
        )
    return _lines(lines)


def partition_table(parts: Sequence[PartitionProgress]) -> Text:
    """Offset reached, stop and lag per partition; the busiest first when there are many.

    Plain aligned text, not a rich `Table`: it is drawn several times a second beside the run,
    and a table cost ten times as much to lay out."""
    shown = list(parts)
    if len(shown) > MAX_PARTITION_ROWS:
        shown = sorted(shown, key=lambda p: (-(p.stop - min(p.next, p.stop)), p.partition))
        shown = sorted(shown[:MAX_PARTITION_ROWS], key=lambda p: p.partition)
    rows = [("partition", "offset", "stop", "lag")]
    rows += [
        (str(p.partition), f"{p.next:,}", f"{p.stop:,}", f"{max(0, p.stop - p.next):,}")
        for p in shown
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        Text("  ".join(c.rjust(w) for c, w in zip(rows[0], widths, strict=True)), style="bold dim")
    ]
    for p, row in zip(shown, rows[1:], strict=True):
        line = Text("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if p.next >= p.stop:
            line.append("  done", style="green")
        lines.append(line)
    hidden = len(parts) - len(shown)
    if hidden:
        done = sum(1 for p in parts if p.next >= p.stop)
        indent = " " * (sum(widths) + 2 * len(widths))
        lines.append(Text(f"{indent}... {hidden} more ({done} done in all)", style="dim"))
    return _lines(lines)


def _lines(lines: list[Text]) -> Text:
    """Lines as one `Text`, each cut with an ellipsis at the terminal's width, never wrapped."""
    out = Text("\n").join(lines)
    out.no_wrap = True
    out.overflow = "ellipsis"
    return out


def clock_text(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
