"""Failures and Crons check-ins of ``etl run`` sent to Sentry; off, and sentry_sdk not even
imported, unless ``sentry.dsn`` (or ``SENTRY_DSN``) names a DSN.

One reporter per process, like the log set-up of `etl.cli.logs`:

    start(cfg, secrets, topic)  ``etl run``, once its configuration is loaded: the SDK set up
    check_in()                  a scheduled run (not a trial, backfill or replay, which would
                                pose as the scheduled job): ``in_progress`` to the Crons
                                monitor sentry.monitor_slug, if set
    run_recorded(run_id)        the id of the run in the runs table, a tag of what follows
    failed(message)             the text of the ``etl: error:`` line (`etl.cli.common.report`)
    finish(code, exc)           `etl.cli.common.EtlGroup`, whatever the outcome: the event, the
                                closing check-in, a flush bounded by sentry.flush_seconds

What each exit code sends (the closing check-in only after an ``in_progress`` one):

    0       check-in ``ok``
    1       a bug: the exception and its stack (no local variables); check-in ``error``
    2       check-in ``error`` only. A usage or configuration error touched nothing, the
            ``etl: error:`` line names the key, and it repeats until someone edits the command
            or the configuration: the monitor turning red says so once, where an event per
            run (or per mistyped option at a terminal) would only be noise.
    3-9     ``etl run failed: <the etl: error: text>``, one issue per exit code (the text
            varies: hosts, durations); check-in ``error``

Every event carries the tags ``exit_code`` and ``topic``, and ``run_id`` once the run was
recorded. Neither a message's content nor a secret leaves the process: no local variables, no
default PII, breadcrumbs (the run's log events) keep the event's name and drop its fields, and
`scrub_event` masks every value of `etl.core.config.Config.secrets` in all the text that is
left (``before_send``): the logs' rules, applied to what third parties wrote.

The SDK sends from its own daemon thread. The flush at exit waits at most sentry.flush_seconds
and then lets the process end, so a Sentry that does not answer delays the run's end by that
much and no more.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etl.core import events
from etl.core.config import SentryConfig, mask_secrets
from etl.core.errors import EXIT_OK, ConfigError

if TYPE_CHECKING:
    from sentry_sdk._types import Breadcrumb, BreadcrumbHint, Event, Hint

log = events.logger("etl.cli")

_QUIET_CODES = frozenset({EXIT_OK, ConfigError.exit_code})  # no event, see the module doc


@dataclass
class _Reporter:
    cfg: SentryConfig
    started: float
    check_in_id: str | None = None
    run_id: int | None = None
    failure: str | None = None


_active: _Reporter | None = None


def start(cfg: SentryConfig, secrets: frozenset[str], topic: str) -> None:
    """Set up the SDK; nothing at all without a DSN."""
    global _active  # noqa: PLW0603 - one process, one reporter, like the log set-up
    if not cfg.enabled:
        return
    # Only here: a run without a DSN neither imports the SDK nor starts its threads (nor pays
    # for importlib.metadata, see etl.cli.app).
    from importlib.metadata import version  # noqa: PLC0415

    import sentry_sdk  # noqa: PLC0415
    from sentry_sdk.integrations.logging import LoggingIntegration  # noqa: PLC0415

    def before_send(event: Event, _hint: Hint) -> Event:
        return scrub_event(event, secrets)

    sentry_sdk.init(
        dsn=cfg.dsn,
        environment=cfg.environment,
        release=f"etl@{version('etl')}",
        # Exactly what is listed: no excepthook, argv (it may hold --dsn), atexit or modules.
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[LoggingIntegration(level=logging.INFO, event_level=None)],
        include_local_variables=False,
        send_default_pii=False,
        before_send=before_send,
        before_breadcrumb=_breadcrumb,
        shutdown_timeout=cfg.flush_seconds,
    )
    sentry_sdk.set_tag("topic", topic)
    _active = _Reporter(cfg, started=time.monotonic())


def check_in() -> None:
    """The ``in_progress`` check-in of a scheduled run, if sentry.monitor_slug is set.

    Only the scheduled run checks in: a trial, backfill or replay run by hand would tell the
    monitor that the job ran, as `etl.metrics.pushgateway_for` keeps them from telling the
    metrics. Their failures are still sent as events.
    """
    if _active is None or not _active.cfg.monitor_slug:
        return
    from sentry_sdk.crons import MonitorStatus, capture_checkin  # noqa: PLC0415

    _active.started = time.monotonic()
    _active.check_in_id = capture_checkin(
        monitor_slug=_active.cfg.monitor_slug, status=MonitorStatus.IN_PROGRESS
    )


def run_recorded(run_id: int | None) -> None:
    """The run's id, once `etl.pg.ledger` recorded it: the ``run_id`` tag of a report."""
    if _active is not None and run_id is not None:
        _active.run_id = run_id


def failed(message: str) -> None:
    """The failure the ``etl: error:`` line tells; sent by `finish` if its exit code says so."""
    if _active is not None:
        _active.failure = message


def finish(code: int, exc: BaseException | None = None) -> None:
    """Report the outcome (see the module doc) and flush within sentry.flush_seconds."""
    global _active
    reporter, _active = _active, None
    if reporter is None:
        return
    import sentry_sdk  # noqa: PLC0415 - imported by start already
    from sentry_sdk.crons import MonitorStatus, capture_checkin  # noqa: PLC0415

    tags = {"exit_code": str(code)}
    if reporter.run_id is not None:
        tags["run_id"] = str(reporter.run_id)
    if exc is not None:
        sentry_sdk.capture_exception(exc, tags=tags)
    elif code not in _QUIET_CODES:
        sentry_sdk.capture_message(
            f"etl run failed: {reporter.failure or f'exit code {code}'}",
            level="error",
            tags=tags,
            fingerprint=["etl run failed", str(code)],
        )
    cfg = reporter.cfg
    if reporter.check_in_id is not None:
        capture_checkin(
            monitor_slug=cfg.monitor_slug,
            check_in_id=reporter.check_in_id,
            status=MonitorStatus.OK if code == EXIT_OK else MonitorStatus.ERROR,
            duration=time.monotonic() - reporter.started,
        )
    began = time.monotonic()
    sentry_sdk.get_client().close(timeout=cfg.flush_seconds)
    if time.monotonic() - began >= cfg.flush_seconds:  # returned at its deadline, not done
        log.warning(
            "sentry_flush_timed_out",
            seconds=cfg.flush_seconds,
            advice="Sentry did not take this run's report in time; it may be lost",
        )


def scrub_event(event: Event, secrets: frozenset[str]) -> Event:
    """``event`` with every one of ``secrets`` masked in every string it holds, at any depth.

    All of it rather than a list of fields (message, exception values, breadcrumbs, tags,
    contexts): a field the SDK adds in a later release is covered too.
    """
    scrubbed: Event = _scrub(event, secrets)
    return scrubbed


def _scrub(value: Any, secrets: frozenset[str]) -> Any:
    if isinstance(value, str):
        return mask_secrets(value, secrets)
    if isinstance(value, dict):
        return {key: _scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, secrets) for item in value]
    return value


_last_crumb: list[tuple[object, object]] = [(None, None)]


def _breadcrumb(crumb: Breadcrumb, _hint: BreadcrumbHint) -> Breadcrumb | None:
    """A log event as its name, level and logger: its fields may quote a message's content.

    A repeat of the line just before is dropped: librdkafka reports a refused connection to a
    dead broker every few milliseconds, and the SDK keeps only the last 100 breadcrumbs, so
    the repeats would push out the events that led to the failure."""
    crumb.pop("data", None)
    key = (crumb.get("category"), crumb.get("message"))
    if key == _last_crumb[0]:
        return None
    _last_crumb[0] = key
    return crumb
