"""The loading command ``etl run``, and the options that aim it (shared with ``etl plan``).

Thin: parse and check the options (usage errors exit 2 before any connection), build the
configuration once, wire the concrete adapters, print, and map the outcome to an exit code.
`register` adds the commands to the ``etl`` app.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from etl.cli.common import ConfigOption, fail, handled, load
from etl.cli.logs import setup_logging
from etl.cli.progress import ProgressBar, summary_table
from etl.core.config import Config, PushgatewayConfig
from etl.core.errors import exit_codes_help
from etl.core.plan import Aim, aim_from_options
from etl.kafka.source import KafkaSource
from etl.kafka.tracker import NullTracker, open_tracker
from etl.metrics import RunMetrics
from etl.pg import admin, ledger
from etl.pg.sink import PostgresSink
from etl.pipeline import Run, RunSettings

UntilOffset = Annotated[
    str | None,
    typer.Option(
        "--until-offset",
        help="Stop before offset N (exclusive): N for all partitions or P:N,...",
        show_default=False,
    ),
]
FromOffset = Annotated[
    str | None,
    typer.Option(
        "--from-offset",
        help="Start at offset N: N for all partitions or P:N,...",
        show_default=False,
    ),
]
FromTime = Annotated[
    str | None,
    typer.Option(
        "--from-timestamp",
        help="Start at the first message stamped at or after this ISO 8601 "
        "time (a zone is required).",
        show_default=False,
    ),
]
UntilTime = Annotated[
    str | None,
    typer.Option(
        "--until-timestamp",
        help="Stop before the first message stamped at or after this time (half-open).",
        show_default=False,
    ),
]
FromBeginning = Annotated[
    bool, typer.Option("--from-beginning", help="Start at each partition's log start.")
]
Partitions = Annotated[
    str | None,
    typer.Option("--partitions", help="Only these partitions, e.g. 0,3,5.", show_default=False),
]
Group = Annotated[
    str | None,
    typer.Option("--group", help="Consumer group instead of kafka.group_id.", show_default=False),
]
NoCommit = Annotated[
    bool,
    typer.Option(
        "--no-commit", help="Leave every consumer group untouched (implies explicit assignment)."
    ),
]

_AIM_HELP = (
    "Positions (--from-*, --partitions), --no-commit, --dry-run and --replay-run assign the "
    "partitions explicitly instead of joining the consumer group."
)


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


def config_with(path: Path | None, group: str | None = None, dsn: str | None = None) -> Config:
    cfg = load(path)
    if group is not None:
        cfg = dataclasses.replace(cfg, kafka=dataclasses.replace(cfg.kafka, group_id=group))
    if dsn is not None:
        cfg = dataclasses.replace(cfg, postgres=dataclasses.replace(cfg.postgres, dsn=dsn))
    return cfg


def run(
    config: ConfigOption = None,
    until_offset: UntilOffset = None,
    from_offset: FromOffset = None,
    from_timestamp: FromTime = None,
    until_timestamp: UntilTime = None,
    from_beginning: FromBeginning = False,
    partitions: Partitions = None,
    group: Group = None,
    no_commit: NoCommit = False,
    dsn: Annotated[
        str | None,
        typer.Option(
            "--dsn",
            help="Target database instead of postgres.dsn (e.g. staging).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Read, validate and insert inside rolled-back transactions; commit "
            "no offset; report what would happen.",
        ),
    ] = False,
    replay_run: Annotated[
        int | None,
        typer.Option(
            "--replay-run",
            help="Re-read exactly the offset ranges of this past run (from the "
            "runs table of postgres.dsn), without touching any group; use with --dsn.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Load every message up to the end offsets seen at start, then push metrics and exit."""
    with handled():
        cfg = config_with(config, group, None)
        replay = _replay_ranges(cfg, replay_run) if replay_run is not None else None
        if dsn is not None:
            cfg = config_with(config, group, dsn)
        aim = aim_from_options(
            until_offset=until_offset,
            from_offset=from_offset,
            from_timestamp=from_timestamp,
            until_timestamp=until_timestamp,
            from_beginning=from_beginning,
            partitions=partitions,
            no_commit=no_commit,
            dry_run=dry_run,
            replay=replay,
        )
        tracker = NullTracker() if dry_run else open_tracker(cfg.kafka, cfg.tracker)
    setup_logging(cfg.log.level, cfg.log.format)
    stop = StopFlag()
    stop.install()
    options = {
        k: v
        for k, v in {
            "until_offset": until_offset,
            "from_offset": from_offset,
            "from_timestamp": from_timestamp,
            "until_timestamp": until_timestamp,
            "from_beginning": from_beginning or None,
            "partitions": partitions,
            "no_commit": no_commit or None,
            "replay_run": replay_run,
        }.items()
        if v is not None
    }
    settings = RunSettings(
        topic=cfg.kafka.topic,
        max_messages=cfg.batch.max_messages,
        max_bytes=cfg.batch.max_bytes,
        clock_skew=timedelta(seconds=cfg.validation.clock_skew_seconds),
        group_id=cfg.kafka.group_id,
        options=options,
        dry_run=dry_run,
    )
    tty = sys.stderr.isatty()
    bar = ProgressBar(sys.stderr, cfg.kafka.topic) if tty else None
    metrics = RunMetrics(_pushgateway_for(cfg.pushgateway, aim))
    summary = Run(
        settings,
        source=KafkaSource(cfg.kafka, aim, stop_requested=stop),
        sink=PostgresSink(cfg.postgres, dry_run=dry_run),
        metrics=metrics,
        stop_requested=stop,
        tracker=tracker,
        on_batch=bar,
    ).execute()
    if bar is not None:
        bar.close()
    if tty or dry_run:
        typer.echo(
            summary_table(
                summary.status,
                summary.exit_code,
                summary.duration_seconds,
                metrics,
                summary.partitions,
                dry_run=dry_run,
            ),
            err=not dry_run,
        )
    if summary.exit_code:
        fail(summary.error or summary.status, summary.exit_code)


def _pushgateway_for(pgw: PushgatewayConfig, aim: Aim) -> PushgatewayConfig:
    """Where this run's metrics go, so a trial or a backfill never poses as the scheduled job.

    A dry run pushes nothing. An explicitly assigned run (backfill, replay) pushes under an
    extra grouping label ``mode``, beside the scheduled job's series instead of over them.
    """
    if aim.dry_run:
        return dataclasses.replace(pgw, url="")
    if aim.explicit:
        mode = "replay" if aim.replay is not None else "backfill"
        return dataclasses.replace(pgw, grouping_key={**pgw.grouping_key, "mode": mode})
    return pgw


def _replay_ranges(cfg: Config, run_id: int) -> dict[int, tuple[int, int]]:
    with admin.connect(cfg.postgres) as conn:
        return ledger.replay_ranges(ledger.load(conn, run_id), cfg.kafka.topic)


def register(app: typer.Typer) -> None:
    epilog = "Exit codes:\n\n" + exit_codes_help().replace("\n", "\n\n") + "\n\n" + _AIM_HELP
    app.command("run", epilog=epilog)(run)
