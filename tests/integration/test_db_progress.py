"""The database is the truth of progress: a restore, a lost offset commit, an adopted database,
writers committing out of order, against the real Kafka, PostgreSQL and Pushgateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import psycopg
from confluent_kafka import Consumer, TopicPartition

from etl.core.config import PostgresConfig
from etl.pg.sink import PostgresSink
from tests.helpers.db import backup, restore
from tests.helpers.runs import Env, committed, etl_command, good, pushed, rows, run_etl, summary
from tests.helpers.services import ROOT, Services

HOLD_FIRST_WRITE = ROOT / "tests" / "helpers" / "hold_first_write.py"


def _load(produce: Callable[..., None], topic: str, first: int, count: int) -> None:
    produce(topic, [(i % 3, good(i)) for i in range(first, first + count)])


def _positions(dsn: str, topic: str, group: str) -> dict[int, int]:
    sink = PostgresSink(PostgresConfig(dsn=dsn), group_id=group)
    try:
        return dict(sink.positions(topic).read([0, 1, 2]).ends)
    finally:
        sink.close()


def _commit_group(services: Services, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit these offsets for the group as a consumer would (a group reset by hand)."""
    consumer = Consumer({"bootstrap.servers": services.kafka, "group.id": group})
    try:
        tps = [TopicPartition(topic, p, o) for p, o in offsets.items()]
        consumer.commit(offsets=tps, asynchronous=False)
    finally:
        consumer.close()


def test_after_a_restore_the_next_run_reloads_what_the_backup_missed(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
    tmp_path: Path,
) -> None:
    topic = make_topic(3)
    env = etl_env(topic)
    _load(produce, topic, 0, 300)
    first = run_etl(env)
    assert first.returncode == 0, first.stderr
    dump = tmp_path / "backup.dump"
    backup(schema_db, dump)
    _load(produce, topic, 300, 300)
    assert run_etl(env).returncode == 0
    assert len(rows(schema_db)) == 600

    restore(dump, schema_db)
    assert len(rows(schema_db)) == 300
    assert _positions(schema_db, topic, group) == {0: 100, 1: 100, 2: 100}
    assert committed(services, group, topic, 3) == {0: 200, 1: 200, 2: 200}

    plan = etl_command(env, "plan", "--output", "json")
    assert plan.returncode == 0, plan.stderr
    planned = [orjson.loads(line) for line in plan.stdout.splitlines()][:3]
    assert [(p["start"], p["committed"], p["database"], p["drift"]) for p in planned] == [
        (100, 200, 100, -100)
    ] * 3

    result = run_etl(env)
    assert result.returncode == 0, result.stderr
    stored = rows(schema_db)
    assert sorted(r[0] for r in stored) == [1000 + i for i in range(600)]
    done = summary(result)
    assert done["consumed"] == 300 and done["inserted"] == 300 and done["duplicates"] == 0
    assert done["partitions"]["0"]["rewound"] == 100
    warned = [line for line in result.stderr.splitlines() if '"event":"offsets_rewound"' in line]
    assert len(warned) == 3, result.stderr
    assert '"reread":100' in warned[0]
    metrics = pushed(services, f"etl-test-{group}")
    assert metrics['etl_offsets_rewound{partition="1"}'] == 100
    assert metrics['etl_offset_drift{partition="2"}'] == -100
    runs = etl_command(env, "runs", "--output", "json")
    latest = orjson.loads(runs.stdout.splitlines()[0])
    assert latest["rewound"] == {"0": 100, "1": 100, "2": 100}, runs.stdout
    assert _positions(schema_db, topic, group) == {0: 200, 1: 200, 2: 200}

    again = run_etl(env)  # caught up: nothing re-read, no drift
    assert again.returncode == 0 and summary(again)["consumed"] == 0
    assert "offsets_rewound" not in again.stderr


def test_a_lost_offset_commit_reads_nothing_twice(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(3)
    env = etl_env(topic)
    _load(produce, topic, 0, 300)
    assert run_etl(env).returncode == 0
    _commit_group(services, group, topic, {0: 40, 1: 40, 2: 40})  # the commit "lost"
    _load(produce, topic, 300, 30)

    result = run_etl(env)
    assert result.returncode == 0, result.stderr
    done = summary(result)
    assert (done["consumed"], done["inserted"], done["duplicates"]) == (30, 30, 0)
    assert result.stderr.count('"event":"offsets_forward"') == 3
    assert pushed(services, f"etl-test-{group}")['etl_offset_drift{partition="0"}'] == 60
    assert committed(services, group, topic, 3) == {0: 110, 1: 110, 2: 110}


def test_a_database_without_progress_is_adopted_at_the_group_position(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(3)
    env = etl_env(topic)
    _load(produce, topic, 0, 90)
    assert run_etl(env).returncode == 0
    with psycopg.connect(schema_db, autocommit=True) as conn:
        conn.execute("DELETE FROM etl_progress")  # as every database before version 13
    _load(produce, topic, 90, 30)

    result = run_etl(env)
    assert result.returncode == 0, result.stderr
    assert summary(result)["consumed"] == 30  # no rewind storm
    assert '"event":"progress_origins"' in result.stderr
    assert _positions(schema_db, topic, group) == {0: 40, 1: 40, 2: 40}


def test_a_partition_the_database_never_loaded_starts_as_a_new_group_would(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(3)
    env = etl_env(topic)
    _load(produce, topic, 0, 90)
    assert run_etl(env).returncode == 0
    with psycopg.connect(schema_db, autocommit=True) as conn:  # partition 2 was never loaded
        conn.execute("DELETE FROM etl_progress WHERE kafka_partition = 2")
        conn.execute("DELETE FROM new_reports WHERE kafka_partition = 2")

    result = run_etl(env)
    assert result.returncode == 0, result.stderr
    assert summary(result)["inserted"] == 30
    assert sorted(r[0] for r in rows(schema_db)) == [1000 + i for i in range(90)]


def test_a_run_killed_between_out_of_order_commits_vouches_only_for_the_stored_prefix(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
    tmp_path: Path,
) -> None:
    topic = make_topic(1)
    produce(topic, [(0, good(i)) for i in range(400)])
    env = etl_env(
        topic,
        ETL_POSTGRES__WRITERS="2",
        ETL_BATCH__MAX_MESSAGES="100",
        HOLD_DIR=str(tmp_path),
    )
    proc = subprocess.Popen(
        [sys.executable, str(HOLD_FIRST_WRITE), "run"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "ready").exists():
            assert proc.poll() is None, "the run ended before its second batch was stored"
            assert time.monotonic() < deadline, "the second batch was never stored"
            time.sleep(0.05)
        second = (tmp_path / "ready").read_text()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    start, stop = map(int, second.split())
    assert start > 0  # the first batch, [0, start), was never stored
    stored = {r[5] for r in rows(schema_db)}
    assert stored == set(range(start, stop))  # the second batch is durable ...
    assert _positions(schema_db, topic, group) == {0: 0}  # ... but nothing is vouched past 0
    assert committed(services, group, topic, 1) == {0: -1001}

    result = run_etl(etl_env(topic, ETL_POSTGRES__WRITERS="2"))
    assert result.returncode == 0, result.stderr
    assert sorted(r[5] for r in rows(schema_db)) == list(range(400))
    assert summary(result)["duplicates"] == stop - start
    assert _positions(schema_db, topic, group) == {0: 400}
