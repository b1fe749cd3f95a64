"""The broker SIGKILLed and kept down while a run commits: bounded exit 3, or exit 6 on SIGTERM;
a PLAINTEXT client on a listener that demands SASL: exit 9.

A private broker (`tests.helpers.private_services`) is killed, never the shared one. A harness
holds the run just before an offset commit, its batch already stored, so the broker dies at
exactly that point.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etl.kafka.waits import FAILURE_GRACE_SECONDS
from tests.helpers.private_services import PrivateKafka, sasl_kafka
from tests.helpers.runs import Env, committed, error_line, good, pushed, rows, run_etl
from tests.helpers.services import ROOT, Services

HARNESS = Path(__file__).parents[1] / "helpers" / "hold_before_commit.py"
TIMEOUT = 5  # kafka.timeout_seconds of these runs
# After the commit's deadline: the Kafka grace (end offsets and close share it), then the run's
# record in PostgreSQL, the metrics push and the process exit, a second or two on this machine.
STOP_MARGIN = FAILURE_GRACE_SECONDS + 3


def _held_run(
    broker: PrivateKafka, etl_env: Env, hold: Path, produce_count: int, timeout: int = TIMEOUT
) -> tuple[subprocess.Popen[str], str, float]:
    """The run held before its second commit, its topic, and when its process was started."""
    topic = broker.create_topic(1)
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for i in range(produce_count):
        producer.produce(topic, good(i), partition=0)
    assert producer.flush(30) == 0
    env = etl_env(
        topic,
        ETL_KAFKA__BOOTSTRAP_SERVERS=broker.bootstrap,
        ETL_KAFKA__TIMEOUT_SECONDS=str(timeout),
        # A session longer than the outage bound: librdkafka's own session timeout (which
        # fails a waiting commit) must not be what ends the wait.
        ETL_KAFKA__CLIENT__SESSION_TIMEOUT_MS="30000",
        ETL_BATCH__MAX_MESSAGES="50",
        HOLD_BEFORE_COMMIT_DIR=str(hold),
    )
    launched = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(HARNESS), "run"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while not (hold / "ready").exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run never reached its second commit"
        time.sleep(0.05)
    return proc, topic, launched


def _wait(proc: subprocess.Popen[str], seconds: float) -> str:
    try:
        return proc.communicate(timeout=seconds)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        err = proc.communicate()[1]
        pytest.fail(f"the run was still going after {seconds}s:\n{err[-3000:]}")


def _committed_after_restart(broker: PrivateKafka, group: str, topic: str) -> int:
    broker.start()
    found = committed(Services(broker.bootstrap, "", ""), group, topic, 1)[0]
    return max(found, 0)


def test_broker_killed_during_the_commit_and_kept_down_exits_3_in_bounded_time(
    services: Services,
    private_broker: PrivateKafka,
    schema_db: str,
    group: str,
    etl_env: Env,
    tmp_path: Path,
) -> None:
    proc, topic, _ = _held_run(private_broker, etl_env, tmp_path, 2000)
    private_broker.kill()
    began = time.monotonic()
    (tmp_path / "go").touch()
    err = _wait(proc, TIMEOUT + 25)
    took = time.monotonic() - began
    assert proc.returncode == 3, err
    assert took < TIMEOUT + 20, took
    last = error_line(subprocess.CompletedProcess(proc.args, proc.returncode, "", err))
    assert last.startswith("etl: error: Kafka did not answer within 5s (offset commit)"), last
    # Commits between batches are not waited for: what librdkafka had fetched before the
    # outage is stored (up to all of it), and the run fails on the last, synchronous commit.
    stored = len(rows(schema_db))
    assert 0 < stored <= 2000
    # The end-of-run lag could not be asked: unknown, never a guess
    metrics = pushed(services, etl_env(topic)["ETL_PUSHGATEWAY__JOB"])
    assert metrics["etl_partition_lag_known"] == 0
    assert math.isnan(metrics['etl_partition_lag{partition="0"}'])
    assert _committed_after_restart(private_broker, group, topic) <= stored


def test_sigterm_during_the_outage_ends_the_run_within_10_seconds_with_exit_6(
    private_broker: PrivateKafka, schema_db: str, group: str, etl_env: Env, tmp_path: Path
) -> None:
    # Kafka's own deadline is far: only the signal can end this wait in time.
    proc, topic, _ = _held_run(private_broker, etl_env, tmp_path, 2000, timeout=60)
    private_broker.kill()
    (tmp_path / "go").touch()
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    began = time.monotonic()
    err = _wait(proc, 30)
    took = time.monotonic() - began
    assert proc.returncode == 6, err
    assert took < 10, took
    last = error_line(subprocess.CompletedProcess(proc.args, proc.returncode, "", err))
    assert "stopped by signal" in last, last
    stored = len(rows(schema_db))
    assert 0 < stored <= 2000
    assert _committed_after_restart(private_broker, group, topic) <= stored


def test_a_dead_broker_ends_the_run_in_bounded_time_naming_its_error_and_whole_duration(
    private_broker: PrivateKafka,
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    tmp_path: Path,
) -> None:
    timeout = 10
    proc, _, launched = _held_run(private_broker, etl_env, tmp_path, 2000, timeout=timeout)
    private_broker.kill()
    began = time.monotonic()
    (tmp_path / "go").touch()
    err = _wait(proc, timeout + 60)
    ended = time.monotonic()
    assert proc.returncode == 3, err
    # The commit's deadline, then what is left of one grace for end offsets and close.
    assert ended - began < timeout + STOP_MARGIN, ended - began
    last = error_line(subprocess.CompletedProcess(proc.args, proc.returncode, "", err))
    assert last.startswith("etl: error: Kafka did not answer within 10s (offset commit)"), last
    assert "; last error: " in last and "Connection refused" in last, last
    # The whole process, from its start to just before the push (which precedes the exit).
    duration = pushed(services, f"etl-test-{group}")["etl_run_duration_seconds"]
    assert ended - launched - 1.5 < duration <= ended - launched, (duration, ended - launched)


def test_a_plaintext_client_on_a_sasl_listener_is_refused_with_exit_9(etl_env: Env) -> None:
    with sasl_kafka() as bootstrap:
        env = etl_env(
            "any-topic", ETL_KAFKA__BOOTSTRAP_SERVERS=bootstrap, ETL_KAFKA__TIMEOUT_SECONDS="10"
        )
        run = run_etl(env, timeout=60)
    assert run.returncode == 9, run.stderr[-3000:]
    last = error_line(run)
    assert last.startswith("etl: error: Kafka closed every connection"), last
    assert "security.protocol" in last, last
