"""Logging set-up: JSON lines when not on a TTY (or forced), readable lines on a TTY.

Events carry structured fields in ``extra={"fields": {...}}``; both formats render them.
Nothing here knows about secrets: callers only ever log masked values.

Text that reaches a terminal never carries a control character of its own: the readable format
(and the ``etl: error:`` line) writes ESC, BEL, CR, newline, DEL and the C1 controls of any
message, field or value as ``\x1b``-style escapes, so a message value or a broker's error text
cannot move the cursor, retitle the window or make the terminal answer into the input. JSON
lines escape control characters by JSON's own rules (C1 and DEL included, below).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CONTROLS: dict[int, str] = {
    c: _NAMED.get(chr(c), f"\\x{c:02x}") for c in (*range(0x20), *range(0x7F, 0xA0))
}


def escape_controls(text: str) -> str:
    """``text`` with every C0/C1 control character and DEL written as a visible escape."""
    return text.translate(_CONTROLS)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        doc.update(getattr(record, "fields", {}))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        text = orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        # JSON leaves DEL and the C1 controls raw; a terminal may still act on them.
        return text.translate(_JSON_EXTRA)


_JSON_EXTRA: dict[int, str] = {c: f"\\u{c:04x}" for c in range(0x7F, 0xA0)}


class TextFormatter(logging.Formatter):
    """``HH:MM:SS level event key=value ...`` for people watching a terminal.

    On a terminal each line first clears the current one, so a log line never lands in the
    middle of the progress line (which redraws itself after the next batch).
    """

    def __init__(self, clear_line: bool = False) -> None:
        super().__init__()
        self._prefix = "\r\x1b[K" if clear_line else ""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = getattr(record, "fields", {})
        rest = " ".join(
            f"{escape_controls(str(k))}={escape_controls(_short(v))}"
            for k, v in fields.items()
            if v is not None
        )
        event = escape_controls(record.getMessage())
        line = f"{self._prefix}{ts} {record.levelname.lower():7} {event}"
        if rest:
            line = f"{line}  {rest}"
        if record.exc_info:
            trace = self.formatException(record.exc_info).split("\n")
            line = "\n".join([line, *(escape_controls(t) for t in trace)])
        return line


def setup_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Route the ``etl`` loggers to ``stream`` (stderr) in the chosen format."""
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter(clear_line=out.isatty()))
    root = logging.getLogger("etl")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def _short(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    )
    return text if len(text) <= 300 else text[:297] + "..."
