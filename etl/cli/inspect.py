"""Commands that look without loading: ``etl plan`` (where a run would start and stop) and
``etl runs`` (the runs table). Neither reads a message nor writes anything.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from etl.cli.common import ConfigOption, epilog, handled
from etl.cli.render import json_lines, table_lines
from etl.cli.run import (
    FromBeginning,
    FromOffset,
    FromTime,
    Group,
    Partitions,
    UntilOffset,
    UntilTime,
    config_with,
)
from etl.core.errors import ConfigError
from etl.core.plan import aim_from_options
from etl.kafka import offsets
from etl.pg import admin, ledger

Output = Annotated[str, typer.Option("--output", help="table or json")]


def plan(
    config: ConfigOption = None,
    until_offset: UntilOffset = None,
    from_offset: FromOffset = None,
    from_timestamp: FromTime = None,
    until_timestamp: UntilTime = None,
    from_beginning: FromBeginning = False,
    partitions: Partitions = None,
    group: Group = None,
    output: Output = "table",
) -> None:
    """Show per partition where `etl run` with these options would start and stop; reads nothing."""
    with handled():
        cfg = config_with(config, group)
        aim = aim_from_options(
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
    output: Output = "table",
) -> None:
    """List recent runs from the runs table, newest first."""
    with handled():
        cfg = config_with(config)
        if output not in ("table", "json"):
            raise ConfigError("--output: must be table or json")
        with admin.connect(cfg.postgres) as conn:
            records = ledger.recent(conn, limit)
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


def register(app: typer.Typer) -> None:
    app.command("plan", epilog=epilog("3: Kafka unavailable"))(plan)
    app.command("runs", epilog=epilog("4: PostgreSQL unavailable", "5: schema missing"))(runs_list)
