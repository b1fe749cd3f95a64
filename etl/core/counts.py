"""What one run counted: messages, rows, rejections by reason, lag and retention gaps per
partition, and how it ended. Pure values, filled by the pipeline and the batch decoder.

The names are the metric names the job pushes (`etl.metrics` turns these counts into gauges
once, at the end of the run), so a count, its entry in docs/operations.md and its series share
one name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from etl.core.decode import REASONS

# name -> what it counts (the help of its gauge); every name is listed in docs/operations.md.
COUNTS: Final[dict[str, str]] = {
    "etl_messages_consumed": "Kafka messages read by the last run",
    "etl_bytes_consumed": "bytes of Kafka message values read by the last run",
    "etl_rows_inserted": "rows inserted into new_reports by the last run",
    "etl_rows_duplicate": "valid rows skipped because new_reports already held their key",
    "etl_rows_missing_account_number": "rows stored with account_number 0 (missing or null)",
    "etl_messages_unexpected_version": "valid messages whose Version was not 2",
    "etl_bytes_stored": "bytes of report JSON inserted into new_reports by the last run",
    "etl_batches": "batches committed by the last run",
    "etl_run_duration_seconds": "wall time of the last run",
    "etl_run_exit_code": "exit code of the last run (0 = success)",
    "etl_tracker_errors": "payload tracker events that could not be delivered",
    "etl_last_run_timestamp_seconds": "end time of the last run, Unix seconds",
}


class RunCounts:
    """The counts of one run; the run reads them back for its summary and its runs record."""

    def __init__(self) -> None:
        self._values = dict.fromkeys(COUNTS, 0.0)
        self._rejections = dict.fromkeys(REASONS, 0)
        self.lag: dict[int, int] = {}
        self.skipped: dict[int, int] = {}
        # Per partition, as found at assignment: the database's position minus the group's
        # committed offset (drift), and the messages read again because the database was behind.
        self.drift: dict[int, int] = {}
        self.rewound: dict[int, int] = {}
        self.succeeded_at: float | None = None  # end time, only for a run that exited 0

    def add(self, name: str, amount: float) -> None:
        self._values[name] += amount

    def set(self, name: str, value: float) -> None:
        if name not in self._values:
            raise KeyError(name)
        self._values[name] = value

    def get(self, name: str) -> float:
        return self._values[name]

    def values(self) -> dict[str, float]:
        return dict(self._values)

    def reject(self, reason: str, amount: int = 1) -> None:
        self._rejections[reason] += amount

    def rejected(self) -> dict[str, int]:
        return dict(self._rejections)

    def set_lag(self, lag: Mapping[int, int]) -> None:
        self.lag.update(lag)

    def set_skipped(self, partition: int, skipped: int) -> None:
        self.skipped[partition] = skipped

    def note_position(self, partition: int, drift: int | None, rewound: int) -> None:
        """At assignment the database's position was ``drift`` messages from the group's
        (negative: behind; None: one of them held none), and ``rewound`` messages were to be
        read again."""
        if drift is not None:
            self.drift[partition] = drift
        self.rewound[partition] = rewound

    def finish(self, exit_code: int, ended_at: float, duration: float) -> None:
        self.set("etl_run_exit_code", exit_code)
        self.set("etl_last_run_timestamp_seconds", ended_at)
        self.set("etl_run_duration_seconds", duration)
        self.succeeded_at = ended_at if exit_code == 0 else None
