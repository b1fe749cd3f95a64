"""What every ``etl`` command shares: the ``--config`` option, loading the configuration,
known errors turned into one ``etl: error:`` line with their exit code, and exit-code epilogs.

The command modules (`etl.cli_run`, `etl.cli_admin`) import this; it imports no adapter.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from etl.cli.logs import escape_controls
from etl.core.config import Config, load_config
from etl.core.errors import EtlError

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML configuration file (default: $ETL_CONFIG).", show_default=False
    ),
]


def load(path: Path | None) -> Config:
    """The configuration from the file (or $ETL_CONFIG) and the environment; ConfigError if bad."""
    return load_config(path, os.environ)


def fail(message: str, code: int) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    typer.echo(f"etl: error: {escape_controls(message)}", err=True)
    raise typer.Exit(code)


@contextmanager
def handled() -> Iterator[None]:
    """Known errors become one line on stderr and their exit code."""
    try:
        yield
    except EtlError as exc:
        fail(str(exc), exc.exit_code)


def epilog(*codes: str, ok: str = "success") -> str:
    """The ``--help`` epilog listing a command's exit codes, in numeric order."""
    lines = sorted((f"0: {ok}", "2: usage error", *codes), key=lambda line: int(line.split(":")[0]))
    return "Exit codes:\n\n" + "\n\n".join(lines)
