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


def table_lines(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """A header and one aligned line per row, streamed: widths come from the column names.

    Cells wider than their column push the line right rather than buffering every row.
    """
    widths = [max(len(c), _WIDTHS.get(c, 0)) for c in columns]
    yield "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    for row in rows:
        cells = (_cell(row.get(c)) for c in columns)
        yield "  ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)).rstrip()


_WIDTHS: Final = {
    "org_id": 10,
    "account_number": 10,
    "cluster": 36,
    "updated_at": 26,
    "rejected_at": 32,
    "topic": 20,
    "error_id": 8,
    "age_days": 8,
}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(" ")
    return str(value)
