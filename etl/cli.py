"""Command line: parse options, build the config once, wire the adapters, map errors to exit codes.

This is the only module that knows the concrete adapters; nothing imports it.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import version as package_version
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer

from etl.cli_admin import register as register_admin_commands
from etl.config import Config, load_config
from etl.errors import ConfigError, EtlError, exit_codes_help
from etl.logs import setup_logging
from etl.metrics import RunMetrics
from etl.run import RunSettings, execute
from etl.sink import PostgresSink
from etl.source import KafkaSource

app = typer.Typer(
    name="etl",
    help="Drain a Kafka topic of cluster-analysis reports into PostgreSQL new_reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register_admin_commands(app)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML configuration file (default: $ETL_CONFIG).", show_default=False
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"etl {package_version('etl')}")
        raise typer.Exit(0)


@app.callback()
def _main(
    _version_flag: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Batch loader for new_reports. Every command reads the same configuration."""


def fail(message: str, code: int) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    typer.echo(f"etl: error: {message}", err=True)
    raise typer.Exit(code)


def build_config(path: Path | None) -> Config:
    """The one place configuration is loaded; a bad key exits 2 before anything is touched."""
    try:
        return load_config(path, os.environ)
    except ConfigError as exc:
        fail(str(exc), exc.exit_code)


@dataclass
class StopFlag:
    """Set by SIGTERM/SIGINT; the run finishes its batch and stops. A second signal kills."""

    requested: bool = False

    def __call__(self) -> bool:
        return self.requested

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self.requested = True


@app.command(epilog="Exit codes:\n\n" + exit_codes_help().replace("\n", "\n\n"))
def run(config: ConfigOption = None) -> None:
    """Load every message up to the end offsets seen at start, then push metrics and exit."""
    cfg = build_config(config)
    setup_logging(cfg.log.level, cfg.log.format)
    stop = StopFlag()
    stop.install()
    settings = RunSettings(
        topic=cfg.kafka.topic,
        max_messages=cfg.batch.max_messages,
        max_bytes=cfg.batch.max_bytes,
        clock_skew=timedelta(seconds=cfg.validation.clock_skew_seconds),
    )
    summary = execute(
        settings,
        source=KafkaSource(cfg.kafka),
        sink=PostgresSink(cfg.postgres),
        metrics=RunMetrics(cfg.pushgateway),
        stop_requested=stop,
    )
    if summary.exit_code:
        fail(summary.error or summary.status, summary.exit_code)


def main() -> None:
    """Console entry point: known errors become one line and their exit code."""
    try:
        app()
    except EtlError as exc:
        typer.echo(f"etl: error: {exc}", err=True)
        sys.exit(exc.exit_code)
