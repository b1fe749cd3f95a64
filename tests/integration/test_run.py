"""`etl run` as a user runs it, against the real Kafka, PostgreSQL and Pushgateway."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson
import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.helpers.runs import (
    BAD,
    CLUSTER,
    ETL,
    Env,
    committed,
    error_line,
    good,
    pushed,
    rejections,
    rows,
    run_etl,
    summary,
)
from tests.helpers.services import ROOT, Services


@pytest.fixture
def loaded_topic(
    make_topic: Callable[[int], str], produce: Callable[..., None]
) -> tuple[str, list[tuple[int, bytes]]]:
    """3 partitions: 30 valid messages and 4 invalid ones, spread round-robin."""
    topic = make_topic(3)
    items = [(i % 3, good(i)) for i in range(30)] + [(i % 3, v) for i, v in enumerate(BAD)]
    produce(topic, items)
    return topic, items


def test_a_run_loads_valid_rows_stores_rejections_commits_and_pushes(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    loaded_topic: tuple[str, list[tuple[int, bytes]]],
) -> None:
    topic, _ = loaded_topic
    env = etl_env(topic)
    result = run_etl(env)
    assert result.returncode == 0, result.stderr

    stored = rows(schema_db)
    assert [r[0] for r in stored] == [1000 + i for i in range(30)]
    assert stored[7][1:4] == (57, CLUSTER.format(7), datetime(2026, 5, 4, 9, 0, 7, 7))
    assert {(r[0] - 1000) % 3 for r in stored if r[4] == 1} == {1}
    assert sorted((p, o, reason) for p, o, reason, _ in rejections(schema_db)) == [
        (0, 10, "empty_value"),
        (0, 11, "missing_field"),
        (1, 10, "invalid_json"),
        (2, 10, "wrong_type"),
    ]
    assert {bytes(r[3]) for r in rejections(schema_db)} == set(BAD)
    assert committed(services, group, topic, 3) == {0: 12, 1: 11, 2: 11}

    doc = summary(result)
    assert (doc["consumed"], doc["inserted"], doc["duplicates"]) == (34, 30, 0)
    assert doc["partitions"] == {
        "0": {"start": 0, "stop": 12, "reached": 12},
        "1": {"start": 0, "stop": 11, "reached": 11},
        "2": {"start": 0, "stop": 11, "reached": 11},
    }
    metrics = pushed(services, env["ETL_PUSHGATEWAY__JOB"])
    assert metrics["etl_messages_consumed"] == 34
    assert metrics["etl_rows_inserted"] == 30
    assert metrics["etl_rows_duplicate"] == 0
    assert metrics['etl_messages_rejected{reason="invalid_json"}'] == 1
    assert metrics['etl_messages_rejected{reason="empty_value"}'] == 1
    assert metrics['etl_messages_rejected{reason="missing_field"}'] == 1
    assert metrics['etl_messages_rejected{reason="wrong_type"}'] == 1
    assert metrics['etl_partition_lag{partition="0"}'] == 0
    assert metrics["etl_run_exit_code"] == 0
    assert metrics["etl_last_success_timestamp_seconds"] == pytest.approx(time.time(), abs=120)

    again = run_etl(env)
    assert again.returncode == 0, again.stderr
    assert summary(again)["consumed"] == 0
    assert len(rows(schema_db)) == 30


def test_messages_produced_after_a_run_are_loaded_by_the_next(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    loaded_topic: tuple[str, list[tuple[int, bytes]]],
    produce: Callable[..., None],
) -> None:
    topic, _ = loaded_topic
    env = etl_env(topic)
    assert run_etl(env).returncode == 0
    produce(topic, [(i % 3, good(i)) for i in range(30, 36)])
    result = run_etl(env)
    assert result.returncode == 0, result.stderr
    assert summary(result)["inserted"] == 6
    assert len(rows(schema_db)) == 36
    assert committed(services, group, topic, 3) == {0: 14, 1: 13, 2: 13}


def test_killed_between_database_and_kafka_commit_loses_and_duplicates_nothing(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    loaded_topic: tuple[str, list[tuple[int, bytes]]],
) -> None:
    topic, _ = loaded_topic
    env = etl_env(topic, ETL_BATCH__MAX_MESSAGES="5")
    killed = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parents[1] / "helpers" / "kill_after_db_commit.py"),
            "run",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert killed.returncode == -signal.SIGKILL
    written = len(rows(schema_db))
    assert 0 < written < 30
    assert committed(services, group, topic, 3) == {0: -1001, 1: -1001, 2: -1001}

    result = run_etl(env)
    assert result.returncode == 0, result.stderr
    # The database vouches for what it stored: the next run starts there, nothing read twice.
    assert summary(result)["duplicates"] == 0
    assert '"event":"offsets_forward"' in result.stderr
    stored = rows(schema_db)
    assert [r[0] for r in stored] == [1000 + i for i in range(30)]
    assert len(rejections(schema_db)) == 4
    assert committed(services, group, topic, 3) == {0: 12, 1: 11, 2: 11}


def test_postgres_down_exits_4_and_commits_no_offset(
    services: Services,
    group: str,
    etl_env: Env,
    loaded_topic: tuple[str, list[tuple[int, bytes]]],
) -> None:
    topic, _ = loaded_topic
    env = etl_env(topic, ETL_POSTGRES__DSN="postgresql://postgres:pw@127.0.0.1:1/postgres")
    result = run_etl(env)
    assert result.returncode == 4
    assert error_line(result).startswith("etl: error: PostgreSQL unavailable")
    assert "pw" not in result.stderr.replace("PostgreSQL", "")
    assert committed(services, group, topic, 3) == {0: -1001, 1: -1001, 2: -1001}
    assert pushed(services, env["ETL_PUSHGATEWAY__JOB"])["etl_run_exit_code"] == 4


def test_kafka_unreachable_exits_3(etl_env: Env) -> None:
    env = etl_env("any", ETL_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:1")
    result = run_etl(env)
    assert result.returncode == 3, result.stderr
    assert error_line(result).startswith("etl: error: cannot reach Kafka")


def test_missing_topic_exits_9(etl_env: Env) -> None:
    result = run_etl(etl_env("etl-test-no-such-topic"))
    assert result.returncode == 9
    assert "topic 'etl-test-no-such-topic': does not exist" in result.stderr


def test_missing_schema_exits_5_and_commits_nothing(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    loaded_topic: tuple[str, list[tuple[int, bytes]]],
) -> None:
    with psycopg.connect(schema_db, autocommit=True) as conn:
        conn.execute("DROP TABLE new_reports CASCADE")
    result = run_etl(etl_env(loaded_topic[0]))
    assert result.returncode == 5
    assert "table new_reports does not exist; run etl db migrate" in result.stderr
    assert committed(services, group, loaded_topic[0], 3) == {0: -1001, 1: -1001, 2: -1001}
    with psycopg.connect(schema_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE rejected_messages DROP COLUMN detail")
        conn.execute((ROOT / "schema.sql").read_text())
    result = run_etl(etl_env(loaded_topic[0]))
    assert result.returncode == 5
    assert "table rejected_messages lacks column(s) detail" in result.stderr


def test_two_copies_split_six_partitions_without_loss_or_duplicates(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(6)
    produce(topic, [(i % 6, good(i)) for i in range(600)])
    env = etl_env(topic, ETL_BATCH__MAX_MESSAGES="20")
    procs = [
        subprocess.Popen([*ETL], env=env, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=180)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    stored = rows(schema_db)
    assert len(stored) == 600
    assert len({r[0] for r in stored}) == 600
    assert committed(services, group, topic, 6) == dict.fromkeys(range(6), 100)


def test_sigterm_commits_what_was_written_and_exits_6(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(1)
    produce(topic, [(0, good(i)) for i in range(3000)])
    env = etl_env(topic, ETL_BATCH__MAX_MESSAGES="10")
    proc = subprocess.Popen([*ETL], env=env, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while committed(services, group, topic, 1)[0] <= 0:  # the run is past its first batch
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 6, err
    done = committed(services, group, topic, 1)[0]
    assert 0 < done < 3000
    assert len(rows(schema_db)) == done  # exactly what was committed, nothing more or less
    assert run_etl(env).returncode == 0
    assert len(rows(schema_db)) == 3000


def test_committed_offset_deleted_by_retention_is_skipped_and_reported(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(1)
    produce(topic, [(0, good(i)) for i in range(10)])
    consumer = Consumer({"bootstrap.servers": services.kafka, "group.id": group})
    consumer.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    consumer.close()
    admin = AdminClient({"bootstrap.servers": services.kafka})
    for fut in admin.delete_records([TopicPartition(topic, 0, 6)]).values():
        fut.result(timeout=30)
    env = etl_env(topic)
    result = run_etl(env)
    assert result.returncode == 0, result.stderr
    assert '"event":"retention_gap"' in result.stderr
    assert [r[0] for r in rows(schema_db)] == [1006, 1007, 1008, 1009]
    metrics = pushed(services, env["ETL_PUSHGATEWAY__JOB"])
    assert metrics['etl_offsets_skipped_retention{partition="0"}'] == 4


@pytest.mark.parametrize("tracker", ["", "etl-test-tracker"])
def test_an_unknown_librdkafka_property_is_a_usage_error(etl_env: Env, tracker: str) -> None:
    env = etl_env("any", ETL_KAFKA__CLIENT__FOO_BAR="1", ETL_TRACKER__TOPIC=tracker)
    result = run_etl(env)
    assert result.returncode == 2, result.stderr
    assert error_line(result) == ("etl: error: kafka.client.foo.bar: unknown librdkafka property")


def test_transactions_committed_are_loaded_aborted_skipped_and_open_not_waited_for(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
) -> None:
    topic = make_topic(2)
    producer = Producer({"bootstrap.servers": services.kafka, "transactional.id": topic})
    producer.init_transactions(30)
    for numbers, finish in (
        (range(6), producer.commit_transaction),
        (range(6, 8), producer.abort_transaction),
    ):
        producer.begin_transaction()
        for i in numbers:
            producer.produce(topic, good(i), partition=i % 2)
        finish(30)
    producer.begin_transaction()  # left open while the run goes
    for i in range(8, 10):
        producer.produce(topic, good(i), partition=i % 2)
    producer.flush(30)

    env = etl_env(topic)
    result = run_etl(env)
    assert result.returncode == 0, result.stderr
    assert [r[0] - 1000 for r in rows(schema_db)] == [0, 1, 2, 3, 4, 5]
    # 3 messages and a commit marker per partition; the aborted ones sit behind the open ones
    assert committed(services, group, topic, 2) == {0: 4, 1: 4}

    producer.commit_transaction(30)
    result = run_etl(env)
    assert result.returncode == 0, result.stderr
    assert [r[0] - 1000 for r in rows(schema_db)] == [0, 1, 2, 3, 4, 5, 8, 9]


def test_every_json_line_of_a_recorded_run_carries_its_run_id(
    etl_env: Env, loaded_topic: tuple[str, list[tuple[int, bytes]]]
) -> None:
    result = run_etl(etl_env(loaded_topic[0], ETL_BATCH__MAX_MESSAGES="5"))
    assert result.returncode == 0, result.stderr
    docs = [orjson.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    run_id = summary(result)["run_id"]
    names = [d["event"] for d in docs]
    after = docs[names.index("partitions_assigned") :]  # the run is recorded before it reads
    assert {d["event"] for d in after} >= {
        "partitions_assigned",
        "message_rejected",
        "run_finished",
    }
    assert all(d.get("run_id") == run_id for d in after), [d for d in after if "run_id" not in d]


def test_sigterm_while_a_write_waits_on_a_lock_exits_6_within_seconds_and_loses_nothing(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    loaded_topic: tuple[str, list[tuple[int, bytes]]],
) -> None:
    topic = loaded_topic[0]
    env = etl_env(topic, ETL_POSTGRES__RETRY_MAX_SECONDS="60")
    with psycopg.connect(schema_db) as locker:
        locker.execute("LOCK TABLE new_reports IN ACCESS EXCLUSIVE MODE")
        proc = subprocess.Popen([*ETL], env=env, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        deadline = time.monotonic() + 60
        with psycopg.connect(schema_db, autocommit=True) as watcher:
            while watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'etl'"
                " AND wait_event_type = 'Lock'"
            ).fetchone() != (1,):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=30)[1]
        took = time.monotonic() - signalled
    assert proc.returncode == 6, err
    assert took < 10, took
    assert committed(services, group, topic, 3) == {0: -1001, 1: -1001, 2: -1001}
    assert rows(schema_db) == []
    assert run_etl(env).returncode == 0  # the lock is gone: the next run loads everything
    assert len(rows(schema_db)) == 30
