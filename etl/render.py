"""Text for operators: TOML for ``etl config show``, tables or JSON lines for row listings.

Pure functions of their input. The TOML emitter covers what `etl.config.Config.masked`
produces: sections of strings, numbers and booleans, plus nested tables of scalars (written as
``[section.key]`` sub-tables after the section's plain keys). ``tomllib.loads`` of the output
gives the input back, so the text can be saved as a config file (with the secrets re-entered).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, Final

import orjson

_BARE_KEY: Final = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n"}
_ESCAPES_MORE: Final = {"\f": "\\f", "\r": "\\r"}


def to_toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML text for ``{section: {key: scalar | {key: scalar}}}``, keys in the given order."""
    out: list[str] = []
    for name, values in sections.items():
        scalars = {k: v for k, v in values.items() if not isinstance(v, Mapping)}
        tables = {k: v for k, v in values.items() if isinstance(v, Mapping)}
        out.append(f"[{toml_key(name)}]")
        out.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in scalars.items())
        out.append("")
        for key, table in tables.items():
            out.append(f"[{toml_key(name)}.{toml_key(key)}]")
            out.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items())
            out.append("")
    return "\n".join(out)


def toml_key(key: str) -> str:
    """A bare key when allowed, else a quoted one (``"sasl.password"``)."""
    return key if _BARE_KEY.match(key) else toml_string(key)


def toml_value(value: Any) -> str:
    """A TOML scalar: boolean, integer, float (never NaN or infinite here) or basic string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} as a configuration value")
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    parts = []
    for char in text:
        if char in _ESCAPES:
            parts.append(_ESCAPES[char])
        elif char in _ESCAPES_MORE:
            parts.append(_ESCAPES_MORE[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            parts.append(f"\\u{ord(char):04x}")
        else:
            parts.append(char)
    return '"' + "".join(parts) + '"'


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
