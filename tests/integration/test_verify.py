"""``etl verify`` against the real Kafka and PostgreSQL: an untouched database matches, every
tampering is named by partition:offset, ``--repair`` puts back exactly what is missing and
nothing else, cleanup's deletions are expired, and ``--dsn`` checks another database."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg

from etl.core.errors import DatabaseMismatch
from tests.helpers.runs import BAD, Env, committed, etl_command, good, run_etl
from tests.helpers.services import Services

MISMATCH = DatabaseMismatch.exit_code


def _recent(i: int) -> bytes:
    """A valid message checked an hour ago: younger than any cleanup's cutoff in these tests."""
    checked = datetime.now(UTC) - timedelta(hours=1, seconds=i)
    doc = orjson.loads(good(i))
    doc["LastChecked"] = checked.isoformat().replace("+00:00", "Z")
    return orjson.dumps(doc)


def _verify(env: dict[str, str], *args: str) -> tuple[Any, list[dict[str, Any]]]:
    result = etl_command(env, "verify", "--output", "json", *args)
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    return result, lines


def _load(produce: Callable[..., None], topic: str) -> None:
    """Partition p gets good(i) for i = p, p+3, ...: 30 valid messages; then 2 invalid ones in
    partition 0 (offsets 10, 11) and a repeat of good(1)'s key in partition 1 (offset 10)."""
    produce(topic, [(i % 3, good(i)) for i in range(30)])
    produce(topic, [(0, BAD[1]), (0, BAD[2]), (1, good(1))])


def _table(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def _reports(dsn: str) -> list[tuple[Any, ...]]:
    return _table(
        dsn,
        "SELECT org_id, account_number, cluster, report, updated_at, kafka_partition,"
        " kafka_offset FROM new_reports ORDER BY org_id",
    )


def test_an_untouched_database_matches_and_counts_every_message(
    schema_db: str, etl_env: Env, make_topic: Callable[[int], str], produce: Callable[..., None]
) -> None:
    topic = make_topic(3)
    env = etl_env(topic)
    _load(produce, topic)
    assert run_etl(env).returncode == 0

    result, lines = _verify(env)
    assert result.returncode == 0, result.stderr
    *parts, total = lines
    assert [(p["partition"], p["start"], p["stop"], p["database"]) for p in parts] == [
        (0, 0, 12, 12),
        (1, 0, 11, 11),
        (2, 0, 10, 10),
    ]
    assert [(p["messages"], p["stored"], p["rejected"], p["duplicate"]) for p in parts] == [
        (12, 10, 2, 0),
        (11, 10, 0, 1),
        (10, 10, 0, 0),
    ]
    assert (total["messages"], total["missing"], total["different"], total["expired"]) == (
        33,
        0,
        0,
        0,
    )
    assert all(p["missing_offsets"] == p["different_offsets"] == [] for p in parts)

    narrowed, lines = _verify(env, "--partitions", "1", "--from-offset", "1:4")
    assert narrowed.returncode == 0, narrowed.stderr
    assert [(p["partition"], p["start"], p["stop"], p["messages"]) for p in lines[:-1]] == [
        (1, 4, 11, 7)
    ]


def test_tampering_is_named_and_repair_restores_exactly_what_is_missing(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(3)
    env = etl_env(topic)
    _load(produce, topic)
    assert run_etl(env).returncode == 0
    original = _reports(schema_db)
    progress = _table(schema_db, "SELECT * FROM etl_progress ORDER BY kafka_partition")
    offsets = committed(services, group, topic, 3)
    with psycopg.connect(schema_db) as conn:
        # good(4) is partition 1 offset 1; good(8) partition 2 offset 2; BAD[2] partition 0:11
        conn.execute("DELETE FROM new_reports WHERE org_id = 1004")
        conn.execute("UPDATE new_reports SET report = report || ' ' WHERE org_id = 1008")
        conn.execute(
            "DELETE FROM rejected_messages WHERE kafka_partition = 0 AND kafka_offset = 11"
        )

    table = etl_command(env, "verify", "--output", "table")
    assert table.returncode == MISMATCH, table.stderr
    assert "missing: 0:11" in table.stdout and "missing: 1:1" in table.stdout, table.stdout
    assert "different: 2:2" in table.stdout, table.stdout
    assert "2 missing, 1 different" in table.stderr
    result, lines = _verify(env)
    assert result.returncode == MISMATCH
    named = {
        (p["partition"], kind, o)
        for p in lines[:-1]
        for kind in ("missing", "different")
        for o in p[f"{kind}_offsets"]
    }
    assert named == {(0, "missing", 11), (1, "missing", 1), (2, "different", 2)}

    repaired, lines = _verify(env, "--repair")
    assert repaired.returncode == MISMATCH, repaired.stderr
    assert lines[-1]["repaired"] == 2 and lines[-1]["different"] == 1
    assert "1 row(s) differ" in repaired.stderr
    after = _reports(schema_db)
    assert len(after) == len(original) == 30
    altered = [r for r in after if r[0] == 1008]
    assert altered[0][3].endswith(" ")  # named, left as it is
    assert [r for r in after if r[0] != 1008] == [r for r in original if r[0] != 1008]
    assert _table(
        schema_db,
        "SELECT reason FROM rejected_messages WHERE kafka_partition = 0 AND kafka_offset = 11",
    ) == [("wrong_type",)]
    assert committed(services, group, topic, 3) == offsets
    assert _table(schema_db, "SELECT * FROM etl_progress ORDER BY kafka_partition") == progress

    again, lines = _verify(env)
    assert again.returncode == MISMATCH
    assert (lines[-1]["missing"], lines[-1]["different"]) == (0, 1)


def test_rows_and_rejections_deleted_by_cleanup_are_expired_not_missing(
    schema_db: str, etl_env: Env, make_topic: Callable[[int], str], produce: Callable[..., None]
) -> None:
    topic = make_topic(2)
    env = etl_env(topic)
    produce(topic, [(i % 2, good(i)) for i in range(10)])  # checked in May: old
    produce(topic, [(i % 2, _recent(i)) for i in range(10, 14)])
    produce(topic, [(0, BAD[0]), (1, BAD[1])])
    assert run_etl(env).returncode == 0
    time.sleep(1.2)  # the rejections become older than one second

    for target, age in (("new-reports", "7 days"), ("rejections", "1 second")):
        cleaned = etl_command(env, "cleanup", target, "--max-age", age, "--chunk-size", "3")
        assert cleaned.returncode == 0, cleaned.stderr
    recorded = _table(schema_db, "SELECT table_name, deleted FROM etl_cleanups ORDER BY id")
    assert recorded == [("new_reports", 10), ("rejected_messages", 2)]  # one row per cleanup
    again = etl_command(env, "cleanup", "new-reports", "--max-age", "7 days")  # none left
    assert again.returncode == 0 and len(_table(schema_db, "SELECT * FROM etl_cleanups")) == 2

    result, lines = _verify(env)
    assert result.returncode == 0, result.stderr
    total = lines[-1]
    assert (total["messages"], total["stored"], total["expired"], total["missing"]) == (
        16,
        4,
        12,
        0,
    )

    with psycopg.connect(schema_db) as conn:  # a recent row deleted by hand is missing
        conn.execute("DELETE FROM new_reports WHERE org_id = 1010")
    result, lines = _verify(env)
    assert result.returncode == MISMATCH
    assert lines[0]["missing_offsets"] == [5]


def test_dsn_checks_another_database_such_as_staging_after_a_replay(
    schema_db: str,
    make_database: Callable[[], str],
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(2)
    env = etl_env(topic)
    produce(topic, [(i % 2, good(i)) for i in range(8)])
    assert run_etl(env).returncode == 0
    produce(topic, [(i % 2, good(i)) for i in range(8, 20)])
    assert run_etl(env).returncode == 0
    staging = make_database()
    assert etl_command(env, "db", "init", "--dsn", staging).returncode == 0

    empty, lines = _verify(env, "--dsn", staging)  # holds nothing: nothing to check
    assert empty.returncode == 0, empty.stderr
    assert lines[-1]["messages"] == 0
    assert lines[0]["note"] == "the database records no progress for this topic and group"

    runs = etl_command(env, "runs", "--output", "json")
    second = orjson.loads(runs.stdout.splitlines()[0])["id"]
    replayed = run_etl(env, "--replay-run", str(second), "--dsn", staging)
    assert replayed.returncode == 0, replayed.stderr
    result, lines = _verify(env, "--dsn", staging)
    assert result.returncode == 0, result.stderr
    assert [(p["start"], p["stop"], p["stored"]) for p in lines[:-1]] == [(4, 10, 6), (4, 10, 6)]

    with psycopg.connect(staging) as conn:
        conn.execute("DELETE FROM new_reports WHERE org_id = 1009")
    result, lines = _verify(env, "--dsn", staging)
    assert result.returncode == MISMATCH
    assert lines[1]["missing_offsets"] == [4]
    assert _verify(env)[0].returncode == 0  # the production database still matches
