"""Logging set-up: JSON lines when not on a TTY (or forced), readable lines on a TTY.

Events come from `etl.core.events` (a fixed name plus fields); both formats render the fields,
and JSON lines add the run id once the run is recorded.
Nothing here knows about secrets: callers only ever log masked values.

librdkafka logs through the ``etl.librdkafka`` logger in every command that opens a client. A broker
that is down makes it repeat the same line many times a second; `RepeatCollapser` lets the
first one through and then one line with the count of those held back, per distinct message.
While the live view is open, `RejectionDigest` does the like for rejections on a text log.

Text that reaches a terminal never carries a control character of its own: the readable format
(and the ``etl: error:`` line) writes ESC, BEL, CR, newline, DEL and the C1 controls of any
message, field or value as ``\x1b``-style escapes, so a message value or a broker's error text
cannot move the cursor, retitle the window or make the terminal answer into the input. JSON
lines escape control characters by JSON's own rules (C1 and DEL included, below).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from etl.core import events

KAFKA_LOGGER = events.LIBRDKAFKA
REPEAT_WINDOW_SECONDS = 30.0

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
            **events.run_fields(),
        }
        doc.update(getattr(record, "fields", {}))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        text = orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        # JSON leaves DEL and the C1 controls raw; a terminal may still act on them.
        return text.translate(_JSON_EXTRA)


_JSON_EXTRA: dict[int, str] = {c: f"\\u{c:04x}" for c in range(0x7F, 0xA0)}


class TextFormatter(logging.Formatter):
    """``HH:MM:SS level event key=value ...`` for people watching a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = getattr(record, "fields", {})
        rest = " ".join(
            f"{escape_controls(str(k))}={escape_controls(_short(v))}"
            for k, v in fields.items()
            if v is not None
        )
        event = escape_controls(record.getMessage())
        line = f"{ts} {record.levelname.lower():7} {event}"
        if rest:
            line = f"{line}  {rest}"
        if record.exc_info:
            trace = self.formatException(record.exc_info).split("\n")
            line = "\n".join([line, *(escape_controls(t) for t in trace)])
        return line


class RepeatCollapser(logging.Filter):
    """Let the first of identical librdkafka lines through, then a count instead of repeats.

    A line is identical when level and message are. Within `REPEAT_WINDOW_SECONDS` of its first
    appearance repeats are held back; the next occurrence after the window is let through with
    the field ``repeated`` = how many were held back meanwhile, and a new window starts. So a
    broker down for minutes gives one line per message and window, not hundreds.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._seen: dict[tuple[int, str], tuple[float, int]] = {}
        self._last_held: dict[tuple[int, str], logging.LogRecord] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(KAFKA_LOGGER):
            return True
        key = (record.levelno, _without_counters(record.getMessage()))
        now = self._clock()
        first, held = self._seen.get(key, (now, -1))
        if held >= 0 and now - first < REPEAT_WINDOW_SECONDS:
            self._seen[key] = (first, held + 1)
            self._last_held[key] = record
            return False
        self._seen[key] = (now, 0)
        self._last_held.pop(key, None)
        if held > 0:
            _count_into(record, held)
        return True

    def drain(self) -> list[logging.LogRecord]:
        """The last held-back line of each message, with its count; the counts start again.

        Called when a command ends, so a repeat that never came back after its window is still
        told with its count.
        """
        out = []
        for key, record in self._last_held.items():
            first, held = self._seen[key]
            _count_into(record, held)
            self._seen[key] = (first, 0)
            out.append(record)
        self._last_held.clear()
        return out


class RejectionDigest(logging.Filter):
    """On a terminal's text log while the live view is open: rejections grouped per reason.

    Of each reason, the first ``per_reason`` ``message_rejected`` lines pass; the rest are held
    back and counted, and the latest of each reason is kept for the view to show
    (``partition P offset O: detail``). Every rejection is still counted in the run's counts
    and stored in ``rejected_messages``; only the terminal is spared a line per bad message.
    Other lines pass untouched. Called from the decoding thread while the view's thread reads:
    the bookkeeping is under a lock.
    """

    EVENT = "message_rejected"

    def __init__(self, per_reason: int) -> None:
        super().__init__()
        self._per_reason = per_reason
        self._passed: dict[str, int] = {}
        self._latest: dict[str, str] = {}
        self._held = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != self.EVENT:
            return True
        fields = getattr(record, "fields", {})
        reason = str(fields.get("reason"))
        where = f"partition {fields.get('partition')} offset {fields.get('offset')}"
        example = f"{where}: {fields.get('detail')}"
        with self._lock:
            self._latest[reason] = example
            passed = self._passed.get(reason, 0)
            if passed < self._per_reason:
                self._passed[reason] = passed + 1
                return True
            self._held += 1
            return False

    def latest(self) -> dict[str, str]:
        """The latest rejection logged per reason, held back or not."""
        with self._lock:
            return dict(self._latest)

    def counts(self) -> tuple[int, int]:
        """(lines let through, lines held back) so far."""
        with self._lock:
            return sum(self._passed.values()), self._held


def _count_into(record: logging.LogRecord, held: int) -> None:
    fields = dict(getattr(record, "fields", {}))
    fields["repeated"] = held
    record.fields = fields


def _without_counters(message: str) -> str:
    """librdkafka appends ``(after 0ms in state CONNECT, 3 identical error(s) suppressed)``."""
    head, sep, _ = message.partition(" (after ")
    return head if sep else message


_json_in_effect: bool | None = None


def setup_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Route the ``etl`` loggers to ``stream`` (stderr) in the chosen format."""
    global _json_in_effect  # noqa: PLW0603 - one process, one logging set-up
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(RepeatCollapser())
    root = logging.getLogger("etl")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    _json_in_effect = use_json


def flush_repeats() -> None:
    """Write the counts of librdkafka lines held back since their last appearance."""
    for handler in logging.getLogger("etl").handlers:
        for found in handler.filters:
            if isinstance(found, RepeatCollapser):
                for record in found.drain():
                    handler.acquire()
                    try:
                        handler.emit(record)
                    finally:
                        handler.release()


def reset() -> None:
    """Forget the set-up (each command invocation starts from the environment again)."""
    global _json_in_effect  # noqa: PLW0603
    _json_in_effect = None
    root = logging.getLogger("etl")
    root.handlers[:] = []
    root.setLevel(logging.NOTSET)
    root.propagate = True


def json_in_effect() -> bool:
    """Whether this command's logs are JSON lines.

    As set up by `setup_logging`; before that (a usage error found while parsing the command
    line or the configuration) from ``ETL_LOG__FORMAT`` and whether stderr is a terminal, the
    same rule ``log.format`` follows.
    """
    if _json_in_effect is not None:
        return _json_in_effect
    fmt = os.environ.get("ETL_LOG__FORMAT", "auto").strip().lower()
    return fmt == "json" or (fmt not in ("text", "json") and not sys.stderr.isatty())


def log_failure(message: str, exit_code: int) -> None:
    """The failure as one JSON event on stderr, after the ``etl: error:`` line, if logs are JSON."""
    if not json_in_effect():
        return
    record = logging.LogRecord("etl.cli", logging.ERROR, __file__, 0, "command_failed", None, None)
    record.fields = {"error": message, "exit_code": exit_code}
    sys.stderr.write(JsonFormatter().format(record) + "\n")
    sys.stderr.flush()


def _short(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    )
    return text if len(text) <= 300 else text[:297] + "..."
