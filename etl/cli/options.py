"""The options more than one command takes, each defined once.

``--config``, ``--dsn`` and ``--output`` for most commands; ``--group`` and the options that aim
a run (``--from-offset``, ``--until-offset``, ``--from-timestamp``, ``--until-timestamp``,
``--from-beginning``, ``--partitions``) for ``etl run``, ``etl plan`` and ``etl verify``, which
collect the aiming ones in an `AimOptions` and turn it into the one `Aim` of the invocation
(`AimOptions.aim`). A command lists each option as a parameter, as typer wants; the name, the
help and the metavar live here.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from etl.core.aim import Aim, aim_from_options, recorded_options


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
Group = Annotated[
    str | None,
    typer.Option(
        "--group",
        help="Consumer group instead of kafka.group_id.",
        show_default=False,
        metavar="GROUP",
    ),
]

UntilOffset = Annotated[
    str | None,
    typer.Option(
        "--until-offset",
        help="Stop before offset N (exclusive): N for all partitions or P:N,...",
        show_default=False,
        metavar="N|P:N,...",
    ),
]
FromOffset = Annotated[
    str | None,
    typer.Option(
        "--from-offset",
        help="Start at offset N: N for all partitions or P:N,...",
        show_default=False,
        metavar="N|P:N,...",
    ),
]
FromTime = Annotated[
    str | None,
    typer.Option(
        "--from-timestamp",
        help="Start at the first message stamped at or after this ISO 8601 "
        "time (a zone is required).",
        show_default=False,
        metavar="TIME",
    ),
]
UntilTime = Annotated[
    str | None,
    typer.Option(
        "--until-timestamp",
        help="Stop before the first message stamped at or after this time (half-open).",
        show_default=False,
        metavar="TIME",
    ),
]
FromBeginning = Annotated[
    bool, typer.Option("--from-beginning", help="Start at each partition's log start.")
]
Partitions = Annotated[
    str | None,
    typer.Option(
        "--partitions",
        help="Only these partitions, e.g. 0,3,5.",
        show_default=False,
        metavar="P,...",
    ),
]
NoCommit = Annotated[
    bool,
    typer.Option(
        "--no-commit", help="Leave every consumer group untouched (implies explicit assignment)."
    ),
]


@dataclass(frozen=True)
class AimOptions:
    """The aiming options as typed; `aim` parses them (`etl.core.aim.aim_from_options`)."""

    until_offset: str | None = None
    from_offset: str | None = None
    from_timestamp: str | None = None
    until_timestamp: str | None = None
    from_beginning: bool = False
    partitions: str | None = None

    def aim(
        self,
        *,
        no_commit: bool = False,
        dry_run: bool = False,
        replay: dict[int, tuple[int, int]] | None = None,
    ) -> Aim:
        """The invocation's `Aim`; ConfigError (exit 2) for a malformed or contradictory one."""
        return aim_from_options(
            **dataclasses.asdict(self), no_commit=no_commit, dry_run=dry_run, replay=replay
        )

    def recorded(self, **more: object) -> dict[str, object]:
        """These options and ``more`` as the runs table records them: only those given."""
        return recorded_options({**dataclasses.asdict(self), **more})
