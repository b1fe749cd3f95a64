"""Payload tracker: status events for every message that carries a ``RequestId``.

Events are JSON ``{"service", "request_id", "status", "date"}`` produced to ``tracker.topic``:
``received`` once the value parsed, ``processed`` once validated, then ``success`` (its row was
written or was already stored) or ``error`` (rejected). They are produced asynchronously in
bulk and flushed before the batch's offsets are committed. A tracker failure never fails the
run: it is logged and counted (`errors`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from etl.core import events
from etl.core.config import KafkaConfig, TrackerConfig
from etl.core.ports import NullTracker, Tracker
from etl.kafka.offsets import client_error

log = events.logger(__name__)

_FLUSH_SLICE_SECONDS = 0.5


class KafkaTracker:
    def __init__(
        self,
        kafka: KafkaConfig,
        cfg: TrackerConfig,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        self._cfg = cfg
        self._now = now
        self._stop_requested = stop_requested
        self.errors = 0
        settings = {
            **kafka.client,
            "bootstrap.servers": kafka.bootstrap_servers,
            "linger.ms": 50,
            "message.timeout.ms": int(cfg.timeout_seconds * 1000),
            "logger": logging.getLogger(events.LIBRDKAFKA),
        }
        try:
            self._producer = Producer(settings)
        except KafkaException as exc:
            raise client_error(exc, "producer") from exc

    def send(self, request_ids: Iterable[str], status: str) -> None:
        date = self._now().isoformat().replace("+00:00", "Z")
        for rid in request_ids:
            event = orjson.dumps(
                {
                    "service": self._cfg.service_name,
                    "request_id": rid,
                    "status": status,
                    "date": date,
                }
            )
            while True:
                try:
                    self._producer.produce(self._cfg.topic, event, on_delivery=self._delivered)
                    break
                except BufferError:  # local queue full: let deliveries drain, then retry
                    self._producer.poll(0.1)
                except KafkaException as exc:
                    self._fail(str(exc))
                    break
        self._producer.poll(0)

    def flush(self) -> None:
        """Wait up to ``tracker.timeout_seconds`` for deliveries; a stop request ends the wait
        (what is undelivered then is counted as failed, like a timeout)."""
        deadline = time.monotonic() + self._cfg.timeout_seconds
        left = len(self._producer)
        while left and not self._stop_requested():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            left = self._producer.flush(min(_FLUSH_SLICE_SECONDS, remaining))
        if left:
            self._fail(f"{left} tracker event(s) not delivered in {self._cfg.timeout_seconds}s")

    def close(self) -> None:
        self.flush()

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._fail(err.str())

    def _fail(self, reason: str) -> None:
        self.errors += 1
        if self.errors == 1 or self.errors % 1000 == 0:
            log.error("tracker_event_failed", error=reason, failures=self.errors)


def open_tracker(
    kafka: KafkaConfig, cfg: TrackerConfig, stop_requested: Callable[[], bool] = lambda: False
) -> Tracker:
    return KafkaTracker(kafka, cfg, stop_requested=stop_requested) if cfg.topic else NullTracker()
