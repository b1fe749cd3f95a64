"""The loading command ``etl run``.

Thin: load the configuration once (`etl.cli.invocation`), parse and check the aiming options
(`etl.cli.options`; usage errors exit 2 before any connection), wire the concrete adapters,
print, and map the outcome to an exit code (`fail`; a known error propagates to
`etl.cli.common.EtlGroup`). `register` adds the command to the ``etl`` app.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from etl.cli import sentry
from etl.cli.common import epilog, fail
from etl.cli.invocation import Invocation
from etl.cli.logs import flush_repeats
from etl.cli.options import (
    AimOptions,
    ConfigOption,
    DsnOption,
    FromBeginning,
    FromOffset,
    FromTime,
    Group,
    NoCommit,
    Partitions,
    UntilOffset,
    UntilTime,
)
from etl.core import events
from etl.core.config import Config
from etl.core.counts import RunCounts
from etl.core.errors import KAFKA_ERRORS, POSTGRES_ERRORS, Interrupted, SchemaMissing
from etl.core.ports import NullTracker
from etl.kafka.source import KafkaSource
from etl.kafka.tracker import open_tracker
from etl.metrics import RunMetrics, pushgateway_for
from etl.pg import admin, ledger
from etl.pg.sink import PostgresSink
from etl.pipeline import Run, RunSettings

if TYPE_CHECKING:
    from etl.cli.live import LiveView
    from etl.cli.progress import Snapshot

log = events.logger("etl.cli")

_AIM_HELP = (
    "Positions (--from-*, --partitions), --no-commit, --dry-run and --replay-run assign the "
    "partitions explicitly instead of joining the consumer group."
)


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


# glibc's mallopt parameters (malloc.h) and the values a run uses
_MALLOPT = ((-8, 2), (-3, 32 << 20), (-1, 128 << 20))  # M_ARENA_MAX, M_MMAP_, M_TRIM_THRESHOLD


def tune_allocator(mallopt: Callable[[int, int], int] | None = None) -> bool:
    """Keep freed memory for the next batch instead of handing it back to the kernel; True when
    the C library took every setting (glibc does; elsewhere this changes nothing).

    Every batch allocates the same large buffers again (message values, COPY rows). With
    glibc's adaptive defaults the largest are mapped afresh and the rest trimmed back, so each
    batch would page-fault its memory in anew. A fixed mmap threshold (32 MiB, glibc's own
    upper bound), a 128 MiB trim threshold and two arenas instead of one per thread keep it
    (measured in CHANGELOG.md). Called before any thread starts, as the arena count requires.
    ``mallopt`` is the C library's unless given (tests).
    """
    if mallopt is None:
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            return False
    return all(mallopt(param, value) == 1 for param, value in _MALLOPT)


_IMPORTED = time.monotonic()  # the fallback start of the process, where /proc is not there


def process_started() -> float:
    """When this process started, on `time.monotonic`'s scale.

    The pushed ``etl_run_duration_seconds`` is the job's whole time, the interpreter's start and
    the imports included: Linux's ``/proc/self/stat`` gives the start on the boot clock, in
    clock ticks (10 ms). Elsewhere, when this module was imported.
    """
    try:
        after_name = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED
    now = time.monotonic()
    if not 0 <= age <= now - _IMPORTED + 60:  # a start after the import, or long before: wrong
        return _IMPORTED
    return now - age


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
    dsn: DsnOption = None,
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
            metavar="RUN_ID",
        ),
    ] = None,
) -> None:
    """Load every message up to the end offsets seen at start, then push metrics and exit."""
    started = process_started()
    tune_allocator()
    stop = StopFlag()
    inv = Invocation.load(config, dsn=dsn, group=group)
    cfg = inv.config
    sentry.start(cfg.sentry, inv.secrets(), cfg.kafka.topic)
    # The past run is read from the configured database (postgres.dsn), not from --dsn's.
    replay = _replay_ranges(inv.sources.config, replay_run) if replay_run is not None else None
    aiming = AimOptions(
        until_offset, from_offset, from_timestamp, until_timestamp, from_beginning, partitions
    )
    aim = aiming.aim(no_commit=no_commit, dry_run=dry_run, replay=replay)
    if not aim.explicit:  # a trial, backfill or replay never poses as the scheduled job
        sentry.check_in()
    tracker = NullTracker() if dry_run else open_tracker(cfg.kafka, cfg.tracker, stop)
    if dsn is not None and cfg.postgres.has_password:
        log.warning(
            "password_on_command_line",
            option="--dsn",
            advice="other users can read it in the process list; give it in PGPASSWORD or a"
            " libpq passfile (~/.pgpass, PGPASSFILE) instead",
        )
    stop.install()
    options = aiming.recorded(no_commit=no_commit, replay_run=replay_run)
    settings = RunSettings(
        topic=cfg.kafka.topic,
        max_messages=cfg.batch.max_messages,
        max_bytes=cfg.batch.max_bytes,
        clock_skew=timedelta(seconds=cfg.validation.clock_skew_seconds),
        group_id=cfg.kafka.group_id,
        options=options,
        dry_run=dry_run,
        writers=cfg.postgres.writers,
    )
    sink = PostgresSink(
        cfg.postgres, group_id=cfg.kafka.group_id, dry_run=dry_run, stop_requested=stop
    )
    # The database's own progress decides where each partition resumes (etl.core.positions).
    positions = sink.positions(cfg.kafka.topic)
    source = KafkaSource(cfg.kafka, aim, stop_requested=stop, positions=positions)
    counts = RunCounts()
    tty = sys.stderr.isatty()
    with _live_view(cfg.kafka.topic, source, counts) if tty else nullcontext():
        pipeline = Run(
            settings,
            source=source,
            sink=sink,
            publisher=RunMetrics(pushgateway_for(cfg.pushgateway, aim), stop_requested=stop),
            counts=counts,
            stop_requested=stop,
            tracker=tracker,
            started=started,
        )
        try:
            summary = pipeline.execute()
        finally:
            sentry.run_recorded(pipeline.run_id)
    flush_repeats()  # librdkafka's held-back repeats, counted, before the summary
    if tty or dry_run:
        from rich.console import Console  # noqa: PLC0415 - rich only for a summary (20 ms)

        from etl.cli.summary import summary_view  # noqa: PLC0415 - imports rich

        out = Console(stderr=not dry_run, soft_wrap=False)
        out.print(
            summary_view(
                summary.status,
                summary.exit_code,
                summary.duration_seconds,
                counts,
                summary.partitions,
                dry_run=dry_run,
            )
        )
    if summary.exit_code:
        fail(summary.error or summary.status, summary.exit_code)


def _live_view(topic: str, source: KafkaSource, counts: RunCounts) -> LiveView:
    """The live view of a run on a terminal; rich (about 20 ms of imports) is loaded only
    here and for the summary, so a run off a terminal never imports it."""
    from rich.console import Console  # noqa: PLC0415 - rich only on a terminal

    from etl.cli.live import LiveView  # noqa: PLC0415 - imports rich

    return LiveView(Console(stderr=True), topic, _snapshot(source, counts))


def _snapshot(source: KafkaSource, counts: RunCounts) -> Callable[[], Snapshot]:
    """What the live view reads on each refresh (from its own thread: plain reads only)."""
    from etl.cli.progress import Snapshot  # noqa: PLC0415 - imports rich

    def read() -> Snapshot:
        return Snapshot(
            parts=[dataclasses.replace(p) for p in source.progress()],
            bytes_read=int(counts.get("etl_bytes_consumed")),
            messages_read=int(counts.get("etl_messages_consumed")),
            rejected=counts.rejected(),
        )

    return read


def _replay_ranges(cfg: Config, run_id: int) -> dict[int, tuple[int, int]]:
    with admin.connect(cfg.postgres) as conn:
        return ledger.replay_ranges(ledger.load(conn, run_id), cfg.kafka.topic)


def register(app: typer.Typer) -> None:
    codes = epilog(
        *KAFKA_ERRORS,
        *POSTGRES_ERRORS,
        SchemaMissing,
        Interrupted,
        ok="reached the stop offsets of every assigned partition (rejections included)",
    )
    app.command("run", epilog=f"{codes}\n\n{_AIM_HELP}")(run)
