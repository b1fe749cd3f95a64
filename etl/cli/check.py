"""Dependency checks for ``etl check``: Kafka, PostgreSQL and the Pushgateway, each as a value.

Every check returns a `Result` (never raises for an unavailable dependency) so that all three
are reported even when the first fails. A failed result carries the exit code of the error it
stands for; ``etl check`` exits with the first failure's code:

    kafka        3  broker unreachable, or the topic does not exist
    postgres     4  server unreachable; 5 when the schema is not at the latest version
    pushgateway  7  no answer on ``/-/healthy`` (an empty URL means "not pushed": skipped, ok)

The Kafka check uses an AdminClient metadata request for all topics (a request naming the
topic could auto-create it on brokers that allow that) with the ``[kafka.client]`` settings.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from etl.core.config import KafkaConfig, PostgresConfig, PushgatewayConfig
from etl.core.errors import (
    EtlError,
    KafkaUnavailable,
    PostgresUnavailable,
    PushgatewayUnavailable,
    SchemaConflict,
)
from etl.core.migrations import LATEST
from etl.pg import admin

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 10.0


@dataclass(frozen=True)
class Result:
    """One dependency's state: ``name: ok|FAILED detail``."""

    name: str
    ok: bool
    detail: str
    exit_code: int = 0

    def line(self) -> str:
        return f"{self.name}: {'ok' if self.ok else 'FAILED'} {self.detail}"


def check_kafka(cfg: KafkaConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
    """The broker answers and ``cfg.topic`` exists; its partitions and their leaders."""
    conf: dict[str, Any] = {
        **cfg.client,
        "bootstrap.servers": cfg.bootstrap_servers,
        "logger": log,
    }
    try:
        meta = AdminClient(conf).list_topics(timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else exc
        text = err.str() if hasattr(err, "str") else str(err)
        return _failed("kafka", KafkaUnavailable(f"{cfg.bootstrap_servers}: {text}"))
    topic = meta.topics.get(cfg.topic)
    if topic is None:
        return _failed("kafka", KafkaUnavailable(f"topic {cfg.topic!r} does not exist"))
    if topic.error is not None:
        return _failed("kafka", KafkaUnavailable(f"topic {cfg.topic!r}: {topic.error.str()}"))
    parts = sorted(topic.partitions)
    return Result(
        "kafka",
        True,
        f"{cfg.bootstrap_servers} topic {cfg.topic!r} has {len(parts)} partition(s) {parts}",
    )


def check_postgres(cfg: PostgresConfig) -> Result:
    """The server answers and the schema is at the latest version etl knows."""
    try:
        with admin.connect(cfg) as conn:
            server = admin.server_version(conn)
            version = admin.current_version(conn)
    except (PostgresUnavailable, SchemaConflict) as exc:
        return _failed("postgres", exc)
    where = f"{cfg.masked_dsn} (PostgreSQL {server})"
    if version != LATEST:
        shown = "none (empty database)" if version is None else str(version)
        problem = "run 'etl db init'" if version is None else "run 'etl db migrate'"
        if version is not None and version > LATEST:
            problem = "newer than this etl"
        return Result(
            "postgres",
            False,
            f"{where} schema version {shown}, latest {LATEST}: {problem}",
            SchemaConflict.exit_code,
        )
    return Result("postgres", True, f"{where} schema version {version} (latest)")


def check_pushgateway(cfg: PushgatewayConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
    """``GET {url}/-/healthy`` answers 200; an empty URL is a skip, not a failure."""
    if not cfg.url:
        return Result("pushgateway", True, "skipped: pushgateway.url is empty, nothing is pushed")
    url = cfg.url.rstrip("/") + "/-/healthy"
    try:
        # The scheme is validated by PushgatewayConfig: only http:// and https:// reach here.
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return _failed("pushgateway", PushgatewayUnavailable(f"{cfg.url}: {reason}"))
    if status != 200:
        return _failed("pushgateway", PushgatewayUnavailable(f"{url} answered HTTP {status}"))
    return Result("pushgateway", True, f"{cfg.url} healthy")


def exit_code(results: list[Result]) -> int:
    """0 when every check passed, else the exit code of the first failure."""
    return next((r.exit_code for r in results if not r.ok), 0)


def _failed(name: str, exc: EtlError) -> Result:
    return Result(name, False, str(exc), exc.exit_code)
