"""Logging set-up: JSON lines when not on a TTY (or forced), readable lines on a TTY.

Events carry structured fields in ``extra={"fields": {...}}``; both formats render them.
Nothing here knows about secrets: callers only ever log masked values.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson


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
        return orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


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
        rest = " ".join(f"{k}={_short(v)}" for k, v in fields.items() if v is not None)
        line = f"{self._prefix}{ts} {record.levelname.lower():7} {record.getMessage()}"
        if rest:
            line = f"{line}  {rest}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
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
