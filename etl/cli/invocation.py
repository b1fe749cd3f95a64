"""One command invocation's configuration, loaded once, and its logging, set up once.

Every command that reads the configuration calls `Invocation.load` before it logs or connects
(after checking the options that need no configuration, so that a usage error exits 2 first):

    1. the sources are read once (`etl.core.config_sources`: the ``--config`` file or
       ``$ETL_CONFIG``, Clowder's ``$ACG_CONFIG``, the environment) and validated;
    2. logging is set up from ``log.level``/``log.format`` (`etl.cli.logs.setup_logging`), so
       librdkafka's lines and every event of the command follow them;
    3. what the sources found worth a warning (a topic Clowder does not list) is logged;
    4. the command line's overrides (``--dsn``, ``--group``) replace their keys, always the same
       way: the result is validated as any configuration is.

`Invocation.sources` keeps the configuration as the sources gave it, for what is meant to
ignore the overrides (``etl run --replay-run`` reads the past run from the configured database,
not from ``--dsn``'s) and for ``etl config show`` and ``etl check``, which say where each value
came from. A `ConfigError` propagates like any known error: `etl.cli.common.EtlGroup` turns it
into one line and exit 2.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from etl.cli import logs
from etl.core import config_sources, events
from etl.core.config import Config
from etl.core.config_sources import Loaded

_log = events.logger("etl.cli")


@dataclass(frozen=True)
class Invocation:
    """What a command works with: `config`, with the command line's overrides applied."""

    sources: Loaded  # as the file, Clowder and the environment gave it, with each value's origin
    config: Config

    @classmethod
    def load(
        cls, path: Path | None, *, dsn: str | None = None, group: str | None = None
    ) -> Invocation:
        """Load, set up logging, warn, apply ``dsn``/``group`` (see the module doc); once per
        command invocation. ConfigError if the configuration or an override is bad."""
        loaded = config_sources.load_sources(path, os.environ)
        cfg = loaded.config
        logs.setup_logging(cfg.log.level, cfg.log.format)
        for event, fields in loaded.notices:
            _log.warning(event, **fields)
        if group is not None:
            cfg = dataclasses.replace(cfg, kafka=dataclasses.replace(cfg.kafka, group_id=group))
        if dsn is not None:
            cfg = dataclasses.replace(cfg, postgres=dataclasses.replace(cfg.postgres, dsn=dsn))
        return cls(loaded, cfg)

    def secrets(self) -> frozenset[str]:
        """Every secret value of both configurations (``--dsn``'s password and the configured
        one's), for whatever must never repeat one."""
        return self.config.secrets() | self.sources.config.secrets()
