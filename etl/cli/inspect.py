"""Commands that look without loading: ``etl plan`` (where a run would start and stop) and
``etl runs`` (the runs table). Neither reads a message nor writes anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from etl.cli.common import epilog
from etl.cli.invocation import Invocation
from etl.cli.options import (
    AimOptions,
    ConfigOption,
    DsnOption,
    FromBeginning,
    FromOffset,
    FromTime,
    Group,
    Output,
    OutputFormat,
    Partitions,
    UntilOffset,
    UntilTime,
)
from etl.cli.render import duration_text, json_lines, table_lines
from etl.core.aim import parse_timestamp
from etl.core.config import Config
from etl.core.errors import KAFKA_ERRORS, POSTGRES_ERRORS, ConfigError, EtlError, SchemaMissing
from etl.core.interval import parse_max_age
from etl.core.positions import StoredPositions
from etl.kafka import offsets
from etl.pg import admin, ledger, progress


def plan(
    config: ConfigOption = None,
    until_offset: UntilOffset = None,
    from_offset: FromOffset = None,
    from_timestamp: FromTime = None,
    until_timestamp: UntilTime = None,
    from_beginning: FromBeginning = False,
    partitions: Partitions = None,
    group: Group = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Show per partition where `etl run` with these options would start and stop; reads nothing."""
    cfg = Invocation.load(config, group=group).config
    aim = AimOptions(
        until_offset, from_offset, from_timestamp, until_timestamp, from_beginning, partitions
    ).aim()
    stored = _stored_positions(cfg)
    consumer = offsets.open_consumer(cfg.kafka)
    try:
        existing = offsets.topic_partitions(consumer, cfg.kafka)
        offsets.check_named_partitions(aim, existing, cfg.kafka.topic)
        planned = offsets.plan(consumer, cfg.kafka, aim.partitions or existing, aim, stored)
    finally:
        consumer.close()
    rows: list[dict[str, Any]] = [
        {
            "partition": i.progress.partition,
            "start": i.progress.start,
            "stop": i.progress.stop,
            "messages": i.messages,
            "committed": i.committed,
            "database": i.stored,
            "drift": i.progress.drift,
            "lag": i.lag,
            "note": i.note,
        }
        for i in planned
    ]
    totals = {
        "partition": "total",
        "messages": sum(r["messages"] for r in rows),
        "lag": sum(r["lag"] for r in rows),
    }
    columns = [
        "partition",
        "start",
        "stop",
        "messages",
        "committed",
        "database",
        "drift",
        "lag",
        "note",
    ]
    lines = (
        table_lines(columns, [*rows, totals]) if output.as_table() else json_lines([*rows, totals])
    )
    for line in lines:
        typer.echo(line)


def runs_list(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs.")] = 20,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help=f"Only runs with this status ({', '.join(ledger.STATUSES)}).",
            show_default=False,
            metavar="STATUS",
        ),
    ] = None,
    topic: Annotated[
        str | None,
        typer.Option(
            "--topic", help="Only runs of this topic.", show_default=False, metavar="TOPIC"
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            "--group", help="Only runs of this consumer group.", show_default=False, metavar="GROUP"
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only runs started since this ISO 8601 time (with a zone) or within this "
            "age, e.g. '2 days', '6 hours'.",
            show_default=False,
            metavar="TIME|AGE",
        ),
    ] = None,
    output: Output = OutputFormat.TABLE,
    dsn: DsnOption = None,
) -> None:
    """List recent runs from the runs table, newest first."""
    where = ledger.RunFilter(status, topic, group, _since(since) if since else None)
    if status is not None and status not in ledger.STATUSES:
        raise ConfigError(f"--status: expected one of {', '.join(ledger.STATUSES)}")
    cfg = Invocation.load(config, dsn=dsn).config
    with admin.connect(cfg.postgres) as conn:
        records = ledger.recent(conn, limit, where)
    if not output.as_table():
        for line in json_lines(_run_row(r, for_json=True) for r in records):
            typer.echo(line)
        return
    for line in table_lines(_RUN_COLUMNS, [_run_row(r, for_json=False) for r in records]):
        typer.echo(line)


def _stored_positions(cfg: Config) -> StoredPositions | None:
    """What the database vouches for (`etl.core.positions`), or None, said on stderr, when it
    cannot tell: the plan then starts from the group's offsets, as a run could not."""
    try:
        with admin.connect(cfg.postgres) as conn, conn.transaction():
            return progress.read_positions(conn, cfg.kafka.topic, cfg.kafka.group_id)
    except EtlError as exc:
        typer.echo(f"etl: the database's positions are unknown: {exc}", err=True)
        return None


_RUN_COLUMNS = (
    "id",
    "started_at",
    "ended_at",
    "duration",
    "status",
    "exit",
    "topic",
    "group",
    "consumed",
    "inserted",
    "duplicates",
    "rejected",
    "ranges",
    "rewound",
    "error",
)


def _run_row(r: ledger.RunRecord, *, for_json: bool) -> dict[str, Any]:
    seconds = (r.ended_at - r.started_at).total_seconds() if r.ended_at else None
    ranges = " ".join(f"{p}:[{s},{reached})" for p, (s, _, reached) in sorted(r.partitions.items()))
    if for_json:
        return {
            "id": r.id,
            "started_at": r.started_at,
            "ended_at": r.ended_at,
            "duration_seconds": seconds,
            "status": r.status,
            "exit_code": r.exit_code,
            "topic": r.topic,
            "group_id": r.group_id,
            **r.counts,
            "ranges": ranges,
            "rewound": {str(p): n for p, n in sorted(r.rewound.items())},
            "error": r.error,
        }
    return {
        "id": r.id,
        "started_at": r.started_at.astimezone(),
        "ended_at": r.ended_at.astimezone() if r.ended_at else None,
        "duration": duration_text(seconds) if seconds is not None else None,
        "status": r.status,
        "exit": r.exit_code,
        "topic": r.topic,
        "group": r.group_id,
        **{k: v for k, v in r.counts.items() if k != "bytes_consumed"},
        "ranges": ranges,
        "rewound": sum(r.rewound.values()) or None,
        "error": _clip(r.error, 60),
    }


def _since(text: str) -> datetime | str:
    """``--since``: a moment with a zone, or an age such as '2 days' (validated here)."""
    if text.strip()[:1].isdigit() and ("-" in text or "T" in text or ":" in text):
        return parse_timestamp("--since", text)
    try:
        return parse_max_age(text)
    except ConfigError:
        raise ConfigError(
            f"--since: expected an ISO 8601 time with a zone or an age like '2 days', got {text!r}"
        ) from None


def _clip(text: str | None, width: int) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 3] + "..."


def register(app: typer.Typer) -> None:
    app.command("plan", epilog=epilog(*KAFKA_ERRORS))(plan)
    app.command("runs", epilog=epilog(*POSTGRES_ERRORS, SchemaMissing))(runs_list)
