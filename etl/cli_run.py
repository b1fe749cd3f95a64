"""The loading commands: ``etl run``, ``etl plan`` and ``etl runs``.

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
from typing import Annotated, Any, NoReturn

import psycopg
import typer

from etl import offsets, runs
from etl.aim import Aim, check_combination, parse_offsets, parse_partitions, parse_timestamp
from etl.config import Config, load_config
from etl.errors import ConfigError, EtlError, PostgresUnavailable, exit_codes_help
from etl.logs import setup_logging
from etl.metrics import RunMetrics
from etl.progress import ProgressBar, summary_table
from etl.render import json_lines, table_lines
from etl.run import Run, RunSettings
from etl.sink import PostgresSink
from etl.source import KafkaSource
from etl.tracker import NullTracker, open_tracker

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML configuration file (default: $ETL_CONFIG).", show_default=False
    ),
]
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


def fail(message: str, code: int) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    typer.echo(f"etl: error: {message}", err=True)
    raise typer.Exit(code)


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


def _config(path: Path | None, group: str | None = None, dsn: str | None = None) -> Config:
    cfg = load_config(path, os.environ)
    if group is not None:
        cfg = dataclasses.replace(cfg, kafka=dataclasses.replace(cfg.kafka, group_id=group))
    if dsn is not None:
        cfg = dataclasses.replace(cfg, postgres=dataclasses.replace(cfg.postgres, dsn=dsn))
    return cfg


def _aim(
    *,
    until_offset: str | None,
    from_offset: str | None,
    from_timestamp: str | None,
    until_timestamp: str | None,
    from_beginning: bool,
    partitions: str | None,
    no_commit: bool = False,
    dry_run: bool = False,
    replay: dict[int, tuple[int, int]] | None = None,
) -> Aim:
    aim = Aim(
        partitions=parse_partitions(partitions) if partitions is not None else None,
        from_offset=parse_offsets("--from-offset", from_offset) if from_offset else None,
        until_offset=parse_offsets("--until-offset", until_offset) if until_offset else None,
        from_timestamp=parse_timestamp("--from-timestamp", from_timestamp)
        if from_timestamp
        else None,
        until_timestamp=parse_timestamp("--until-timestamp", until_timestamp)
        if until_timestamp
        else None,
        from_beginning=from_beginning,
        commit=not no_commit and replay is None,
        dry_run=dry_run,
        replay=replay,
    )
    check_combination(aim)
    return aim


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
    try:
        cfg = _config(config, group, None)
        replay = _replay_ranges(cfg, replay_run) if replay_run is not None else None
        if dsn is not None:
            cfg = _config(config, group, dsn)
        aim = _aim(
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
    except EtlError as exc:
        fail(str(exc), exc.exit_code)
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
    metrics = RunMetrics(cfg.pushgateway)
    summary = Run(
        settings,
        source=KafkaSource(cfg.kafka, aim),
        sink=PostgresSink(cfg.postgres, dry_run=dry_run),
        metrics=metrics,
        stop_requested=stop,
        tracker=NullTracker() if dry_run else open_tracker(cfg.kafka, cfg.tracker),
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


def plan(
    config: ConfigOption = None,
    until_offset: UntilOffset = None,
    from_offset: FromOffset = None,
    from_timestamp: FromTime = None,
    until_timestamp: UntilTime = None,
    from_beginning: FromBeginning = False,
    partitions: Partitions = None,
    group: Group = None,
    output: Annotated[str, typer.Option("--output", help="table or json")] = "table",
) -> None:
    """Show per partition where `etl run` with these options would start and stop; reads nothing."""
    try:
        cfg = _config(config, group)
        aim = _aim(
            until_offset=until_offset,
            from_offset=from_offset,
            from_timestamp=from_timestamp,
            until_timestamp=until_timestamp,
            from_beginning=from_beginning,
            partitions=partitions,
        )
        if output not in ("table", "json"):
            raise ConfigError("--output: must be table or json")
        consumer = offsets.open_consumer(cfg.kafka)
        try:
            existing = offsets.topic_partitions(consumer, cfg.kafka)
            offsets.check_named_partitions(aim, existing, cfg.kafka.topic)
            planned = offsets.plan(consumer, cfg.kafka, aim.partitions or existing, aim)
        finally:
            consumer.close()
    except EtlError as exc:
        fail(str(exc), exc.exit_code)
    rows: list[dict[str, Any]] = [
        {
            "partition": i.progress.partition,
            "start": i.progress.start,
            "stop": i.progress.stop,
            "messages": i.progress.stop - i.progress.start,
            "committed": i.marks.committed if i.marks.committed >= 0 else None,
            "lag": i.marks.high - max(i.marks.committed, i.marks.low),
            "note": i.note,
        }
        for i in planned
    ]
    totals = {
        "partition": "total",
        "messages": sum(r["messages"] for r in rows),
        "lag": sum(r["lag"] for r in rows),
    }
    columns = ["partition", "start", "stop", "messages", "committed", "lag", "note"]
    lines = (
        json_lines([*rows, totals]) if output == "json" else table_lines(columns, [*rows, totals])
    )
    for line in lines:
        typer.echo(line)


def runs_list(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs.")] = 20,
    output: Annotated[str, typer.Option("--output", help="table or json")] = "table",
) -> None:
    """List recent runs from the runs table, newest first."""
    try:
        cfg = _config(config)
        if output not in ("table", "json"):
            raise ConfigError("--output: must be table or json")
        with _connect(cfg) as conn:
            records = runs.recent(conn, limit)
    except EtlError as exc:
        fail(str(exc), exc.exit_code)
    rows = [
        {
            "id": r.id,
            "started_at": r.started_at,
            "status": r.status,
            "exit_code": r.exit_code,
            "group_id": r.group_id,
            **r.counts,
            "ranges": " ".join(
                f"{p}:[{s},{reached})" for p, (s, _, reached) in sorted(r.partitions.items())
            ),
        }
        for r in records
    ]
    columns = [
        "id",
        "started_at",
        "status",
        "exit_code",
        "group_id",
        "consumed",
        "inserted",
        "duplicates",
        "rejected",
        "ranges",
    ]
    for line in json_lines(rows) if output == "json" else table_lines(columns, rows):
        typer.echo(line)


def _connect(cfg: Config) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(
            cfg.postgres.dsn, connect_timeout=cfg.postgres.connect_timeout_seconds
        )
    except psycopg.OperationalError as exc:
        raise PostgresUnavailable(f"PostgreSQL unavailable: {' '.join(str(exc).split())}") from exc


def _replay_ranges(cfg: Config, run_id: int) -> dict[int, tuple[int, int]]:
    with _connect(cfg) as conn:
        record = runs.load(conn, run_id)
    if record.topic != cfg.kafka.topic:
        raise ConfigError(
            f"--replay-run: run {run_id} read topic {record.topic!r}, not {cfg.kafka.topic!r}"
        )
    return runs.replay_ranges(record)


def register(app: typer.Typer) -> None:
    epilog = "Exit codes:\n\n" + exit_codes_help().replace("\n", "\n\n") + "\n\n" + _AIM_HELP
    app.command("run", epilog=epilog)(run)
    app.command("plan", epilog="Exit codes: 0 ok, 2 usage error, 3 Kafka unavailable")(plan)
    app.command(
        "runs", epilog="Exit codes: 0 ok, 2 usage error, 4 PostgreSQL unavailable, 5 schema missing"
    )(runs_list)
