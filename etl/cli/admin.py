"""Maintenance commands: ``etl db ...``, ``etl cleanup ...``, ``etl check``, ``etl config show``.

Thin like `etl.cli`: load the configuration once (`etl.cli.invocation`), call `etl.pg.admin`,
`etl.pg.cleanup` or `etl.cli.check`, print; a known error propagates to `etl.cli.common.EtlGroup`,
which turns it into one ``etl: error:`` line and its exit code.
Usage errors (bad ``--to``, ``--max-age``, a missing ``--yes``) exit 2 before any connection.
`register` adds these commands to the ``etl`` app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from etl.cli import check as checks
from etl.cli.common import epilog
from etl.cli.invocation import Invocation
from etl.cli.logs import escape_controls
from etl.cli.options import ConfigOption, DsnOption, Output, OutputFormat
from etl.cli.render import annotated_toml, json_lines, sources_text, table_lines
from etl.core.errors import (
    KAFKA_ERRORS,
    POSTGRES_ERRORS,
    ConfigError,
    PushgatewayUnavailable,
    SchemaConflict,
    SchemaMissing,
)
from etl.core.interval import parse_max_age
from etl.core.migrations import LATEST, parse_target
from etl.kafka.offsets import CLIENT_DEFAULTS
from etl.pg import admin, cleanup

YesOption = Annotated[bool, typer.Option("--yes", help="Confirm a destructive operation.")]


# The exit codes each command can return: the errors it can raise (etl.core.errors).
_DB = epilog(*POSTGRES_ERRORS, SchemaConflict)

db_app = typer.Typer(help="Create, migrate, inspect and drop the notification database schema.")
cleanup_app = typer.Typer(help="Delete rows older than --max-age, in bounded chunks.")
config_app = typer.Typer(help="Inspect the effective configuration.")


@db_app.command("init", epilog=_DB)
def db_init(config: ConfigOption = None, dsn: DsnOption = None) -> None:
    """Create the whole schema on an empty database; do nothing on an up-to-date one."""
    cfg = Invocation.load(config, dsn=dsn).config
    with admin.connect(cfg.postgres) as conn:
        steps = admin.init(conn)
    if steps:
        typer.echo(f"created schema version {LATEST} ({len(steps)} migration steps)")
    else:
        typer.echo(f"schema already at version {LATEST}; nothing to do")


@db_app.command("migrate", epilog=_DB)
def db_migrate(
    to: Annotated[
        str,
        typer.Option("--to", help=f"Target version 0..{LATEST}, or 'latest'.", metavar="N|latest"),
    ] = "latest",
    yes: YesOption = False,
    config: ConfigOption = None,
    dsn: DsnOption = None,
) -> None:
    """Migrate up or down to a version, one transaction per step (down needs --yes)."""
    target = parse_target(to)
    cfg = Invocation.load(config, dsn=dsn).config
    with admin.connect(cfg.postgres) as conn:
        current = admin.current_version(conn)
        if current is not None and target < current <= LATEST and not yes:
            raise ConfigError(f"migrating down from {current} to {target} drops data; add --yes")
        steps = admin.migrate(conn, target)
    for step in steps:
        typer.echo(f"{step.direction} to {step.to_version}: {step.migration.description}")
    typer.echo(f"schema at version {target}" + ("" if steps else "; nothing to do"))


@db_app.command("version", epilog=_DB)
def db_version(config: ConfigOption = None, dsn: DsnOption = None) -> None:
    """Print the database's schema version and the latest this etl provides."""
    cfg = Invocation.load(config, dsn=dsn).config
    with admin.connect(cfg.postgres) as conn:
        current = admin.current_version(conn)
    typer.echo(f"current: {'none' if current is None else current}")
    typer.echo(f"latest: {LATEST}")


@db_app.command("drop", epilog=_DB)
def db_drop(yes: YesOption = False, config: ConfigOption = None, dsn: DsnOption = None) -> None:
    """Drop every table etl owns, dependents first, whatever the schema version."""
    if not yes:
        raise ConfigError("drop deletes every table and its data; add --yes")
    cfg = Invocation.load(config, dsn=dsn).config
    with admin.connect(cfg.postgres) as conn:
        dropped = admin.drop(conn)
    typer.echo(f"dropped {len(dropped)} table(s): {', '.join(dropped) or 'none'}")


MaxAge = Annotated[
    str | None,
    typer.Option(
        "--max-age",
        metavar="INTERVAL",
        help=f"PostgreSQL-style interval, e.g. '7 days', '1 day 12 hours' (default: "
        f"{cleanup.DEFAULT_MAX_AGE}).",
        show_default=False,
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="List the rows that would go; delete nothing.")
]
Limit = Annotated[
    int,
    typer.Option(
        "--limit", min=0, help="Dry run: list at most this many of the oldest rows (0: all)."
    ),
]
CountOnly = Annotated[
    bool, typer.Option("--count", help="Only count the rows that would go; delete nothing.")
]
ChunkSize = Annotated[
    int, typer.Option("--chunk-size", min=1, help="Rows deleted per transaction.")
]
DEFAULT_LIMIT = 100
_CLEANUP_EPILOG = epilog(*POSTGRES_ERRORS, SchemaMissing, SchemaConflict)


@dataclass(frozen=True)
class _Request:
    """One ``etl cleanup TARGET`` invocation, as typed."""

    max_age: str | None = None
    dry_run: bool = False
    count_only: bool = False
    limit: int = DEFAULT_LIMIT
    chunk_size: int = cleanup.DEFAULT_CHUNK_SIZE
    output: OutputFormat = OutputFormat.AUTO
    path: Path | None = None
    dsn: str | None = None


def _cleanup(name: str, req: _Request) -> None:
    interval = parse_max_age(req.max_age or cleanup.DEFAULT_MAX_AGE)
    cfg = Invocation.load(req.path, dsn=req.dsn).config
    target = cleanup.TARGETS[name]
    with admin.connect(cfg.postgres) as conn:
        if req.dry_run or req.count_only:
            total = cleanup.count_old(conn, target, interval)
            what = f"{total:,} row(s) of {target.table} older than {interval}"
            if req.count_only:
                typer.echo(f"{what} would be deleted")
                return
            listed = _print_listing(
                target, cleanup.list_old(conn, target, interval, req.limit), req.output
            )
            more = f" (listed the oldest {listed:,}; --limit 0 lists all)" if listed < total else ""
            typer.echo(f"dry run: {what} would be deleted{more}", err=True)
            return
        outcome = cleanup.delete_old(conn, target, interval, req.chunk_size)
    typer.echo(
        f"deleted {outcome.rows:,} row(s) of {outcome.table} older than {interval}"
        f" (before {outcome.cutoff.isoformat(' ', timespec='seconds')})"
        f" in {outcome.chunks} chunk(s)"
    )


def _print_listing(
    target: cleanup.Target, rows: Iterator[dict[str, object]], output: OutputFormat
) -> int:
    use_table = output.as_table()
    count = 0

    def counted() -> Iterator[dict[str, object]]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    lines = (
        table_lines((*target.listing, "age_days"), counted())
        if use_table
        else json_lines(counted())
    )
    for line in lines:
        typer.echo(line)
    return count


def _cleanup_command(target: str, doc: str) -> Callable[..., None]:
    """One ``etl cleanup TARGET`` command; they differ only in the table they clean."""

    def command(
        max_age: MaxAge = None,
        dry_run: DryRun = False,
        count: CountOnly = False,
        limit: Limit = DEFAULT_LIMIT,
        chunk_size: ChunkSize = cleanup.DEFAULT_CHUNK_SIZE,
        output: Output = OutputFormat.AUTO,
        config: ConfigOption = None,
        dsn: DsnOption = None,
    ) -> None:
        _cleanup(target, _Request(max_age, dry_run, count, limit, chunk_size, output, config, dsn))

    command.__doc__ = doc
    return command


for _target, _doc in (
    ("new-reports", "Delete new_reports rows by updated_at (their read_errors rows go with them)."),
    ("read-errors", "Delete read_errors rows by updated_at."),
    ("rejections", "Delete rejected_messages rows by rejected_at."),
):
    cleanup_app.command(_target, epilog=_CLEANUP_EPILOG)(_cleanup_command(_target, _doc))


@cleanup_app.command("reported", epilog=_CLEANUP_EPILOG)
def cleanup_reported(
    max_age: MaxAge = None,
    dry_run: DryRun = False,
    count: CountOnly = False,
    limit: Limit = DEFAULT_LIMIT,
    chunk_size: ChunkSize = cleanup.DEFAULT_CHUNK_SIZE,
    output: Output = OutputFormat.AUTO,
    truncate: Annotated[
        bool, typer.Option("--truncate", help="Empty the whole table (needs --yes).")
    ] = False,
    yes: YesOption = False,
    config: ConfigOption = None,
    dsn: DsnOption = None,
) -> None:
    """Delete reported rows by updated_at, or empty the table with --truncate --yes."""
    if not truncate:
        request = _Request(max_age, dry_run, count, limit, chunk_size, output, config, dsn)
        _cleanup("reported", request)
        return
    if max_age is not None or dry_run or count:
        raise ConfigError(
            "--truncate empties the table: no --max-age, --dry-run or --count with it"
        )
    if not yes:
        raise ConfigError("--truncate deletes every row of reported; add --yes")
    cfg = Invocation.load(config, dsn=dsn).config
    with admin.connect(cfg.postgres) as conn:
        rows = cleanup.truncate_reported(conn)
    typer.echo(f"emptied reported ({rows:,} row(s))")


_CHECK_EPILOG = epilog(
    *KAFKA_ERRORS,
    *POSTGRES_ERRORS,
    SchemaConflict,
    PushgatewayUnavailable,
    ok="every dependency is fine (otherwise the first failure's code)",
)


def check(
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0.1,
            help=f"Total seconds per Kafka and Pushgateway check [default: Kafka "
            f"{checks.DEFAULT_TIMEOUT:g}, Pushgateway pushgateway.timeout_seconds].",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check Kafka (topic and partitions), PostgreSQL (schema version) and the Pushgateway."""
    inv = Invocation.load(config)
    loaded, cfg = inv.sources, inv.config
    if loaded.file is not None or loaded.clowder is not None:
        typer.echo(f"config: {escape_controls(sources_text(loaded))}")
    results = [
        checks.check_kafka(cfg.kafka, timeout or checks.DEFAULT_TIMEOUT),
        checks.check_postgres(cfg.postgres),
        checks.check_pushgateway(cfg.pushgateway, timeout or cfg.pushgateway.timeout_seconds),
    ]
    for result in results:
        typer.echo(result.line())
    code = checks.exit_code(results)
    if code:
        raise typer.Exit(code)


@config_app.command("show", epilog=epilog())
def config_show(config: ConfigOption = None) -> None:
    """Print the effective configuration as TOML, secrets masked, each value's source beside it
    (default, file, clowder, environment)."""
    loaded = Invocation.load(config).sources
    header = ["sources, later wins: default < file < clowder < environment"]
    if loaded.file is not None or loaded.clowder is not None:
        header.append(sources_text(loaded))
    sections = loaded.config.masked()
    # [kafka.client] as the consumers get it: etl's librdkafka defaults under what was set.
    sections["kafka"]["client"] = {**CLIENT_DEFAULTS, **sections["kafka"]["client"]}
    typer.echo(annotated_toml(sections, loaded.origin, header), nl=False)


def register(app: typer.Typer) -> None:
    """Add the maintenance commands to the ``etl`` app."""
    app.add_typer(db_app, name="db")
    app.add_typer(cleanup_app, name="cleanup")
    app.add_typer(config_app, name="config")
    app.command("check", epilog=_CHECK_EPILOG)(check)
