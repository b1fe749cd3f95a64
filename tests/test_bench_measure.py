"""bench/measure.py against the real PostgreSQL: the server's CPU includes a client's backend."""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from tests.helpers.services import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import measure


def _postmaster_pid_file(dsn: str, tmp_path: Path) -> Path:
    """A pid file naming the server's postmaster: the parent of our own backend."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    stat = Path(f"/proc/{row[0]}/stat").read_text()
    pid_file = tmp_path / "postmaster.pid"
    pid_file.write_text(stat[stat.rindex(")") + 2 :].split()[1] + "\n")
    return pid_file


def test_server_cpu_counts_the_backend_of_a_client_that_just_exited(
    database: str, tmp_path: Path
) -> None:
    pg = measure.PgCpu(_postmaster_pid_file(database, tmp_path))
    assert pg.pid is not None
    dbname = str(conninfo_to_dict(database)["dbname"])
    # About a second of CPU in the backend, then psql exits at once.
    query = "SELECT sum(i) FROM generate_series(1, 8000000) AS i"
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", query]
    for attempt in range(3):
        run = measure.run_measured(argv, None, pg, tmp_path / "log", dbname)
        pg_cpu = run.pg_cpu
        assert run.code == 0, (tmp_path / "log").read_text()
        assert pg_cpu is not None
        # Read the moment psql exits, this came out near 0 in most runs.
        assert pg_cpu > 0.3, f"attempt {attempt}: server CPU {pg_cpu:.2f} s"
        assert not pg._serving(dbname)
