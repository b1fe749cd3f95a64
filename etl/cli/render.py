"""Text for operators: TOML for ``etl config show``, tables or JSON lines for row listings.

Pure functions of their input. TOML comes from tomli-w, so ``tomllib.loads`` of the output
gives the input back (any key or value, quoted as needed) and the text can be saved as a config
file (with the secrets re-entered).
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice
from typing import Any

import orjson
import tomli_w


def to_toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML text for ``{section: {key: scalar | {key: scalar}}}``, keys in the given order."""
    return tomli_w.dumps(sections)


def mark_keys(text: str, section: str, keys: Collection[str], note: str) -> str:
    """``text`` (from `to_toml`) with ``  # note`` after each key of ``[section]`` in ``keys``;
    still TOML that loads to the same data."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            inside = line.strip() == f"[{section}]"
        elif inside and line.strip() and next(iter(tomllib.loads(line))) in keys:
            out.append(f"{line.rstrip()}  # {note}\n")
            continue
        out.append(line)
    return "".join(out)


def json_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """One compact JSON object per row; datetimes in ISO 8601."""
    for row in rows:
        yield orjson.dumps(row, default=str).decode()


def table_lines(
    columns: Sequence[str], rows: Iterable[Mapping[str, Any]], *, sample: int = 1000
) -> Iterator[str]:
    """A header and one aligned line per row: each column as wide as its widest cell.

    Widths come from the header and the first ``sample`` rows, which are held to measure them;
    the rest is streamed, and a later cell wider than its column pushes its line right. Columns
    whose cells are all numbers are right-aligned, like psql does; ``-`` stands for null.
    """
    it = iter(rows)
    head = [[row.get(c) for c in columns] for row in islice(it, sample)]
    numeric = [
        all(_is_number(r[i]) for r in head if r[i] is not None)
        and any(r[i] is not None for r in head)
        for i in range(len(columns))
    ]
    cells = [[_cell(v) for v in r] for r in head]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    yield line(columns)
    for values in cells:
        yield line(values)
    for row in it:
        yield line([_cell(row.get(c)) for c in columns])


def duration_text(seconds: float) -> str:
    """``0.4s``, ``12.3s``, ``4m05s``, ``2h03m``: short and exact enough for a run."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole // 60 % 60:02d}m"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(" ", timespec="seconds")
    return str(value)
