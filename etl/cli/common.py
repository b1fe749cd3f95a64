"""What every ``etl`` command shares: the ``--config`` option, loading the configuration (and
setting up logging from it), known errors turned into one ``etl: error:`` line with their exit
code, plain flags in help, and exit-code epilogs.

`EtlGroup` is the class of the ``etl`` app's command group. It runs every command with
typer's own error display turned off, so that whatever the command line parser refuses (an
unknown option, a value out of range, a value given to a flag) ends like every other error: one
``etl: error: ...`` line on stderr and exit 2, followed by the same failure as a JSON event when
the logs are JSON lines.

The command modules (`etl.cli.run`, `etl.cli.admin`, `etl.cli.inspect`) import this; it imports
no adapter.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from etl.cli import logs, sentry
from etl.cli.logs import escape_controls
from etl.core import events
from etl.core.config import Config
from etl.core.config_sources import Loaded, load_sources
from etl.core.errors import EXIT_BUG, EXIT_CODES, EXIT_OK, ConfigError, EtlError, exit_codes_help


class OutputFormat(StrEnum):
    """How a listing is printed: aligned table, JSON lines, or a table only on a terminal."""

    AUTO = "auto"
    TABLE = "table"
    JSON = "json"

    def as_table(self) -> bool:
        return self is OutputFormat.TABLE or (self is OutputFormat.AUTO and sys.stdout.isatty())


Output = Annotated[
    OutputFormat,
    typer.Option(
        "--output",
        help="table, json (one object per line), or auto: a table on a terminal, else json.",
        metavar="auto|table|json",
    ),
]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML configuration file (default: $ETL_CONFIG).",
        show_default=False,
        metavar="PATH",
    ),
]
DsnOption = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        help="Target database instead of postgres.dsn (e.g. staging).",
        show_default=False,
        metavar="DSN",
    ),
]
EXIT_USAGE = ConfigError.exit_code
_log = events.logger("etl.cli")
_BOOL_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0", "y", "n"})


def load(path: Path | None, dsn: str | None = None) -> Config:
    """The configuration from the file (or $ETL_CONFIG), Clowder ($ACG_CONFIG) and the
    environment; ConfigError if bad.

    ``dsn`` (a command's ``--dsn``) replaces ``postgres.dsn``. Logging is set up from the
    result, so librdkafka and every event of any command follow ``log.level``/``log.format``;
    then what the sources found worth a warning (a topic Clowder does not list) is logged.
    """
    return load_traced(path, dsn).config


def load_traced(path: Path | None, dsn: str | None = None) -> Loaded:
    """Like `load`, with where each value came from (``--dsn`` counts as the command line)."""
    environ = dict(os.environ)
    if dsn is not None:
        environ["ETL_POSTGRES__DSN"] = dsn
    loaded = load_sources(path, environ)
    if dsn is not None:
        origins = {**loaded.origins, "postgres.dsn": "command line (--dsn)"}
        loaded = dataclasses.replace(loaded, origins=origins)
    logs.setup_logging(loaded.config.log.level, loaded.config.log.format)
    for event, fields in loaded.notices:
        _log.warning(event, **fields)
    return loaded


def report(message: str, code: int) -> None:
    """The failure on stderr: one ``etl: error:`` line, then a JSON event if logs are JSON.

    Sentry (when ``etl run`` set it up) is told the same text, for the report at exit.
    """
    sentry.failed(message)
    logs.flush_repeats()
    typer.echo(f"etl: error: {escape_controls(message)}", err=True)
    logs.log_failure(message, code)


def fail(message: str, code: int) -> NoReturn:
    """Report the failure and exit with ``code``."""
    report(message, code)
    raise typer.Exit(code)


@contextmanager
def handled() -> Iterator[None]:
    """Known errors become one line on stderr and their exit code."""
    try:
        yield
    except EtlError as exc:
        fail(str(exc), exc.exit_code)


def epilog(*errors: type[EtlError], ok: str = EXIT_CODES[EXIT_OK]) -> str:
    """The ``--help`` epilog listing the exit codes of a command that can raise ``errors``."""
    return "Exit codes:\n\n" + exit_codes_help(*errors, ok=ok).replace("\n", "\n\n")


class EtlGroup(TyperGroup):
    """The ``etl`` group: one-line usage errors, plain flags in help (see the module doc).

    Every way out passes `etl.cli.sentry.finish` with the exit code (and the exception of a
    bug, which Python then prints as usual): the one place Sentry hears how a run ended.
    """

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> NoReturn:
        logs.reset()
        code, bug = EXIT_BUG, None
        try:
            code = self._run(list(sys.argv[1:] if args is None else args), prog_name, **extra)
        except BaseException as exc:
            bug = exc
            raise
        finally:
            sentry.finish(code, bug)
            logs.flush_repeats()
            logs.reset()  # in-process callers (tests) get the logging they had
        sys.exit(code)

    def _run(self, argv: list[str], prog_name: str | None, **extra: Any) -> int:
        _plain_flags(self, typer.Context(self))
        try:
            code = super().main(argv, prog_name or "etl", standalone_mode=False, **extra)
        except typer.TyperException as exc:  # what the parser refused, typer's own errors
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
                typer.echo(ctx.get_help())
                return 0
            code = exc.exit_code if exc.exit_code != 1 else EXIT_USAGE
            report(_usage_text(exc, argv), code)
            return int(code)
        except EtlError as exc:
            report(str(exc), exc.exit_code)
            return exc.exit_code
        except typer.Abort:
            report("aborted", 1)
            return 1
        return code if isinstance(code, int) else 0


def _usage_text(exc: typer.TyperException, argv: list[str]) -> str:
    """typer's message on one line, prefixed by the command, with a hint for a flag's value."""
    text = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    where = ""
    if ctx is not None:
        where = ctx.command_path.removeprefix(ctx.find_root().info_name or "").strip()
        text = _missing_subcommand(ctx, where, argv, getattr(exc, "option_name", None)) or text
        flags = {
            opt
            for param in ctx.command.params
            if getattr(param, "is_flag", False)
            for opt in param.opts
        }
        for before, word in pairwise(argv):
            if before in flags and word.lower() in _BOOL_WORDS and f"({word})" in text:
                text = f"{before} is a flag and takes no value: give {before} alone or leave it out"
                break
    return f"{where}: {text}" if where else text


def _missing_subcommand(ctx: Any, where: str, argv: list[str], option: str | None) -> str | None:
    """For a group given no subcommand (``etl cleanup``, ``etl cleanup --dry-run``): say so and
    list them, rather than typer's "Missing command." or "No such option: --dry-run" for an
    option that belongs to the subcommands. None when a subcommand was named, or for an option
    no subcommand has (typer's message stands)."""
    names = {
        name: command
        for name, command in getattr(ctx.command, "commands", {}).items()
        if not command.hidden
    }
    if option is not None:  # what came before it: the words after it may be its value
        at = (i for i, word in enumerate(argv) if word.split("=")[0] == option)
        argv = argv[: next(at, len(argv))]
    # A group takes no option with a value, so its words are the commands named so far.
    if not names or [w for w in argv if not w.startswith("-")] != where.split():
        return None
    if option is not None and not any(_has_option(c, option) for c in names.values()):
        return None
    what = "subcommand" if where else "command"
    before = f" before {option}" if option else ""
    return f"missing {what}{before}; one of: {', '.join(sorted(names))}"


def _has_option(command: Any, option: str) -> bool:
    """Whether ``command``, or any command under it, takes ``option``."""
    if any(option in param.opts for param in command.params):
        return True
    return any(_has_option(sub, option) for sub in getattr(command, "commands", {}).values())


def _plain_flags(command: Any, ctx: typer.Context) -> None:
    """Show boolean flags (``--dry-run``, ``--help``) in help without a ``<bool>`` value."""
    help_option = command.get_help_option(ctx)
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub, typer.Context(sub, parent=ctx, info_name=sub.name))
