"""Dependency checks for ``etl check``: Kafka, PostgreSQL and the Pushgateway, each as a value.

Every check returns a `Result` (never raises for an unavailable dependency) so that all three
are reported even when the first fails. A failed result carries the exit code of the error it
stands for; ``etl check`` exits with the first failure's code:

    kafka        3  broker unreachable; 9 the topic does not exist or the login was refused
    postgres     4  server unreachable; 5 when the schema is not at the latest version;
                    8 login or privilege refused; 2 options libpq rejects
    pushgateway  7  no complete answer on ``/-/healthy`` within the deadline (an empty URL
                    means "not pushed": skipped, ok)

Each probe lives with its adapter (`etl.kafka.offsets.probe`, `etl.pg.admin`,
`etl.metrics.probe`); this module only turns their answers and errors into results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from etl import metrics
from etl.core.config import KafkaConfig, PostgresConfig, PushgatewayConfig
from etl.core.errors import (
    ConfigError,
    EtlError,
    PostgresRefused,
    PostgresUnavailable,
    SchemaConflict,
)
from etl.core.migrations import LATEST
from etl.kafka import offsets
from etl.pg import admin

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
    """The broker answers and ``cfg.topic`` exists; its partitions."""
    try:
        return Result("kafka", True, offsets.probe(cfg, timeout))
    except EtlError as exc:
        return _failed("kafka", exc)


def check_postgres(cfg: PostgresConfig) -> Result:
    """The server answers and the schema is at the latest version etl knows."""
    try:
        with admin.connect(cfg) as conn:
            server = admin.server_version(conn)
            version = admin.current_version(conn)
    except (PostgresUnavailable, PostgresRefused, SchemaConflict, ConfigError) as exc:
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
    try:
        return Result("pushgateway", True, metrics.probe(cfg, timeout))
    except EtlError as exc:
        return _failed("pushgateway", exc)


def exit_code(results: list[Result]) -> int:
    """0 when every check passed, else the exit code of the first failure."""
    return next((r.exit_code for r in results if not r.ok), 0)


def _failed(name: str, exc: EtlError) -> Result:
    return Result(name, False, str(exc), exc.exit_code)
