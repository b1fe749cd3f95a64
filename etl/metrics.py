"""Run metrics: one run's counts, turned into a fresh registry of gauges and pushed once.

All series are gauges describing the last run (a batch job's counters restart every run, which
is what gauges on a Pushgateway express). They are pushed with POST (pushadd) under the grouping
key ``job`` plus the configured extra labels, so ``etl_last_success_timestamp_seconds`` from an
earlier successful run survives a failed one. A push failure is logged and never changes the
run's exit code. Metrics never decide control flow.
"""

from __future__ import annotations

import dataclasses
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPException

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import pushadd_to_gateway

from etl.core.config import PushgatewayConfig
from etl.core.counts import COUNTS, RunCounts
from etl.core.errors import PushgatewayUnavailable
from etl.core.plan import Aim

log = logging.getLogger(__name__)

Pusher = Callable[..., None]


def registry_for(counts: RunCounts) -> CollectorRegistry:
    """A fresh registry holding one run's counts as gauges."""
    registry = CollectorRegistry()
    for name, value in counts.values().items():
        Gauge(name, COUNTS[name], registry=registry).set(value)
    rejected = Gauge(
        "etl_messages_rejected",
        "messages rejected by the last run, by reason",
        ["reason"],
        registry=registry,
    )
    for reason, n in counts.rejected().items():
        rejected.labels(reason=reason).set(n)
    for name, text, per_partition in (
        ("etl_partition_lag", "messages left after the last run, per partition", counts.lag),
        (
            "etl_offsets_skipped_retention",
            "offsets deleted by retention before they were read, per partition",
            counts.skipped,
        ),
    ):
        gauge = Gauge(name, text, ["partition"], registry=registry)
        for partition, value in sorted(per_partition.items()):
            gauge.labels(partition=str(partition)).set(value)
    if counts.succeeded_at is not None:
        # Registered only on success: pushadd then leaves the previous value in place.
        Gauge(
            "etl_last_success_timestamp_seconds",
            "end time of the last successful run, Unix seconds",
            registry=registry,
        ).set(counts.succeeded_at)
    return registry


def pushgateway_for(pgw: PushgatewayConfig, aim: Aim) -> PushgatewayConfig:
    """Where a run's metrics go, so a trial or a backfill never poses as the scheduled job.

    A dry run pushes nothing. An explicitly assigned run (backfill, replay) pushes under an
    extra grouping label ``mode``, beside the scheduled job's series instead of over them.
    """
    if aim.dry_run:
        return dataclasses.replace(pgw, url="")
    if aim.explicit:
        mode = "replay" if aim.replay is not None else "backfill"
        return dataclasses.replace(pgw, grouping_key={**pgw.grouping_key, "mode": mode})
    return pgw


class RunMetrics:
    """Pushes one run's counts to the Pushgateway, once, also for failed runs."""

    def __init__(self, cfg: PushgatewayConfig, pusher: Pusher = pushadd_to_gateway) -> None:
        self._cfg = cfg
        self._pusher = pusher

    def push(self, counts: RunCounts) -> bool:
        """Push to the Pushgateway if one is configured; True when pushed."""
        if not self._cfg.url:
            return False
        try:
            self._pusher(
                self._cfg.url,
                job=self._cfg.job,
                registry=registry_for(counts),
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


def probe(cfg: PushgatewayConfig, timeout: float) -> str:
    """What ``etl check`` reports of the Pushgateway: ``GET {url}/-/healthy`` answers 200."""
    url = cfg.url.rstrip("/") + "/-/healthy"
    try:
        # The scheme is validated by PushgatewayConfig: only http:// and https:// reach here.
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PushgatewayUnavailable(f"{cfg.url}: {reason}") from exc
    if status != 200:
        raise PushgatewayUnavailable(f"{url} answered HTTP {status}")
    return f"{cfg.url} healthy"
