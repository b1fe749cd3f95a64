"""What one run counted: messages, rows, rejections by reason, lag and retention gaps per
partition, and how it ended. Pure values, filled by the pipeline and the batch decoder.

Each per-partition series covers every partition of the topic the run learned of, so a run's
samples replace an earlier run's on the Pushgateway (a family pushed without samples would
leave the old ones in place): skipped and rewound are 0 where nothing was, the lag and the
drift NaN where they were not measured. ``etl_partition_lag_known`` says whether the lag is
this run's measurement (1) or unknown (0: Kafka did not answer, or the run crashed); see
docs/alerts.md.

The names are the metric names the job pushes (`etl.metrics` turns these counts into gauges
once, at the end of the run), so a count, its entry in docs/operations.md and its series share
one name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final

from etl.core.decode import EXPECTED_VERSION, REASONS

# name -> what it counts (the help of its gauge); every name is listed in docs/operations.md.
COUNTS: Final[dict[str, str]] = {
    "etl_messages_consumed": "Kafka messages read by the last run",
    "etl_bytes_consumed": "bytes of Kafka message values read by the last run",
    "etl_rows_inserted": "rows inserted into new_reports by the last run",
    "etl_rows_duplicate": "valid rows skipped because new_reports already held their key",
    "etl_rows_missing_account_number": "rows stored with account_number 0 (missing or null)",
    "etl_messages_unexpected_version": f"valid messages whose Version was not {EXPECTED_VERSION}",
    "etl_bytes_stored": "bytes of report JSON inserted into new_reports by the last run",
    "etl_batches": "batches committed by the last run",
    "etl_run_duration_seconds": "wall time of the last run",
    "etl_run_exit_code": "exit code of the last run (0 = success)",
    "etl_tracker_errors": "payload tracker events that could not be delivered",
    "etl_partition_lag_known": "1 when etl_partition_lag is the last run's measurement of every"
    " partition, 0 when it is unknown (Kafka did not answer)",
    "etl_last_run_timestamp_seconds": "end time of the last run, Unix seconds",
}


class RunCounts:
    """The counts of one run; the run reads them back for its summary and its runs record."""

    def __init__(self) -> None:
        self._values = dict.fromkeys(COUNTS, 0.0)
        self._rejections = dict.fromkeys(REASONS, 0)
        self.lag: dict[int, float] = {}  # NaN: not measured
        self.skipped: dict[int, int] = {}
        # Per partition, as found at assignment: the database's position minus the group's
        # committed offset (drift, NaN: not compared), and the messages read again because
        # the database was behind.
        self.drift: dict[int, float] = {}
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
        """Count a rejection. Every one of `REASONS` has a sample from the start; a reason
        outside them (a slip past the core's own check) is counted under its own name: this
        runs on the decoding thread, where an error would stop the run for a label."""
        self._rejections[reason] = self._rejections.get(reason, 0) + amount

    def rejected(self) -> dict[str, int]:
        return dict(self._rejections)

    def set_lag(self, lag: Mapping[int, int | None]) -> None:
        """The end-of-run lag of every partition of the topic, None where it is unknown.

        Known only when every partition was measured; an empty mapping (the partitions
        themselves unknown) is unknown too.
        """
        self.lag = {p: math.nan if n is None else float(n) for p, n in sorted(lag.items())}
        known = bool(lag) and all(n is not None for n in lag.values())
        self.set("etl_partition_lag_known", 1.0 if known else 0.0)

    def set_skipped(self, partition: int, skipped: int) -> None:
        self.skipped[partition] = skipped

    def note_position(self, partition: int, drift: int | None, rewound: int) -> None:
        """At assignment the database's position was ``drift`` messages from the group's
        (negative: behind; None: one of them held none), and ``rewound`` messages were to be
        read again."""
        if drift is not None:
            self.drift[partition] = drift
        self.rewound[partition] = rewound

    def cover(self, partitions: Iterable[int]) -> None:
        """Give every one of ``partitions`` a sample of each per-partition series, once at the
        end of the run: 0 skipped and 0 rewound where nothing was, NaN lag and drift where
        they were not measured."""
        for p in partitions:
            self.lag.setdefault(p, math.nan)
            self.skipped.setdefault(p, 0)
            self.rewound.setdefault(p, 0)
            self.drift.setdefault(p, math.nan)

    def finish(self, exit_code: int, ended_at: float, duration: float) -> None:
        self.set("etl_run_exit_code", exit_code)
        self.set("etl_last_run_timestamp_seconds", ended_at)
        self.set("etl_run_duration_seconds", duration)
        self.succeeded_at = ended_at if exit_code == 0 else None
