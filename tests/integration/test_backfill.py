"""Aimed runs, plan, dry run, the runs table, replay and the payload tracker, on real services."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.helpers.runs import (
    BAD,
    committed,
    error_line,
    etl_command,
    good,
    rejections,
    rows,
    run_etl,
    summary,
)
from tests.helpers.services import SCHEMA, Services

Env = Callable[..., dict[str, str]]
T0 = 1_780_000_000_000  # ms: 2026-05-28T20:26:40Z


def orgs(dsn: str) -> list[int]:
    return [r[0] - 1000 for r in rows(dsn)]


@pytest.fixture
def topic10(make_topic: Callable[[int], str], produce: Callable[..., None]) -> str:
    """2 partitions, 10 valid messages each; message i of a partition stamped T0 + i seconds."""
    topic = make_topic(2)
    for i in range(10):
        produce(topic, [(0, good(i)), (1, good(100 + i))], timestamp_ms=T0 + i * 1000)
    return topic


def no_group_offsets(services: Services, group: str, topic: str) -> bool:
    return set(committed(services, group, topic, 2).values()) == {-1001}


def test_until_offset_for_all_and_per_partition(
    services: Services, schema_db: str, group: str, etl_env: Env, topic10: str
) -> None:
    env = etl_env(topic10)
    result = run_etl(env, "--until-offset", "3")
    assert result.returncode == 0, result.stderr
    assert orgs(schema_db) == [0, 1, 2, 100, 101, 102]
    assert committed(services, group, topic10, 2) == {0: 3, 1: 3}
    result = run_etl(env, "--until-offset", "0:5,1:50")
    assert result.returncode == 0, result.stderr
    assert "--until-offset 50 is beyond the end offset 10; stopping there" in result.stderr
    assert committed(services, group, topic10, 2) == {0: 5, 1: 10}


def test_from_and_until_offsets_with_partitions_and_another_group(
    services: Services, schema_db: str, group: str, etl_env: Env, topic10: str
) -> None:
    env = etl_env(topic10)
    result = run_etl(
        env,
        "--from-offset",
        "1:4",
        "--until-offset",
        "1:6",
        "--partitions",
        "1",
        "--group",
        "backfill-" + group,
    )
    assert result.returncode == 0, result.stderr
    assert orgs(schema_db) == [104, 105]
    assert committed(services, "backfill-" + group, topic10, 2) == {0: -1001, 1: 6}
    assert no_group_offsets(services, group, topic10)


def test_time_range_is_half_open_at_exact_message_timestamps(
    services: Services, schema_db: str, group: str, etl_env: Env, topic10: str
) -> None:
    start = datetime.fromtimestamp((T0 + 3000) / 1000, UTC).isoformat()
    until = datetime.fromtimestamp((T0 + 7000) / 1000, UTC).isoformat()
    result = run_etl(
        etl_env(topic10), "--from-timestamp", start, "--until-timestamp", until, "--no-commit"
    )
    assert result.returncode == 0, result.stderr
    assert orgs(schema_db) == [3, 4, 5, 6, 103, 104, 105, 106]
    assert no_group_offsets(services, group, topic10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from-offset", "5", "--until-offset", "5"], "range [5, 5) is empty or reversed"),
        (["--from-offset", "7", "--until-offset", "2"], "range [7, 2) is empty or reversed"),
        (["--partitions", "0,9"], "has no partition 9"),
        (["--until-offset", "4:1"], "has no partition 4"),
        (["--from-timestamp", "2026-05-04T09:30:00"], "has no time zone"),
        (["--from-offset", "1", "--from-beginning"], "exclude each other"),
        (["--until-offset", "x"], "expected N or P:N"),
    ],
)
def test_usage_errors_exit_2_before_reading(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    topic10: str,
    args: list[str],
    message: str,
) -> None:
    result = run_etl(etl_env(topic10), *args)
    assert result.returncode == 2, result.stderr
    assert message in error_line(result)
    assert rows(schema_db) == []
    assert no_group_offsets(services, group, topic10)


def test_from_offset_below_log_start_is_a_usage_error(
    services: Services, schema_db: str, group: str, etl_env: Env, topic10: str
) -> None:
    admin = AdminClient({"bootstrap.servers": services.kafka})
    for fut in admin.delete_records([TopicPartition(topic10, 0, 4)]).values():
        fut.result(timeout=30)
    result = run_etl(etl_env(topic10), "--from-offset", "2")
    assert result.returncode == 2
    assert "--from-offset: 2 is below the log start 4 of partition 0" in result.stderr
    assert rows(schema_db) == []


def test_plan_reads_nothing_and_matches_what_the_run_does(
    services: Services, schema_db: str, group: str, etl_env: Env, topic10: str
) -> None:
    env = etl_env(topic10)
    assert run_etl(env, "--until-offset", "0:2,1:7").returncode == 0
    planned = etl_command(env, "plan", "--until-offset", "0:6", "--output", "json")
    assert planned.returncode == 0, planned.stderr
    lines = [orjson.loads(line) for line in planned.stdout.splitlines()]
    assert lines[:2] == [
        {
            "partition": 0,
            "start": 2,
            "stop": 6,
            "messages": 4,
            "committed": 2,
            "database": 2,
            "drift": 0,
            "lag": 8,
            "note": None,
        },
        {
            "partition": 1,
            "start": 7,
            "stop": 10,
            "messages": 3,
            "committed": 7,
            "database": 7,
            "drift": 0,
            "lag": 3,
            "note": None,
        },
    ]
    assert lines[2] == {"partition": "total", "messages": 7, "lag": 11}
    assert committed(services, group, topic10, 2) == {0: 2, 1: 7}  # plan moved nothing
    result = run_etl(env, "--until-offset", "0:6")
    assert summary(result)["partitions"] == {
        "0": {"start": 2, "stop": 6, "reached": 6},
        "1": {"start": 7, "stop": 10, "reached": 10},
    }
    assert summary(result)["consumed"] == 7
    table = etl_command(env, "plan")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == [
        "partition",
        "start",
        "stop",
        "messages",
        "committed",
        "database",
        "drift",
        "lag",
        "note",
    ]


def test_dry_run_reports_and_leaves_database_and_group_unchanged(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(2)
    produce(topic, [(i % 2, good(i)) for i in range(6)] + [(0, BAD[1])])
    env = etl_env(topic)
    assert run_etl(env, "--until-offset", "0:2,1:2").returncode == 0  # stores 4 rows
    before = rows(schema_db)
    result = run_etl(env, "--dry-run", "--from-beginning")
    assert result.returncode == 0, result.stderr
    doc = summary(result)
    assert (doc["dry_run"], doc["inserted"], doc["duplicates"], doc["rejected"]) == (
        True,
        2,
        4,
        {"invalid_json": 1},
    )
    assert "would insert" in result.stdout
    assert rows(schema_db) == before
    assert rejections(schema_db) == []
    assert committed(services, group, topic, 2) == {0: 2, 1: 2}
    with psycopg.connect(schema_db) as conn:
        assert conn.execute("SELECT count(*) FROM etl_runs").fetchone() == (1,)


def test_runs_table_records_every_run_and_replay_fills_another_database(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    topic10: str,
    make_database: Callable[[], str],
) -> None:
    env = etl_env(topic10)
    assert run_etl(env, "--until-offset", "4").returncode == 0
    second = run_etl(env)
    assert second.returncode == 0
    run_id = summary(second)["run_id"]
    with psycopg.connect(schema_db) as conn:
        runs = conn.execute(
            "SELECT id, status, exit_code, group_id, consumed, inserted, options"
            " FROM etl_runs ORDER BY id"
        ).fetchall()
        parts = conn.execute(
            "SELECT kafka_partition, start_offset, stop_offset, reached_offset"
            " FROM etl_run_partitions WHERE run_id = %s ORDER BY 1",
            (run_id,),
        ).fetchall()
        loaded_by = conn.execute(
            "SELECT run_id FROM etl_run_partitions WHERE topic = %s AND kafka_partition = 1"
            " AND start_offset <= 2 AND 2 < reached_offset",
            (topic10,),
        ).fetchall()
    assert [(r[1], r[2], r[3], r[4], r[5]) for r in runs] == [
        ("completed", 0, group, 8, 8),
        ("completed", 0, group, 12, 12),
    ]
    assert runs[0][6] == {"until_offset": "4"}
    assert parts == [(0, 4, 10, 10), (1, 4, 10, 10)]
    assert loaded_by == [(runs[0][0],)]

    listed = etl_command(env, "runs", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert [orjson.loads(line)["id"] for line in listed.stdout.splitlines()] == [run_id, runs[0][0]]

    staging = make_database()
    with psycopg.connect(staging, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
    before = committed(services, group, topic10, 2)
    replay = run_etl(env, "--replay-run", str(run_id), "--dsn", staging)
    assert replay.returncode == 0, replay.stderr
    assert orgs(staging) == [4, 5, 6, 7, 8, 9, 104, 105, 106, 107, 108, 109]
    assert committed(services, group, topic10, 2) == before
    bad = run_etl(env, "--replay-run", "999999", "--dsn", staging)
    assert bad.returncode == 2
    assert "no run with id 999999" in bad.stderr


def test_tracker_events_for_every_request_id(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic, tracker_topic = make_topic(1), make_topic(1)
    ok = orjson.loads(good(1)) | {"RequestId": "req-ok"}
    bad = orjson.loads(good(2)) | {"RequestId": "req-bad", "OrgID": "x"}
    produce(topic, [(0, orjson.dumps(ok)), (0, orjson.dumps(bad)), (0, good(3))])
    env = etl_env(topic, ETL_TRACKER__TOPIC=tracker_topic, ETL_TRACKER__SERVICE_NAME="etl-test")
    result = run_etl(env)
    assert result.returncode == 0, result.stderr
    consumer = Consumer(
        {
            "bootstrap.servers": services.kafka,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([tracker_topic])
    events = []
    for _ in range(100):
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            events.append(orjson.loads(msg.value() or b"null"))
        if len(events) >= 6:
            break
    consumer.close()
    assert [(e["request_id"], e["status"]) for e in events] == [
        ("req-ok", "received"),
        ("req-bad", "received"),
        ("req-ok", "processed"),
        ("req-bad", "processed"),
        ("req-ok", "success"),
        ("req-bad", "error"),
    ]
    assert {e["service"] for e in events} == {"etl-test"}
    assert all(e["date"].endswith("Z") for e in events)


def test_explicit_commit_refused_by_a_live_group_fails_instead_of_passing_silently(
    services: Services, schema_db: str, group: str, etl_env: Env, topic10: str
) -> None:
    member = Consumer(
        {"bootstrap.servers": services.kafka, "group.id": group, "session.timeout.ms": 10000}
    )
    member.subscribe([topic10])
    for _ in range(50):  # until the group has a generation with this member
        member.poll(0.2)
        if member.assignment():
            break
    try:
        result = run_etl(etl_env(topic10), "--from-beginning")
    finally:
        member.close()
    assert result.returncode == 3, result.stderr
    line = error_line(result)
    assert line.startswith(f"etl: error: offset commit failed: group '{group}' has live members")
    assert "(Commit failed: Broker: Unknown member)" in line
    assert "stop those consumers and run again, or use another --group" in line
    assert len(rows(schema_db)) == 20  # the rows are stored; only the commit was refused
