"""Run metrics: one run's counts, turned into a fresh registry of gauges and pushed once.

All series are gauges describing the last run (a batch job's counters restart every run, which
is what gauges on a Pushgateway express). They are pushed with POST (pushadd) under the grouping
key ``job`` plus the configured extra labels, so ``etl_last_success_timestamp_seconds`` from an
earlier successful run survives a failed one. A push failure is logged and never changes the
run's exit code. Metrics never decide control flow. A run that ended in a usage or
configuration error (exit 2) pushes nothing: it did no work, and its series could otherwise
fire the scheduled job's alerts.

The push and ``etl check``'s probe each have ONE total deadline, ``pushgateway.timeout_seconds``
(the socket timeout alone bounds each read, so a peer sending a byte per second could hold a
request for ever). The request runs on a daemon thread that the caller waits for until the
deadline or a stop request (SIGTERM), whichever comes first; an abandoned request dies with the
process. Credentials (basic auth or a bearer token) go in an ``Authorization`` header; every URL
and error text logged is masked.

prometheus_client and urllib.request (with http.client, email and ssl: about 20 ms of imports)
are imported only when a registry is built, a push is made or the Pushgateway is probed, so
``etl --help`` and every command that pushes nothing never load them, and a run loads them
after its work, not before its first read.
"""

from __future__ import annotations

import base64
import contextvars
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from etl.core import events
from etl.core.aim import Aim
from etl.core.config import MASK, PushgatewayConfig
from etl.core.counts import COUNTS, RunCounts
from etl.core.errors import ConfigError, PushgatewayUnavailable

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = events.logger(__name__)

Pusher = Callable[..., None]
T = TypeVar("T")
_POLL_SECONDS: Final = 0.1


class DeadlineExceeded(Exception):
    """The request did not complete within its total deadline, or a stop was requested."""


def registry_for(counts: RunCounts) -> CollectorRegistry:
    """A fresh registry holding one run's counts as gauges."""
    from prometheus_client import CollectorRegistry, Gauge  # noqa: PLC0415 - see module doc

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
        (
            "etl_partition_lag",
            "messages left after the last run, per partition (NaN, or an older run's value"
            " where this run pushed none: unknown, see etl_partition_lag_known)",
            counts.lag,
        ),
        (
            "etl_offsets_skipped_retention",
            "offsets deleted by retention before they were read, per partition",
            counts.skipped,
        ),
        (
            "etl_offsets_rewound",
            "messages read again because the database held less than the group had committed"
            " (a restore, a failover), per partition",
            counts.rewound,
        ),
        (
            "etl_offset_drift",
            "the database's position minus the group's committed offset at assignment, per"
            " partition (negative: the database is behind; NaN: not compared)",
            counts.drift,
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
    """Pushes one run's counts to the Pushgateway, once, also for failed runs (not exit 2)."""

    def __init__(
        self,
        cfg: PushgatewayConfig,
        pusher: Pusher | None = None,
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        self._cfg = cfg
        self._pusher = pusher  # None: prometheus_client's pushadd_to_gateway
        self._stop_requested = stop_requested

    def push(self, counts: RunCounts) -> bool:
        """Push to the Pushgateway if one is configured; True when pushed."""
        if not self._cfg.url:
            return False
        if counts.get("etl_run_exit_code") == ConfigError.exit_code:
            log.info("metrics_not_pushed", reason="the run ended in a usage or configuration error")
            return False
        from http.client import HTTPException  # noqa: PLC0415 - see module doc

        from prometheus_client.exposition import pushadd_to_gateway  # noqa: PLC0415

        registry = registry_for(counts)
        pusher = self._pusher or pushadd_to_gateway

        def push_once() -> None:
            pusher(
                self._cfg.base_url,
                job=self._cfg.job,
                registry=registry,
                grouping_key=dict(self._cfg.grouping_key),
                timeout=self._cfg.timeout_seconds,
                handler=auth_handler(self._cfg),
            )

        try:
            within(self._cfg.timeout_seconds, self._stop_requested, push_once)
        # URLError and HTTPError are OSErrors; a garbled answer raises HTTPException
        except (OSError, HTTPException, ValueError, DeadlineExceeded) as exc:
            log.error(
                "push_failed",
                pushgateway=self._cfg.masked_url,
                error=scrub(str(exc), self._cfg),
            )
            return False
        return True


def within(seconds: float, stop_requested: Callable[[], bool], call: Callable[[], T]) -> T:
    """``call()``'s result, or DeadlineExceeded once ``seconds`` passed or a stop was requested.

    ``call`` runs on a daemon thread; when abandoned it is left to its own socket timeout or to
    the end of the process. Its exception, if it failed in time, is re-raised here.
    """
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(
        target=contextvars.copy_context().run, args=(target,), name="etl-http", daemon=True
    ).start()
    deadline = time.monotonic() + seconds
    while not done.wait(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic()))):
        if stop_requested():
            raise DeadlineExceeded("abandoned: stop requested")
        if time.monotonic() >= deadline:
            raise DeadlineExceeded(f"no complete answer within {seconds:g}s")
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["value"]
    return result


def auth_headers(cfg: PushgatewayConfig) -> list[tuple[str, str]]:
    """The ``Authorization`` header for the configured credentials, if any."""
    if cfg.token:
        return [("Authorization", f"Bearer {cfg.token}")]
    basic = cfg.basic_auth
    if basic is not None:
        raw = f"{basic[0]}:{basic[1]}".encode()
        return [("Authorization", "Basic " + base64.b64encode(raw).decode("ascii"))]
    return []


def auth_handler(cfg: PushgatewayConfig) -> Callable[..., Callable[[], None]]:
    """A prometheus_client push handler adding our ``Authorization`` header."""
    from prometheus_client.exposition import default_handler  # noqa: PLC0415 - see module doc

    extra = auth_headers(cfg)

    def handler(
        url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        return default_handler(url, method, timeout, [*headers, *extra], data)

    return handler


def scrub(text: str, cfg: PushgatewayConfig) -> str:
    """``text`` with the URL and every credential of ``cfg`` masked."""
    basic = cfg.basic_auth
    for secret in (cfg.url, cfg.password, cfg.token, basic[1] if basic else ""):
        if secret:
            text = text.replace(secret, cfg.masked_url if secret == cfg.url else MASK)
    return text


def probe(cfg: PushgatewayConfig, timeout: float) -> str:
    """What ``etl check`` reports of the Pushgateway: ``GET {url}/-/healthy`` answers 200,
    within one total deadline of ``timeout`` seconds."""
    import urllib.error  # noqa: PLC0415 - see module doc
    import urllib.request  # noqa: PLC0415 - see module doc
    from http.client import HTTPException  # noqa: PLC0415 - see module doc

    url = cfg.base_url.rstrip("/") + "/-/healthy"
    shown = cfg.masked_url.rstrip("/") + "/-/healthy"
    # The scheme is validated by PushgatewayConfig: only http(s):// reaches here.
    request = urllib.request.Request(url, headers=dict(auth_headers(cfg)))  # noqa: S310

    def get() -> int:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    try:
        status = within(timeout, lambda: False, get)
    except (urllib.error.URLError, OSError, HTTPException, DeadlineExceeded) as exc:
        reason = getattr(exc, "reason", exc)
        raise PushgatewayUnavailable(f"{cfg.masked_url}: {scrub(str(reason), cfg)}") from exc
    if status != 200:
        raise PushgatewayUnavailable(f"{shown} answered HTTP {status}")
    return f"{cfg.masked_url} healthy"
