"""The end of a run for people: one table with the outcome, the counts and the partitions.

Printed by `etl run` on a terminal (stderr) when the live view closes, and for a dry run also
off a terminal (stdout), since a dry run exists to be read. Off a terminal rich writes plain
text without colour codes. Pure: counts and offsets in, a rich renderable out.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from etl.cli.render import duration_text
from etl.core.counts import RunCounts
from etl.core.ports import PartitionProgress


def summary_view(
    status: str,
    exit_code: int,
    duration: float,
    counts: RunCounts,
    parts: Sequence[PartitionProgress],
    *,
    dry_run: bool,
) -> RenderableType:
    """Title line, counts (rejections by reason), and start/stop/reached per partition."""
    consumed = int(counts.get("etl_messages_consumed"))
    mb = counts.get("etl_bytes_consumed") / 1e6
    rate = consumed / duration if duration > 0 else 0.0
    ok = exit_code == 0
    title = Text.assemble(
        (f"{'dry run' if dry_run else 'run'} {status}", "bold green" if ok else "bold red"),
        f" (exit {exit_code}) in {duration_text(duration)}: {consumed:,} messages, "
        f"{mb:,.1f} MB, {rate:,.0f} msg/s",
    )
    table_counts = Table.grid(padding=(0, 2))
    table_counts.add_column()
    table_counts.add_column(justify="right")
    table_counts.add_row(
        "would insert" if dry_run else "inserted", f"{int(counts.get('etl_rows_inserted')):,}"
    )
    table_counts.add_row("duplicates", f"{int(counts.get('etl_rows_duplicate')):,}")
    rejected = {reason: n for reason, n in counts.rejected().items() if n}
    table_counts.add_row("rejected", f"{sum(rejected.values()):,}")
    for reason, n in rejected.items():
        table_counts.add_row(f"  {reason}", f"{n:,}")
    rewound = sum(p.rewound for p in parts)
    if rewound:  # the database was behind the group (a restore): see etl.core.positions
        table_counts.add_row("re-read (database behind)", f"{rewound:,}")
    if not parts:
        return Group(title, table_counts)
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name in ("partition", "start", "stop", "reached", "read", "left"):
        table.add_column(name, justify="right")
    for p in parts:
        table.add_row(
            str(p.partition),
            f"{p.start:,}",
            f"{p.stop:,}",
            f"{p.next:,}",
            f"{max(0, p.next - p.start):,}",
            f"{max(0, p.stop - p.next):,}",
        )
    return Group(title, table_counts, Text(""), table)
