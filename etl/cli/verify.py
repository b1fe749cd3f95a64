"""``etl verify``: audit the database against the topic, and with ``--repair`` store what it lacks.

Thin: parse the aim options (usage errors exit 2 before any connection), read what the database
holds of each partition (``etl_progress``) and the broker's watermarks, plan the ranges
(`etl.core.verify.plan_range`), wire an explicitly assigned `KafkaSource` that never commits,
the checker (`etl.pg.verify`) and, for ``--repair``, the run's `PostgresSink`; then print the
tally and exit 0 when the database matches, `DatabaseMismatch` (10) when it does not.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated, Any, Final

import typer

from etl.cli.common import epilog, fail
from etl.cli.invocation import Invocation
from etl.cli.options import (
    AimOptions,
    ConfigOption,
    DsnOption,
    FromOffset,
    FromTime,
    Group,
    Output,
    OutputFormat,
    Partitions,
    UntilOffset,
    UntilTime,
)
from etl.cli.render import json_lines, table_lines
from etl.cli.run import StopFlag
from etl.core import events
from etl.core.aim import Aim
from etl.core.config import Config
from etl.core.errors import (
    KAFKA_ERRORS,
    POSTGRES_ERRORS,
    DatabaseMismatch,
    Interrupted,
    SchemaMissing,
)
from etl.core.verify import KINDS, NAMED, Span, Tally, coverage, plan_range
from etl.kafka import offsets
from etl.kafka.source import KafkaSource
from etl.pg import admin, progress
from etl.pg.sink import PostgresSink
from etl.pg.verify import PgChecker
from etl.pipeline.verify import Verification, VerifySettings

log = events.logger("etl.cli")

TABLE_LISTED: Final = 20  # offsets listed per kind and partition in the table; JSON lists all
_COLUMNS: Final = ("partition", "start", "stop", "database", "messages", *KINDS)

Repair = Annotated[
    bool,
    typer.Option(
        "--repair",
        help="Store the missing rows and rejections as etl run would (one transaction per"
        " batch, ON CONFLICT DO NOTHING); never overwrites a row that differs, never moves"
        " the group's offsets nor the database's position.",
    ),
]


def verify(
    config: ConfigOption = None,
    until_offset: UntilOffset = None,
    from_offset: FromOffset = None,
    from_timestamp: FromTime = None,
    until_timestamp: UntilTime = None,
    partitions: Partitions = None,
    group: Group = None,
    dsn: DsnOption = None,
    repair: Repair = False,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Check every message Kafka holds, up to the database's position, against the database."""
    stop = StopFlag()
    cfg = Invocation.load(config, dsn=dsn, group=group).config
    aim = AimOptions(
        until_offset, from_offset, from_timestamp, until_timestamp, partitions=partitions
    ).aim(no_commit=True)
    stop.install()
    started = time.monotonic()
    tally = Tally(_spans(cfg, aim))
    checker = PgChecker(cfg.postgres, cfg.kafka.topic)
    sink = PostgresSink(cfg.postgres, stop_requested=stop) if repair else None
    try:
        if sink is not None:
            sink.check_schema()
        check = Verification(
            VerifySettings(
                cfg.kafka.topic,
                cfg.batch.max_messages,
                cfg.batch.max_bytes,
                timedelta(seconds=cfg.validation.clock_skew_seconds),
            ),
            source=KafkaSource(cfg.kafka, _replay_of(tally), stop_requested=stop),
            checker=checker,
            tally=tally,
            sink=sink,
            stop_requested=stop,
        )
        check.execute()
    finally:
        checker.close()
        if sink is not None:
            sink.close()
    totals = {k: tally.total(k) for k in KINDS}
    log.info(
        "verify_finished",
        topic=cfg.kafka.topic,
        seconds=round(time.monotonic() - started, 3),
        batches=check.batches,
        repaired=sum(p.repaired for p in tally.partitions.values()),
        **totals,
    )
    lines = _table(tally, repair) if output.as_table() else _json(tally, repair)
    for line in lines:
        typer.echo(line)
    unresolved = tally.unresolved()
    if unresolved:
        fail(_mismatch(cfg.kafka.topic, totals, repair), DatabaseMismatch.exit_code)


def _spans(cfg: Config, aim: Aim) -> list[Span]:
    """Each partition's range: what the database holds, narrowed by the options."""
    with admin.connect(cfg.postgres) as conn:
        ranges = progress.stored_ranges(conn, cfg.kafka.topic, cfg.kafka.group_id)
    consumer = offsets.open_consumer(cfg.kafka)
    try:
        existing = offsets.topic_partitions(consumer, cfg.kafka)
        offsets.check_named_partitions(aim, existing, cfg.kafka.topic)
        marks = offsets.watermarks(consumer, cfg.kafka, aim.partitions or existing, aim)
    finally:
        consumer.close()
    return [
        plan_range(p, m, aim, coverage(ranges.get(p, ())), recorded=bool(ranges))
        for p, m in sorted(marks.items())
    ]


def _replay_of(tally: Tally) -> Aim:
    """An explicit assignment of exactly the planned ranges: no group join, no commit."""
    spans = [p.span for p in tally.partitions.values() if p.span.stop > p.span.start]
    return Aim(replay={s.partition: (s.start, s.stop) for s in spans}, commit=False)


def _row(tally: Tally, partition: int, repair: bool) -> dict[str, Any]:
    part = tally.partitions[partition]
    span = part.span
    row: dict[str, Any] = {
        "partition": partition,
        "start": span.start,
        "stop": span.stop,
        "database": span.database,
        "messages": part.messages,
        **part.counts,
    }
    if repair:
        row["repaired"] = part.repaired
    row["note"] = span.note
    return row


def _json(tally: Tally, repair: bool) -> list[str]:
    rows = []
    for p in sorted(tally.partitions):
        row = _row(tally, p, repair)
        row.update({f"{kind}_offsets": tally.partitions[p].offsets[kind] for kind in NAMED})
        rows.append(row)
    totals = {"partition": "total", "messages": sum(r["messages"] for r in rows)}
    totals.update({k: tally.total(k) for k in KINDS})
    if repair:
        totals["repaired"] = sum(r["repaired"] for r in rows)
    return list(json_lines([*rows, totals]))


def _table(tally: Tally, repair: bool) -> list[str]:
    rows = [_row(tally, p, repair) for p in sorted(tally.partitions)]
    totals: dict[str, Any] = {"partition": "total", "messages": sum(r["messages"] for r in rows)}
    totals.update({k: tally.total(k) for k in KINDS})
    columns = [*_COLUMNS, *(["repaired"] if repair else []), "note"]
    if repair:
        totals["repaired"] = sum(r["repaired"] for r in rows)
    lines = list(table_lines(columns, [*rows, totals]))
    for kind in NAMED:
        for p in sorted(tally.partitions):
            found = tally.partitions[p].offsets[kind]
            if not found:
                continue
            listed = " ".join(f"{p}:{o}" for o in sorted(found)[:TABLE_LISTED])
            more = f" (and {len(found) - TABLE_LISTED} more)" if len(found) > TABLE_LISTED else ""
            lines.append(f"{kind}: {listed}{more}")
    return lines


def _mismatch(topic: str, totals: dict[str, int], repair: bool) -> str:
    if repair:
        return (
            f"{totals['different']} row(s) differ from what topic {topic!r} holds and were left"
            " as they are (each named above as partition:offset)"
        )
    return (
        f"the database does not match topic {topic!r}: {totals['missing']} missing,"
        f" {totals['different']} different (each named above as partition:offset)"
    )


def register(app: typer.Typer) -> None:
    app.command(
        "verify",
        epilog=epilog(
            *KAFKA_ERRORS,
            *POSTGRES_ERRORS,
            SchemaMissing,
            Interrupted,
            DatabaseMismatch,
            ok="the database holds every message checked (after --repair: holds them now)",
        ),
    )(verify)
