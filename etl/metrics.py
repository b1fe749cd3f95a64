"""Run metrics: a fresh registry per run, filled as the run goes, pushed once at its end.

All series are gauges describing the last run (a batch job's counters restart every run, which
is what gauges on a Pushgateway express). They are pushed with POST (pushadd) under the grouping
key ``job`` plus the configured extra labels, so ``etl_last_success_timestamp_seconds`` from an
earlier successful run survives a failed one. A push failure is logged and never changes the
run's exit code. Metrics never decide control flow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http.client import HTTPException

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import pushadd_to_gateway

from etl.core.config import PushgatewayConfig
from etl.core.decode import REASONS

log = logging.getLogger(__name__)

Pusher = Callable[..., None]

# name -> help; every name is listed in the README.
SCALARS: dict[str, str] = {
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


class RunMetrics:
    """Counts of one run. Owned by the run; the CLI pushes it once, also for failed runs."""

    def __init__(self, cfg: PushgatewayConfig, pusher: Pusher = pushadd_to_gateway) -> None:
        self._cfg = cfg
        self._pusher = pusher
        self.registry = CollectorRegistry()
        self._scalars = {
            name: Gauge(name, text, registry=self.registry) for name, text in SCALARS.items()
        }
        self._rejected = Gauge(
            "etl_messages_rejected",
            "messages rejected by the last run, by reason",
            ["reason"],
            registry=self.registry,
        )
        for reason in REASONS:
            self._rejected.labels(reason=reason).set(0)
        self._lag = Gauge(
            "etl_partition_lag",
            "messages left after the last run, per partition",
            ["partition"],
            registry=self.registry,
        )
        self._skipped = Gauge(
            "etl_offsets_skipped_retention",
            "offsets deleted by retention before they were read, per partition",
            ["partition"],
            registry=self.registry,
        )
        self.succeeded = False
        # The run reads its own counts back (summary, runs table): kept here, mirrored in gauges.
        self._values = dict.fromkeys(SCALARS, 0.0)
        self._rejections = dict.fromkeys(REASONS, 0)

    def add(self, name: str, amount: float) -> None:
        self.set(name, self._values[name] + amount)

    def set(self, name: str, value: float) -> None:
        self._values[name] = value
        self._scalars[name].set(value)

    def get(self, name: str) -> float:
        return self._values[name]

    def reject(self, reason: str, amount: int = 1) -> None:
        self._rejections[reason] += amount
        self._rejected.labels(reason=reason).set(self._rejections[reason])

    def rejected(self) -> dict[str, int]:
        return dict(self._rejections)

    def set_lag(self, lag: Mapping[int, int]) -> None:
        for partition, value in lag.items():
            self._lag.labels(partition=str(partition)).set(value)

    def set_skipped(self, partition: int, skipped: int) -> None:
        self._skipped.labels(partition=str(partition)).set(skipped)

    def finish(self, exit_code: int, ended_at: float, duration: float) -> None:
        self.set("etl_run_exit_code", exit_code)
        self.set("etl_last_run_timestamp_seconds", ended_at)
        self.set("etl_run_duration_seconds", duration)
        self.succeeded = exit_code == 0
        if self.succeeded:
            # Registered only on success: pushadd then leaves the previous value in place.
            Gauge(
                "etl_last_success_timestamp_seconds",
                "end time of the last successful run, Unix seconds",
                registry=self.registry,
            ).set(ended_at)

    def push(self) -> bool:
        """Push to the Pushgateway if one is configured; True when pushed."""
        if not self._cfg.url:
            return False
        try:
            self._pusher(
                self._cfg.url,
                job=self._cfg.job,
                registry=self.registry,
                grouping_key=dict(self._cfg.grouping_key),
                timeout=self._cfg.timeout_seconds,
            )
        # URLError and HTTPError are OSErrors; a garbled answer raises HTTPException
        except (OSError, HTTPException, ValueError) as exc:
            log.error(
                "pushing metrics failed",
                extra={"fields": {"pushgateway": self._cfg.url, "error": str(exc)}},
            )
            return False
        return True
