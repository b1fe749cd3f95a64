"""The runs table against the real PostgreSQL: a run whose process died is marked abandoned."""

from __future__ import annotations

import psycopg

from etl.core.config import PostgresConfig
from etl.core.ports import RunOutcome
from etl.pg.sink import PostgresSink


def _statuses(dsn: str) -> dict[int, str]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT id, status FROM etl_runs ORDER BY id").fetchall())


def _kill_backend_holding(dsn: str, run_id: int) -> None:
    """What the database sees when a run's process dies: its sessions end, its lock is freed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        pids = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = %s::oid",
            (run_id,),
        ).fetchall()
        assert len(pids) == 1
        conn.execute("SELECT pg_terminate_backend(%s)", (pids[0][0],))


def test_the_next_run_marks_dead_runs_abandoned_and_leaves_live_ones_running(
    schema_db: str,
) -> None:
    cfg = PostgresConfig(dsn=schema_db)
    live, dead, later = PostgresSink(cfg), PostgresSink(cfg), PostgresSink(cfg)
    live_id = live.begin_run("t", "g", {})
    dead_id = dead.begin_run("t", "g", {})
    assert live_id is not None and dead_id is not None
    _kill_backend_holding(schema_db, dead_id)
    later_id = later.begin_run("t", "g", {})
    assert later_id is not None
    assert _statuses(schema_db) == {live_id: "running", dead_id: "abandoned", later_id: "running"}
    with psycopg.connect(schema_db) as conn:
        row = conn.execute(
            "SELECT ended_at IS NOT NULL, error FROM etl_runs WHERE id = %s", (dead_id,)
        )
        assert row.fetchone() == (
            True,
            "the process ended without completing its run record (killed or crashed)",
        )
    live.end_run(RunOutcome(live_id, "t", "completed", 0, None, {}, []))
    for sink in (live, dead, later):
        sink.close()
    assert _statuses(schema_db)[live_id] == "completed"
    # a run that ended cleanly released its lock: it is never marked afterwards
    again = PostgresSink(cfg)
    again.begin_run("t", "g", {})
    again.close()
    assert _statuses(schema_db)[live_id] == "completed"
    assert _statuses(schema_db)[later_id] == "abandoned"  # closed without end_run: died
