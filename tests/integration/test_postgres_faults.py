"""PostgreSQL faults against a private server: a crash and restart mid-run (also one held in
crash recovery, refusing connections with SQLSTATE 57P03), TLS verification failures."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import psycopg
import pytest

from etl.core.config import PostgresConfig
from etl.core.errors import PostgresUnavailable
from etl.pg.sink import PostgresSink
from tests.helpers.private_postgres import PrivatePostgres, private_postgres
from tests.helpers.runs import ETL, Env, committed, good, rows, summary
from tests.helpers.services import ROOT, Services

N = 30_000
# Longer than the sink's longest wait between attempts (5 s): one attempt lands inside.
RECOVERY_SECONDS = 8


def _count(dsn: str) -> int:
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM new_reports").fetchone()
            return int(row[0]) if row else 0
    except psycopg.OperationalError:
        return 0


def _restart(server: PrivatePostgres) -> None:
    server.stop("immediate")
    time.sleep(5)
    server.start()


def _restart_held_in_recovery(server: PrivatePostgres) -> None:
    with server.crashed_in_recovery():  # refusing with 57P03 "not yet accepting connections"
        time.sleep(RECOVERY_SECONDS)


@pytest.mark.parametrize(
    ("fault", "answer"),
    [(_restart, "postgres_retry"), (_restart_held_in_recovery, "not yet accepting connections")],
    ids=["restart", "restart-held-in-crash-recovery"],
)
def test_a_postgresql_crash_and_restart_mid_run_is_ridden_out(
    services: Services,
    etl_env: Env,
    group: str,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
    fault: Callable[[PrivatePostgres], None],
    answer: str,
) -> None:
    topic = make_topic(3)
    produce(topic, [(i % 3, good(i)) for i in range(N)])
    with private_postgres() as server:
        server.apply_schema()
        env = etl_env(
            topic,
            ETL_POSTGRES__DSN=server.dsn,
            ETL_POSTGRES__RETRY_ATTEMPTS="0",
            ETL_POSTGRES__RETRY_MAX_SECONDS="60",
            ETL_BATCH__MAX_MESSAGES="100",
            ETL_KAFKA__TIMEOUT_SECONDS="60",
        )
        proc = subprocess.Popen(
            ETL, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while _count(server.dsn) == 0:
                assert proc.poll() is None and time.monotonic() < deadline, "run never wrote"
                time.sleep(0.02)
            fault(server)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        result = subprocess.CompletedProcess(ETL, proc.returncode, out, err)
        assert proc.returncode == 0, err[-3000:]
        assert "postgres_retry" in err  # the restart hit the run
        assert answer in err  # an attempt was refused the way the fault answers
        stored = rows(server.dsn)
    assert len(stored) == N
    assert sorted(r[0] for r in stored) == [1000 + i for i in range(N)]  # no duplicates
    assert committed(services, group, topic, 3) == {p: N // 3 for p in range(3)}
    assert summary(result)["exit_code"] == 0


@pytest.mark.parametrize(
    ("host", "own_root", "expected"),
    [
        ("127.0.0.1", False, "certificate verify failed"),
        ("127.0.0.1", True, "does not match host name"),
    ],
)
def test_tls_verification_failures_exit_4_at_once_and_are_not_retried(
    services: Services, host: str, own_root: bool, expected: str
) -> None:
    with private_postgres(tls=True) as server, private_postgres(tls=True) as other:
        root = server.certificate if own_root else other.certificate
        dsn = f"host={host} port={server.port} user=postgres sslmode=verify-full sslrootcert={root}"
        sleeps: list[float] = []
        sink = PostgresSink(PostgresConfig(dsn=dsn), sleep=sleeps.append)
        with pytest.raises(PostgresUnavailable, match="TLS verification failed") as caught:
            sink.check_schema()
        assert expected in str(caught.value)
        assert caught.value.exit_code == 4
        assert sleeps == []
