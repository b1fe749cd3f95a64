"""Start-up: the command line loads no library a plain `etl run` does not use before its work.

rich is for a terminal (the live view, the summary), prometheus_client and urllib.request for
the push at the end of a run; each costs 10-25 ms of every start (docs/job-cost.md).
"""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.services import ROOT

DEFERRED = ("rich", "prometheus_client", "urllib.request", "http.client")


def test_loading_the_command_line_imports_none_of_the_deferred_libraries() -> None:
    code = f"import sys, etl.cli.app; print(sorted(m for m in {DEFERRED!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
