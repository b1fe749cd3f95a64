"""How every ``etl`` command ends: known errors turned into one ``etl: error:`` line with their
exit code, in one place, plus plain flags in help and exit-code epilogs.

`EtlGroup` is the class of the ``etl`` app's command group, and the one place where an error
becomes an exit code. Commands raise (`etl.core.errors`); `EtlGroup` reports an `EtlError` as
one ``etl: error: ...`` line on stderr (followed by the same failure as a JSON event when the
logs are JSON lines) and exits with its code. It runs every command with typer's own error
display turned off, so that whatever the command line parser refuses (an unknown option, a
value out of range, a value given to a flag) ends the same way, with exit 2. `fail` is only for
an outcome that is not an exception: a run whose summary carries an exit code, a verification
that found a mismatch.

The command modules (`etl.cli.run`, `etl.cli.admin`, `etl.cli.inspect`, `etl.cli.verify`)
import this; it imports no adapter.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from itertools import pairwise
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from etl.cli import logs, sentry
from etl.cli.logs import escape_controls
from etl.core.errors import EXIT_BUG, EXIT_CODES, EXIT_OK, ConfigError, EtlError, exit_codes_help

EXIT_USAGE = ConfigError.exit_code
_BOOL_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0", "y", "n"})


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
