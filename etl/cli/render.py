"""Text for operators: TOML for ``etl config show``, tables or JSON lines for row listings.

Pure functions of their input. TOML comes from tomli-w, so ``tomllib.loads`` of the output
gives the input back (any key or value, quoted as needed) and the text can be saved as a config
file (with the secrets re-entered).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import orjson
import tomli_w


def to_toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML text for ``{section: {key: scalar | {key: scalar}}}``, keys in the given order."""
    return tomli_w.dumps(sections)


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
