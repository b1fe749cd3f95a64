"""Group mode against the real services: exit 0 only when the whole topic is drained.

Runs are SIGKILLed (never a service): a dead member keeps its partitions until its session
expires, so the runs here use a short ``session.timeout.ms``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import psycopg
from confluent_kafka import Consumer, ConsumerGroupState
from confluent_kafka.admin import AdminClient

from tests.helpers.db import backup, restore
from tests.helpers.runs import (
    ETL,
    Env,
    committed,
    error_line,
    good,
    pushed,
    rows,
    run_etl,
    summary,
)
from tests.helpers.services import ROOT, Services

# A short heartbeat: a copy hears of a rebalance at its next one, and the copies drain fast.
SESSION = {
    "ETL_KAFKA__CLIENT__SESSION_TIMEOUT_MS": "6000",
    "ETL_KAFKA__CLIENT__HEARTBEAT_INTERVAL_MS": "300",
}
HELD_ETL = (sys.executable, str(ROOT / "tests" / "helpers" / "hold_before_commit.py"), "run")


def _rebalancing(services: Services, group: str) -> bool:
    """The group is rebalancing: a new member asked to join."""
    admin = AdminClient({"bootstrap.servers": services.kafka})
    found = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return (
        found.state
        in (
            ConsumerGroupState.PREPARING_REBALANCING,
            ConsumerGroupState.COMPLETING_REBALANCING,
        )
        or len(found.members) > 1
    )


def _start(env: dict[str, str], log: Path, *cmd: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:  # the child keeps its own descriptor
        return subprocess.Popen(list(cmd or ETL), env=env, stderr=err, cwd=ROOT)


def _events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            out.append(orjson.loads(line))
    return out


def _wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _stored(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM new_reports").fetchone()
        assert row is not None
        return int(row[0])


def _statuses(dsn: str) -> dict[int, str]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT id, status FROM etl_runs ORDER BY id").fetchall())


def _assert_all_loaded_once(dsn: str, count: int) -> None:
    stored = rows(dsn)
    missing = sorted({1000 + i for i in range(count)} - {r[0] for r in stored})
    assert not missing, [(m, (m - 1000) % 6, (m - 1000) // 6) for m in missing[:20]]
    assert len(stored) == count


def _finish(proc: subprocess.Popen[bytes], log: Path, seconds: float = 120) -> dict[str, Any]:
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"run still going after {seconds}s:\n{log.read_text()[-3000:]}"
        ) from None
    assert proc.returncode == 0, log.read_text()[-3000:]
    found = [e for e in _events(log) if e["event"] == "run_finished"]
    assert found, log.read_text()[-3000:]
    return found[-1]


def test_a_run_started_while_a_killed_run_is_still_a_member_drains_the_whole_topic(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
    tmp_path: Path,
) -> None:
    topic = make_topic(3)
    produce(topic, [(i % 3, good(i)) for i in range(6000)])
    env = etl_env(topic, ETL_BATCH__MAX_MESSAGES="20", **SESSION)
    first = _start(env, tmp_path / "first.log")
    _wait_until(lambda: _stored(schema_db) > 0, 60, "the first run to store rows")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    nxt = _start(env, tmp_path / "next.log")
    doc = _finish(nxt, tmp_path / "next.log")
    assert doc["exit_code"] == 0
    assert committed(services, group, topic, 3) == dict.fromkeys(range(3), 2000)
    _assert_all_loaded_once(schema_db, 6000)
    assert list(_statuses(schema_db).values()) == ["abandoned", "completed"]


def test_the_survivor_of_two_copies_drains_the_partitions_of_the_killed_one(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
    tmp_path: Path,
) -> None:
    topic = make_topic(6)
    produce(topic, [(i % 6, good(i)) for i in range(24000)])
    env = etl_env(topic, ETL_BATCH__MAX_MESSAGES="20", **SESSION)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [_start(env, log) for log in logs]

    def split() -> bool:  # each copy holds three partitions
        held = [[e for e in _events(log) if e["event"] == "partitions_assigned"] for log in logs]
        return all(h and len(h[-1]["partitions"]) == 3 for h in held)

    _wait_until(split, 60, "the two copies to split the partitions")
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait(timeout=30)
    doc = _finish(procs[1], logs[1])
    assert committed(services, group, topic, 6) == dict.fromkeys(range(6), 4000)
    _assert_all_loaded_once(schema_db, 24000)
    # the survivor's run record holds every partition it loaded, before and after the rebalance
    assert sorted(doc["partitions"]) == [str(p) for p in range(6)]
    with psycopg.connect(schema_db) as conn:
        parts = conn.execute(
            "SELECT p.kafka_partition FROM etl_run_partitions p JOIN etl_runs r"
            " ON r.id = p.run_id WHERE r.status = 'completed' ORDER BY 1"
        ).fetchall()
    assert [p for (p,) in parts] == list(range(6))


def test_two_copies_started_together_both_exit_0_and_reread_little(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
    tmp_path: Path,
) -> None:
    topic = make_topic(6)
    produce(topic, [(i % 6, good(i)) for i in range(30000)])
    env = etl_env(topic, ETL_BATCH__MAX_MESSAGES="100", **SESSION)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    # The first copy holds before its second commit until the second copy has joined, so the
    # rebalance comes mid-way however fast the first would drain the topic alone.
    hold = tmp_path / "hold"
    hold.mkdir()
    first = _start({**env, "HOLD_BEFORE_COMMIT_DIR": str(hold)}, logs[0], *HELD_ETL)
    _wait_until((hold / "ready").exists, 60, "the first copy's second commit")
    second = _start(env, logs[1])
    _wait_until(lambda: _rebalancing(services, group), 60, "the second copy to join")
    (hold / "go").touch()
    procs = [first, second]
    docs = [_finish(p, log) for p, log in zip(procs, logs, strict=True)]
    _assert_all_loaded_once(schema_db, 30000)
    assert committed(services, group, topic, 6) == dict.fromkeys(range(6), 5000)
    assert all(d["inserted"] > 0 for d in docs), docs  # the rebalance came mid-way
    assert sum(d["inserted"] for d in docs) == 30000
    # the batch in flight is committed before a revoke: less than a batch is read twice
    assert sum(d["duplicates"] for d in docs) < 100, docs


@contextmanager
def _idle_member(services: Services, group: str, topic: str) -> Iterator[list[int]]:
    """A live member of the group that polls (so it keeps its partitions) but never commits."""
    consumer = Consumer(
        {
            "bootstrap.servers": services.kafka,
            "group.id": group,
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    held: list[int] = []

    def on_assign(c: Any, parts: list[Any]) -> None:
        held[:] = [tp.partition for tp in parts]

    consumer.subscribe([topic], on_assign=on_assign)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            consumer.poll(0.1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        _wait_until(lambda: bool(held), 30, "the idle member's assignment")
        yield held
    finally:
        stop.set()
        thread.join(timeout=10)
        consumer.close()


def test_a_member_that_never_commits_makes_the_run_exit_3_naming_what_is_behind(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(4)
    produce(topic, [(i % 4, good(i)) for i in range(400)])
    env = etl_env(topic, ETL_KAFKA__TIMEOUT_SECONDS="5", **SESSION)
    with _idle_member(services, group, topic) as held:
        began = time.monotonic()
        result = run_etl(env, timeout=90)
        took = time.monotonic() - began
        idle = sorted(held)
    assert result.returncode == 3, result.stderr
    assert took < 40, took
    last = error_line(result)
    behind = ", ".join(f"partition {p} (lag 100)" for p in idle)
    assert last.startswith(f"etl: error: topic {topic!r} not drained"), last
    assert last.endswith(f"behind: {behind}"), last
    loaded = sorted(set(range(4)) - set(idle))
    assert loaded and summary(result)["inserted"] == 100 * len(loaded)
    metrics = pushed(services, env["ETL_PUSHGATEWAY__JOB"])
    for p in range(4):  # every partition of the topic, not only the run's own
        assert metrics[f'etl_partition_lag{{partition="{p}"}}'] == (100 if p in idle else 0)


def test_lag_of_a_backfill_covers_every_partition_of_the_topic(
    services: Services,
    schema_db: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
) -> None:
    topic = make_topic(3)
    produce(topic, [(i % 3, good(i)) for i in range(30)])
    env = etl_env(topic)
    result = run_etl(env, "--partitions", "1", "--no-commit")
    assert result.returncode == 0, result.stderr
    body = pushed(services, env["ETL_PUSHGATEWAY__JOB"])
    lag = {k: v for k, v in body.items() if k.startswith("etl_partition_lag{")}
    assert body['etl_partition_lag_known{mode="backfill"}'] == 1
    assert lag == {
        'etl_partition_lag{mode="backfill",partition="0"}': 10,
        'etl_partition_lag{mode="backfill",partition="1"}': 0,
        'etl_partition_lag{mode="backfill",partition="2"}': 10,
    }


def test_a_copy_joining_while_the_first_rewinds_after_a_restore_loads_everything_once(
    services: Services,
    schema_db: str,
    group: str,
    etl_env: Env,
    make_topic: Callable[[int], str],
    produce: Callable[..., None],
    tmp_path: Path,
) -> None:
    topic = make_topic(6)
    env = etl_env(topic, ETL_BATCH__MAX_MESSAGES="100", **SESSION)
    produce(topic, [(i % 6, good(i)) for i in range(6000)])
    assert run_etl(env).returncode == 0
    dump = tmp_path / "backup.dump"
    backup(schema_db, dump)
    produce(topic, [(i % 6, good(i)) for i in range(6000, 12000)])
    assert run_etl(env).returncode == 0
    restore(dump, schema_db)
    assert _stored(schema_db) == 6000  # the database is back 1000 messages per partition

    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    hold = tmp_path / "hold"
    hold.mkdir()
    first = _start({**env, "HOLD_BEFORE_COMMIT_DIR": str(hold)}, logs[0], *HELD_ETL)
    _wait_until((hold / "ready").exists, 60, "the first copy's second commit, mid-rewind")
    second = _start(env, logs[1])
    _wait_until(lambda: _rebalancing(services, group), 60, "the second copy to join")
    (hold / "go").touch()
    docs = [_finish(p, log) for p, log in zip([first, second], logs, strict=True)]
    _assert_all_loaded_once(schema_db, 12000)
    assert committed(services, group, topic, 6) == dict.fromkeys(range(6), 2000)
    rewound = [sum(p.get("rewound", 0) for p in d["partitions"].values()) for d in docs]
    assert rewound == [6000, 0], docs  # counted once, by the copy that found the gap
    assert sum(d["inserted"] for d in docs) == 6000
    # the rebalance came mid-rewind: the second copy was given partitions to load
    second_owned = [e for e in _events(logs[1]) if e["event"] == "partitions_assigned"]
    assert any(e["partitions"] for e in second_owned), logs[1].read_text()[-3000:]
