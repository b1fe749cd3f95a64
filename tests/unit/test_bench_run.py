"""bench/run.py's options: the PostgreSQL whose CPU it measures is the one dev/services.sh runs."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers.services import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import run


def test_the_pid_file_is_under_the_services_state_directory(tmp_path: Path) -> None:
    args = run.parse_args([], {"ETL_SERVICES_DIR": str(tmp_path)})
    assert args.pg_pid_file == tmp_path / "pg" / "postmaster.pid"


def test_without_a_state_directory_the_pid_file_is_where_services_sh_puts_it() -> None:
    # services.sh: state="${ETL_SERVICES_DIR:-/tmp/etl-services}", so empty counts as unset
    for environ in ({}, {"ETL_SERVICES_DIR": ""}):
        args = run.parse_args([], environ)
        assert args.pg_pid_file == Path("/tmp/etl-services/pg/postmaster.pid")


def test_an_explicit_pid_file_wins(tmp_path: Path) -> None:
    args = run.parse_args(["--pg-pid-file", "/x/postmaster.pid"], {"ETL_SERVICES_DIR": "/y"})
    assert args.pg_pid_file == Path("/x/postmaster.pid")
