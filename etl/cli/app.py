"""The ``etl`` command: the typer app, its commands, and known errors mapped to exit codes.

The commands live in `etl.cli.run` (run), `etl.cli.inspect` (plan, runs), `etl.cli.verify`
(verify) and `etl.cli.admin` (db, cleanup, check, config); the CLI modules are the only ones
that know the concrete adapters. Nothing imports them.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Annotated, NoReturn

import typer

from etl.cli.admin import register as register_admin_commands
from etl.cli.common import EtlGroup
from etl.cli.inspect import register as register_inspect_commands
from etl.cli.run import register as register_run_commands
from etl.cli.verify import register as register_verify_command

app = typer.Typer(
    name="etl",
    cls=EtlGroup,
    help="Drain a Kafka topic of cluster-analysis reports into PostgreSQL new_reports.",
    invoke_without_command=True,  # no command: the help (see _main)
    add_completion=False,
    pretty_exceptions_enable=False,
)
register_run_commands(app)
register_inspect_commands(app)
register_admin_commands(app)
register_verify_command(app)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # noqa: PLC0415 - 35 ms, for --version only

        typer.echo(f"etl {version('etl')}")
        raise typer.Exit(0)


@app.callback()
def _main(
    ctx: typer.Context,
    _version_flag: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Batch loader for new_reports. Every command reads the same configuration."""
    # Plain ``etl`` prints the help and exits 0. typer's ``no_args_is_help`` would raise an
    # error class that only its private copy of click defines, for `EtlGroup` to recognise.
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def main() -> None:
    """The command (`etl.__main__` loads it): every error becomes one line and its exit code.

    Once the command has returned its exit code, the process ends without tearing the
    interpreter down: every ``atexit`` function runs (the logging handlers' flush, temporary
    files), the standard streams are flushed, and then it exits at once. The teardown did
    nothing a finished run needs, and its garbage collections of every module cost about 5% of
    the CPU of a run of 100 KB reports. A bug's exception still propagates as usual.
    """
    try:
        app()
    except SystemExit as exc:
        if not isinstance(exc.code, int):
            raise
        _exit(exc.code)


def _exit(code: int) -> NoReturn:
    atexit._run_exitfuncs()  # what the interpreter's own exit would run first
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: as Python itself reports it
            code = code or 120
    os._exit(code)
