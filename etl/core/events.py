"""Structured log events: one call per event, a fixed name, the variable parts as fields.

    log = events.logger(__name__)
    log.warning("message_rejected", partition=3, offset=17, reason="invalid_json", detail=...)

An event name never carries data, so a log query or an alert can match it exactly; everything
that varies goes into fields, which both formats of `etl.cli.logs` render. Once a run is
recorded, `RUN_ID` holds its id in the current context and every line carries it (the pipeline
hands its context to the writer thread, so the sink's lines carry it too).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any, Final

RUN_ID: Final[ContextVar[int | None]] = ContextVar("etl_run_id", default=None)
# The logger librdkafka's own lines go through, in every command that opens a Kafka client.
LIBRDKAFKA: Final = "etl.librdkafka"


class EventLogger:
    """A `logging.Logger` that takes an event name and keyword fields."""

    __slots__ = ("_log",)

    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(name)

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, fields)

    def _emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if self._log.isEnabledFor(level):
            self._log.log(level, event, extra={"fields": fields}, stacklevel=3)


def logger(name: str) -> EventLogger:
    return EventLogger(name)


def run_fields() -> dict[str, Any]:
    """The fields every line of the current run carries (none before the run is recorded)."""
    run_id = RUN_ID.get()
    return {} if run_id is None else {"run_id": run_id}
