"""Test harness: the real ``etl`` command with a bug planted in the sink, for the Sentry tests.

``CRASH_IN_RUN_AT`` names the sink method that raises (``check_schema``: before the run is
recorded; ``write``: after). Before raising, the bug logs the configured secrets and puts them
in its message, as a careless ``raise`` might: only the scrubbing keeps them from Sentry.
Only the harness patches the sink.
"""

import logging
import os
from typing import Any

from etl.cli.app import main
from etl.pg.sink import PostgresSink


def _bug(*_args: Any, **_kwargs: Any) -> Any:
    leak = " ".join(
        os.environ[name]
        for name in ("ETL_POSTGRES__DSN", "ETL_KAFKA__CLIENT__SASL_PASSWORD")
        if name in os.environ
    )
    logging.getLogger("etl.pg.sink").warning("about to fail with %s", leak)
    raise RuntimeError(f"planted bug, configured with {leak}")


setattr(PostgresSink, os.environ["CRASH_IN_RUN_AT"], _bug)
main()
